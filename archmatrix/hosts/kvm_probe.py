"""Does KVM really work here? Boot the host arch's own small guest with KVM and see.

Run once per run (through the RunStore), bounded by --kvm-probe-timeout.
The answer is one of: works, claimed-but-broken (with where the guest
stopped), not-offered (with libvirt's reason), no-dev-kvm.

On x86_64 and aarch64 hosts the guest is a payload of a few hundred bytes that
prints its banner first thing (archmatrix/hosts/kvm_payload.py); elsewhere the
built-in kernel and init. The KVM cells boot the real kernel either way.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from archmatrix.core.arches import ARCHES
from archmatrix.core.capabilities import (
    KVM_BROKEN,
    KVM_NOT_OFFERED,
    KVM_WORKS,
    HostCapabilities,
    KvmVerdict,
    kvm_precondition,
)
from archmatrix.core.observation import Observation
from archmatrix.core.plan import make_plan
from archmatrix.guest.domain import LIBVIRT_QEMU_LOG_DIR
from archmatrix.guest.observe import boot_and_observe
from archmatrix.guest.site import GuestSite
from archmatrix.hosts.kvm_payload import PAYLOAD_RELEASE, payload_for
from archmatrix.images.image import Image

if TYPE_CHECKING:
    import libvirt

QEMU_LOG_HINTS = ("KVM", "error", "failed", "emulation failure")
# The payload prints in milliseconds under a working KVM (a fifth of the kernel probe's first-output bound:
# 1 s by default, 4 s on a lab host, where the aarch64 lab's nested KVM guest printed at 0.72 s).
PAYLOAD_SHARE_OF_FIRST_OUTPUT = 0.2


def probe_kvm(
    conn: libvirt.virConnect,
    host: HostCapabilities,
    host_image: Callable[[], Image],
    site: GuestSite,
    timeout_s: float,
    host_is_local: bool,
    first_output_s: float | None = None,
    quiet: bool = False,
) -> KvmVerdict:
    """Boot the host arch's own guest with KVM once; `quiet` keeps its kernel's lines off the console.

    A lab host asks for quiet: there every console byte of a KVM guest is an exit its emulated host handles,
    and the probe reached its banner in 20-26 s loud.
    """
    # /dev/kvm can be looked for only on this machine; elsewhere libvirt's offer and the boot decide.
    precondition = kvm_precondition(host) if host_is_local else kvm_precondition(host, dev_kvm=None)
    if precondition:
        return precondition
    arch = ARCHES.get(host.host_arch)
    if arch is None or not arch.has_builtin_image:
        return KvmVerdict(KVM_BROKEN, f"unproven: no built-in image of the host arch {host.host_arch} to probe with")
    tcg_plan = make_plan(arch, "tcg", host, None)
    payload = payload_image(arch.name, site)
    if payload is not None and first_output_s:
        first_output_s *= PAYLOAD_SHARE_OF_FIRST_OUTPUT
    offer = host.offer_for(arch.name)
    assert offer is not None
    plan = dataclasses.replace(
        tcg_plan,
        cell_id="kvm-probe",
        accel="kvm",
        domain_type="kvm",
        emulator=offer.domain_emulators["kvm"],
        expected_emulator=offer.domain_emulators["kvm"],
        cpu_model=None,
        timeout_s=timeout_s,
        # Where KVM works the kernel's first line comes within a second; a silent guest is not waited for
        # to the full bound (here a broken KVM spins a core the whole time).
        first_output_s=min(first_output_s, timeout_s) if first_output_s else None,
        nic_device=None,  # the probe asks only whether the guest runs: no network, no SSH
        kernel_cmdline=tcg_plan.kernel_cmdline + (" quiet" if quiet else ""),
    )
    observation = boot_and_observe(conn, plan, payload or host_image(), site)
    return verdict_from(observation, timeout_s, _qemu_log_hints(site.domain_name("kvm-probe"), host_is_local),
                        host_is_local)


def payload_image(arch: str, site: GuestSite) -> Image | None:
    """The host arch's payload as a file of the run (uploaded like a kernel to a remote host), if it has one."""
    payload = payload_for(arch)
    if payload is None:
        return None
    path = site.run_dir / f"kvm-probe-payload-{arch}"
    path.write_bytes(payload)
    return Image(arch=arch, kernel=path, initrd=None, kernel_sha256=hashlib.sha256(payload).hexdigest(),
                 initrd_sha256=None, origin="KVM probe payload", kernel_release=PAYLOAD_RELEASE)


def verdict_from(observation: Observation, timeout_s: float, qemu_log: str, host_is_local: bool = True) -> KvmVerdict:
    if observation.start_error:
        return KvmVerdict(KVM_NOT_OFFERED, f"libvirt refused a KVM guest: {observation.start_error}")
    kvm_on = bool(observation.qemu and observation.qemu.kvm_enabled)
    payload = (observation.image or {}).get("origin") == "KVM probe payload"
    if observation.banner and kvm_on:
        what = "the KVM probe payload printed its banner" if payload else "a KVM guest reached its banner"
        return KvmVerdict(KVM_WORKS, f"{what} in {observation.banner_s:.2f} s")
    if not kvm_on:
        return KvmVerdict(KVM_BROKEN, f"QEMU reports KVM not enabled in a KVM domain ({observation.qmp_error})")
    tail = [line for line in observation.console_tail.splitlines() if line.strip()]
    silent_bound = observation.plan.get("first_output_s")
    quiet = "quiet" in observation.plan.get("kernel_cmdline", "").split()
    if observation.boot_failure.startswith("no console output") and silent_bound:
        within = f"printed nothing within {silent_bound:.0f} s"
        where = ("the payload, which prints first thing, never ran" if payload else
                 "the guest, its kernel booted quiet, never reached its init" if quiet else
                 "the guest stopped before or in the kernel's decompressor")
    else:
        within = f"did not boot within {timeout_s:.0f} s"
        where = (f"its console stopped at: {tail[-1].strip()!r}" if tail else
                 "the kernel printed nothing (the guest stopped before or in the kernel's decompressor)")
    offered = "/dev/kvm exists and libvirt offers" if host_is_local else "libvirt offers"
    reason = f"{offered} <domain type='kvm'>, but a KVM guest {within}: {where}"
    if qemu_log:
        reason += f"; QEMU said: {qemu_log}"
    return KvmVerdict(KVM_BROKEN, reason)


def _qemu_log_hints(name: str, host_is_local: bool) -> str:
    """QEMU's own complaints from libvirt's per-domain log (internal errors, aborts)."""
    if not host_is_local:
        return ""
    path = LIBVIRT_QEMU_LOG_DIR / f"{name}.log"
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    hints = [line.strip() for line in lines if any(h in line for h in QEMU_LOG_HINTS) and "-accel" not in line]
    return " / ".join(hints[-3:])
