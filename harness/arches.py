"""The guest-architecture catalog: one frozen record per guest arch.

Data only: no I/O, no imports beyond the standard library, so that the
bootstrap script can read it with the system Python before any virtual
environment exists (see harness/requirements.py).
"""

from __future__ import annotations

from dataclasses import dataclass

ACCELERATORS = ("tcg", "kvm")


class UnknownNameError(ValueError):
    """A user-supplied arch or accelerator name that the catalog does not know."""


@dataclass(frozen=True)
class LibvirtConsole:
    """The libvirt device that carries the kernel console.

    Most machines take a <serial>; s390x has no serial port and needs a
    <console> whose target type is the SCLP line-mode console.
    """

    element: str  # "serial" or "console"
    target_type: str | None = None  # e.g. "sclp"


SERIAL = LibvirtConsole("serial")


@dataclass(frozen=True)
class Arch:
    name: str  # libvirt's arch name, also the scenario id prefix
    emulator: str  # qemu-system-* binary libvirt should pick for this guest arch
    qemu_package: str  # Debian package that ships the emulator
    machine_family: str  # default machine type alias (resolves to e.g. virt-7.2)
    tcg_cpu: str | None  # CPU model under TCG; None: the machine's default
    tcg_cpu_reason: str  # why that model (measured, see ARCHES.md)
    kernel_console: str  # console= device the kernel must enable
    libvirt_console: LibvirtConsole
    uname_machine: str  # what `uname -m` prints inside the guest
    byte_order: str  # "little" or "big": uname -m cannot tell for mips
    debian_arch: str | None  # None: Debian 12 ships no kernel, image is user-supplied
    kernel_package: str | None  # Debian meta package of the built-in image's kernel
    kernel_glob: str | None  # where the kernel sits inside that package
    os_trait: str | None  # os-traits COMPUTE_ARCH_* name, where one exists
    # libvirt has CPU drivers for x86, arm, ppc64 and s390 only: for other arches a
    # <cpu> element is refused, so the model reaches QEMU as -cpu through
    # <qemu:commandline> (libvirt marks such a domain "tainted: custom-argv").
    cpu_via_qemu_args: bool = False
    memory_mib: int = 512
    # Seconds from domain start to the login prompt before the cell fails.
    # Several times the raw-QEMU floor in ARCHES.md: CI runs two guests on two cores.
    boot_timeout_s: dict[str, float] | None = None
    # Domain start to login prompt under TCG, measured here (serial, warm cache): with -n, the longest
    # cells start first so that no worker is left with a long boot at the end.
    typical_tcg_boot_s: float = 5.0

    @property
    def has_builtin_image(self) -> bool:
        return self.kernel_package is not None

    def timeout_for(self, accel: str) -> float:
        table = self.boot_timeout_s or {}
        return table.get(accel, DEFAULT_TIMEOUT_S[accel])


DEFAULT_TIMEOUT_S = {"tcg": 120.0, "kvm": 60.0}

