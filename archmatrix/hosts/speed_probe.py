"""How fast does a host run TCG? Time a fixed loop on it, once per run, as the KVM probe boots its payload.

The payload (archmatrix/hosts/speed_payload.py) prints a line, loops, prints another; the time between the two
lines' arrival is compared with the same payload's on the reference machine (REFERENCE_S), and the ratio scales
the host's TCG bounds (archmatrix/core/host_speed.py, archmatrix/core/timeouts.py). The payload is x86_64's where
the host offers it, so every host runs the same guest code; else aarch64's. A host that offers neither keeps its
own factor, and its facts say so.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import TYPE_CHECKING

from archmatrix.core.arches import ARCHES
from archmatrix.core.capabilities import HostCapabilities
from archmatrix.core.host_speed import HostSpeed, measured, too_slow, unmeasured
from archmatrix.core.plan import CellUnsupported, Plan, make_plan
from archmatrix.guest.observe import boot_and_observe
from archmatrix.guest.site import GuestSite
from archmatrix.hosts.speed_payload import PAYLOAD_RELEASE, payload_for
from archmatrix.images.cache import Image

if TYPE_CHECKING:
    import libvirt

# START to END of each payload on the reference machine (2 cores, Debian 12, QEMU 7.2 TCG, no KVM; the machine
# the catalog's bounds were set on): the fastest of 20 probes each, taken alternately (benchmarks/speed_reference.py,
# load average 0.4 to 0.8). Median 0.307 s and 0.159 s, slowest 1.25x the fastest.
REFERENCE_S = {"x86_64": 0.288, "aarch64": 0.153}
PAYLOAD_ARCHES = ("x86_64", "aarch64")  # in order of preference


def probe_speed(conn: libvirt.virConnect, host: HostCapabilities, site: GuestSite, bound_s: float) -> HostSpeed:
    """Boot the payload under TCG once and time its loop."""
    for arch in PAYLOAD_ARCHES:
        plan = payload_plan(arch, host, bound_s)
        if plan is None:
            continue  # no emulator for it on this host
        seconds, why_not = payload_seconds(conn, plan, site)
        if seconds is not None:
            return measured(arch, seconds, REFERENCE_S[arch])
        if why_not.startswith("no banner: timeout"):
            return too_slow(arch, bound_s, REFERENCE_S[arch])
        return unmeasured(f"the {arch} payload did not run to its end: {why_not}")
    return unmeasured(f"the host offers TCG for none of {', '.join(PAYLOAD_ARCHES)}, the arches of the payload")


def payload_plan(arch: str, host: HostCapabilities, bound_s: float) -> Plan | None:
    """The payload's boot on the host under TCG, bounded; None if the host has no emulator for `arch`."""
    try:
        plan = make_plan(ARCHES[arch], "tcg", host, None)
    except CellUnsupported:
        return None
    return dataclasses.replace(plan, cell_id=f"speed-probe-{arch}", nic_device=None, timeout_s=bound_s,
                               first_output_s=None)


def payload_seconds(conn: libvirt.virConnect, plan: Plan, site: GuestSite) -> tuple[float | None, str]:
    """The payload's loop on this host: its START line's first byte to the last byte it prints (END, its banner
    and prompt, written at once), as the console stream delivers them; or None and why not."""
    observation = boot_and_observe(conn, plan, payload_image(plan.arch, site), site)
    if observation.start_error:
        return None, f"libvirt did not start it: {observation.start_error}"
    if not observation.booted or observation.first_output_s is None or observation.last_output_s is None:
        return None, observation.boot_failure or "no login prompt"
    return observation.last_output_s - observation.first_output_s, ""


def payload_image(arch: str, site: GuestSite) -> Image:
    """The payload as a file of the run (uploaded like a kernel to a remote host)."""
    payload = payload_for(arch)
    assert payload is not None
    path = site.run_dir / f"speed-probe-payload-{arch}"
    path.write_bytes(payload)
    return Image(arch=arch, kernel=path, initrd=None, kernel_sha256=hashlib.sha256(payload).hexdigest(),
                 initrd_sha256=None, origin="speed probe payload", kernel_release=PAYLOAD_RELEASE)
