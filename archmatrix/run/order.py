"""The order a run's cells go in: ready images first, then a download away, then built from source; longest first."""

from __future__ import annotations

from collections.abc import Callable

from archmatrix.core.arch import Arch
from archmatrix.core.arches import ARCHES
from archmatrix.core.plan import CellKey
from archmatrix.hosts.spec import HostSpec


def expected_cell_s(key: CellKey, settings, host: HostSpec | None = None) -> float:
    """What a cell is expected to cost, for ordering: a KVM cell may carry its host's KVM probe (the probe's bound).

    On a lab host both take longer (archmatrix/hosts/lab_catalog.py): its cells go first.
    """
    if key.accel == "kvm":
        return settings.timeouts(host.timeout_factor if host else 1.0).kvm_probe_first_output()
    return ARCHES[key.arch].typical_tcg_boot_s * (host.tcg_slowdown if host else 1.0)


def cells_in_order(keys: list[CellKey], settings, specs: list[HostSpec],
                   build_rank: Callable[[str], int]) -> list[CellKey]:
    """Cells whose image is ready first, then those whose image is a quick download, then those whose image is
    built from source (in the background meanwhile: archmatrix/run/prebuild.py); within each, longest first, so
    that under -n the last cells on every worker are short ones. Ties are broken by the host's place in the
    matrix (this machine first) and the cell's id, so that every xdist worker collects the same order
    (pytest-xdist refuses to run otherwise)."""
    hosts = {spec.label: spec for spec in specs}
    place = {spec.label: index for index, spec in enumerate(specs)}
    return sorted(keys, key=lambda key: (build_rank(key.arch), -expected_cell_s(key, settings, hosts.get(key.host)),
                                         place.get(key.host, len(place)), key.host, key.id))


def build_rank(arch: Arch, is_ready: bool) -> int:
    """0: the image is ready; 1: a download away; 2: built from source (minutes)."""
    return 0 if is_ready else 2 if arch.builds_from_source else 1