_CATALOG = (
    Arch(
        name="aarch64",
        typical_tcg_boot_s=1.5,
        emulator="qemu-system-aarch64",
        qemu_package="qemu-system-arm",
        machine_family="virt",
        tcg_cpu="cortex-a57",
        tcg_cpu_reason="what Nova picks for emulated aarch64; -cpu max emulates pointer auth and boots 4-5x slower",
        kernel_console="ttyAMA0",
        libvirt_console=SERIAL,
        uname_machine="aarch64",
        byte_order="little",
        debian_arch="arm64",
        kernel_package="linux-image-arm64",
        kernel_glob="boot/vmlinuz-*",
        os_trait="COMPUTE_ARCH_AARCH64",
    ),
    Arch(
        name="ppc64le",
        typical_tcg_boot_s=6.8,
        emulator="qemu-system-ppc64le",
        qemu_package="qemu-system-ppc",
        machine_family="pseries",
        tcg_cpu=None,
        tcg_cpu_reason="machine default; POWER8/9/10 boot alike under TCG",
        kernel_console="hvc0",
        libvirt_console=SERIAL,
        uname_machine="ppc64le",
        byte_order="little",
        debian_arch="ppc64el",
        kernel_package="linux-image-powerpc64le",
        kernel_glob="boot/vmlinux-*",
        os_trait="COMPUTE_ARCH_PPC64LE",
    ),
    Arch(
        name="ppc64",
        emulator="qemu-system-ppc64",
        qemu_package="qemu-system-ppc",
        machine_family="pseries",
        tcg_cpu=None,
        tcg_cpu_reason="machine default",
        kernel_console="hvc0",
        libvirt_console=SERIAL,
        uname_machine="ppc64",
        byte_order="big",
        debian_arch=None,
        kernel_package=None,
        kernel_glob=None,
        os_trait=None,
    ),
    Arch(
        name="s390x",
        typical_tcg_boot_s=3.0,
        emulator="qemu-system-s390x",
        qemu_package="qemu-system-misc",
        machine_family="s390-ccw-virtio",
        tcg_cpu=None,
        tcg_cpu_reason="machine default (the 'qemu' model under TCG)",
        kernel_console="ttysclp0",
        libvirt_console=LibvirtConsole("console", "sclp"),
        uname_machine="s390x",
        byte_order="big",
        debian_arch="s390x",
        kernel_package="linux-image-s390x",
        kernel_glob="boot/vmlinuz-*",
        os_trait="COMPUTE_ARCH_S390X",
    ),
    Arch(
        name="mips64el",
        typical_tcg_boot_s=3.9,
        emulator="qemu-system-mips64el",
        qemu_package="qemu-system-mips",
        machine_family="malta",
        tcg_cpu="5KEc",
        tcg_cpu_reason="the malta default (20Kc) prints nothing with Debian's 5kc-malta kernel; 5KEc boots it",
        kernel_console="ttyS0",
        libvirt_console=SERIAL,
        uname_machine="mips64",
        byte_order="little",
        debian_arch="mips64el",
        kernel_package="linux-image-5kc-malta",
        kernel_glob="boot/vmlinuz-*",
        os_trait=None,
        cpu_via_qemu_args=True,
    ),
    Arch(
        name="mipsel",
        typical_tcg_boot_s=4.4,
        emulator="qemu-system-mipsel",
        qemu_package="qemu-system-mips",
        machine_family="malta",
        tcg_cpu=None,
        tcg_cpu_reason="machine default (24Kf), runs Debian's 4kc-malta kernel",
        kernel_console="ttyS0",
        libvirt_console=SERIAL,
        uname_machine="mips",
        byte_order="little",
        debian_arch="mipsel",
        kernel_package="linux-image-4kc-malta",
        kernel_glob="boot/vmlinuz-*",
        os_trait="COMPUTE_ARCH_MIPSEL",
    ),
    Arch(
        name="mips",
        emulator="qemu-system-mips",
        qemu_package="qemu-system-mips",
        machine_family="malta",
        tcg_cpu=None,
        tcg_cpu_reason="machine default",
        kernel_console="ttyS0",
        libvirt_console=SERIAL,
        uname_machine="mips",
        byte_order="big",
        debian_arch=None,
        kernel_package=None,
        kernel_glob=None,
        os_trait=None,
    ),
    Arch(
        name="x86_64",
        typical_tcg_boot_s=2.3,
        emulator="qemu-system-x86_64",
        qemu_package="qemu-system-x86",
        machine_family="q35",
        tcg_cpu="qemu64",
        tcg_cpu_reason="QEMU's baseline x86_64 model; host models need KVM",
        kernel_console="ttyS0",
        libvirt_console=SERIAL,
        uname_machine="x86_64",
        byte_order="little",
        debian_arch="amd64",
        kernel_package="linux-image-cloud-amd64",
        kernel_glob="boot/vmlinuz-*",
        os_trait="COMPUTE_ARCH_X86_64",
    ),
)

ARCHES: dict[str, Arch] = {arch.name: arch for arch in _CATALOG}


def arch_named(name: str) -> Arch:
    try:
        return ARCHES[name]
    except KeyError:
        raise UnknownNameError(
            f"unknown guest arch {name!r}; valid arches: {', '.join(ARCHES)}"
        ) from None


def check_accelerator(name: str) -> str:
    if name not in ACCELERATORS:
        raise UnknownNameError(
            f"unknown accelerator {name!r}; valid accelerators: {', '.join(ACCELERATORS)}"
        )
    return name


def split_names(values: list[str] | None) -> list[str]:
    """Flatten repeatable, comma-separated option values; keep order, drop repeats."""
    names: list[str] = []
    for value in values or []:
        for name in value.split(","):
            name = name.strip()
            if name and name not in names:
                names.append(name)
    return names
