"""Lab hosts as data: virtual hosts of another arch, booted under this machine's TCG, whose KVM works.

QEMU's TCG emulates the virtualization extensions of some CPUs, so a guest of
that arch gets a working /dev/kvm and can run its own guests with KVM: the
only way for the harness to meet a host where KVM works, and a host that is
not x86_64, on machines that have neither. One entry per host arch says how
to boot such a host and what its kernel must load; an arch that cannot be a
lab host says why (measured, see the issue "Virtual hosts with working KVM").
"""

from __future__ import annotations

from dataclasses import dataclass


class UnknownLabHostError(ValueError):
    """A --lab-host that names no lab host, or one that cannot be built; says what is valid."""


@dataclass(frozen=True)
class LabKind:
    arch: str  # the lab host's own arch (libvirt's name), also the arch its KVM runs
    debian_arch: str
    emulator: str  # this machine's QEMU for it
    machine: str
    # Machine properties that give the guest the virtualization extensions; libvirt 9.0 has no element for
    # them, so they reach QEMU as a second -machine option, which QEMU merges with libvirt's.
    machine_options: str
    cpu: str
    cpu_features: tuple[str, ...]  # CPU features the lab needs for its KVM (libvirt's names)
    gic_version: str | None  # Arm: KVM needs the GIC the outer machine has (v3: no GICv2 emulation under KVM)
    console: str  # the lab kernel's console device
    kvm_modules: tuple[str, ...]  # what its kernel must load for /dev/kvm (empty: built in)
    emulator_packages: tuple[str, ...]  # the Debian packages of the QEMU emulators the lab offers
    kernel_package: str
    memory_mib: int
    # Its guests' boot bounds against this machine's: a TCG guest inside runs under two emulators (aarch64 81 s
    # to login there, 1.4 s here), and a KVM guest's every console byte is an exit its emulated host handles.
    timeout_factor: float = 4.0
    # Its TCG guests against the same on this machine, measured: aarch64 54x, x86_64 36x (on the aarch64 lab),
    # ppc64le 15x. It orders cells (the longest start first); it bounds nothing.
    tcg_slowdown: float = 30.0
    vcpus: int = 2
    unsupported: str | None = None  # why this arch cannot be a lab host here

    @property
    def label(self) -> str:
        return f"lab_{self.arch}"  # a host label has no "-": test ids join label, arch and accel with it


LAB_KINDS: dict[str, LabKind] = {
    kind.arch: kind for kind in (
        LabKind(
            arch="aarch64", debian_arch="arm64", emulator="/usr/bin/qemu-system-aarch64",
            machine="virt", machine_options="virtualization=on", cpu="cortex-a57", cpu_features=(), gic_version="3",
            console="ttyAMA0", kvm_modules=(),  # Debian's arm64 kernel has CONFIG_KVM=y
            emulator_packages=("qemu-system-arm", "qemu-system-x86"), kernel_package="linux-image-arm64",
            # The lab itself takes about 650 MB; its guests 256 MiB each, two at most at a time.
            memory_mib=1536,
        ),
        LabKind(
            arch="x86_64", debian_arch="amd64", emulator="/usr/bin/qemu-system-x86_64",
            # TCG emulates AMD's SVM, not Intel's VMX.
            machine="q35", machine_options="", cpu="qemu64", cpu_features=("svm",), gic_version=None,
            console="ttyS0", kvm_modules=("kvm_amd",),  # with kvm, ccp, irqbypass: its depends=
            emulator_packages=("qemu-system-x86",), kernel_package="linux-image-amd64",
            memory_mib=1536,
        ),
        LabKind(
            arch="ppc64le", debian_arch="ppc64el", emulator="/usr/bin/qemu-system-ppc64le",
            machine="pseries", machine_options="x-vof=on,cap-nested-hv=on", cpu="POWER9", cpu_features=(),
            gic_version=None, console="hvc0", kvm_modules=("kvm_hv",),
            emulator_packages=("qemu-system-ppc",), kernel_package="linux-image-powerpc64le",
            memory_mib=1536,
        ),
        LabKind(
            arch="s390x", debian_arch="s390x", emulator="/usr/bin/qemu-system-s390x",
            machine="s390-ccw-virtio", machine_options="", cpu="max", cpu_features=(), gic_version=None,
            console="ttysclp0", kvm_modules=("kvm",), emulator_packages=("qemu-system-s390x",),
            kernel_package="linux-image-s390x", memory_mib=1536,
            unsupported="QEMU's TCG does not emulate SIE, the s390x virtualization instruction: the lab's "
                        "kernel refuses to load kvm (\"SIE is not available\")",
        ),
    )
}


def lab_kind(name: str) -> LabKind:
    """The lab host of arch `name`; an unknown or unbuildable one is refused, naming the valid ones."""
    working = sorted(arch for arch, kind in LAB_KINDS.items() if kind.unsupported is None)
    kind = LAB_KINDS.get(name)
    if kind is None:
        raise UnknownLabHostError(f"--lab-host {name!r}: no such lab host; valid: {', '.join(working)}")
    if kind.unsupported:
        raise UnknownLabHostError(f"--lab-host {name!r}: {kind.unsupported}; valid: {', '.join(working)}")
    return kind
