"""The lab hosts of a run: booted by the pytest controller before any cell, always stopped.

A lab host that cannot be built or booted becomes a host whose cells are
errors with the reason; the other hosts go on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from archmatrix.cleanup.owner import Owner
from archmatrix.hosts.container_hosts import UNAVAILABLE
from archmatrix.hosts.lab_catalog import lab_kind
from archmatrix.hosts.spec import HostSpec


def start_lab_hosts(arches: tuple[str, ...], run_dir: Path, run_id: str, owner: Owner, cache_root: Path,
                    say: Callable[[str], None], without_kvm: bool = False) -> tuple[list[HostSpec], list]:
    """Boot one lab host per arch; return their host specs and the handles to stop."""
    from archmatrix.hosts.lab import LabHostError, start_lab_host

    specs, handles = [], []
    for arch in arches:
        kind = lab_kind(arch)
        try:
            handle = start_lab_host(kind, run_dir, run_id, owner, cache_root, say, virtualization=not without_kvm)
        except LabHostError as error:
            specs.append(HostSpec(kind.label, f"lab://{arch}", "lab", details={UNAVAILABLE: str(error)}))
            continue
        handles.append(handle)
        specs.append(handle.spec)
    return specs, handles


def stop_lab_hosts(handles: list) -> None:
    for handle in handles:
        handle.stop()
