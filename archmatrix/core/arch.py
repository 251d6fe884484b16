"""What a guest arch is: the frozen values the catalog (archmatrix/core/arches.py) is written in.

Data only: no I/O, no imports beyond the standard library, so that the bootstrap script can read the catalog
with the system Python before any virtual environment exists (see archmatrix/requirements.py).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LibvirtConsole:
    """The libvirt device that carries the kernel console.

    Most machines take a <serial>; s390x has no serial port and needs a
    <console> whose target type is the SCLP line-mode console.
    """

    element: str  # "serial" or "console"
    target_type: str | None = None  # e.g. "sclp"
    # Which serial port carries the console: the ports before it are connected to nothing.
    # (sh4's r2d board: the kernel's console is on the second port, the SCIF.)
    port: int = 0

    @property
    def device_name(self) -> str | None:
        """libvirt's console device name for virDomainOpenConsole; None: the first console."""
        return f"serial{self.port}" if self.port else None

SERIAL = LibvirtConsole("serial")


@dataclass(frozen=True)
class DebianKernel:
    """A kernel taken from a Debian kernel package."""

    debian_arch: str
    package: str  # the meta package (linux-image-arm64); it names the versioned one
    glob: str  # where the kernel file sits in the package that holds it
    # The Debian release the packages come from, None: the machine's own. An arch whose index does
    # not verify there (a mirror caught mid-sync) is taken from the next release, and the run says so.
    releases: tuple[str, ...] = ()
    # A board with no firmware to describe it (raspi0) boots with a device tree from the same package.
    dtb_glob: str | None = None


@dataclass(frozen=True)
class SourceKernel:
    """A kernel built from Debian's linux-source package with a Debian cross compiler.

    The config is tinyconfig plus `fragment` (a file in images/kernels/): the few
    options that machine, its console and an initramfs need.
    """

    make_arch: str  # ARCH= of the kernel's build
    cross_prefix: str  # CROSS_COMPILE=, e.g. powerpc64-linux-gnu-
    fragment: str
    target: str = "vmlinux"  # the make target
    output: str = "vmlinux"  # the file it leaves, relative to the build directory

    @property
    def compiler_package(self) -> str:
        return "gcc-" + self.cross_prefix.rstrip("-")


@dataclass(frozen=True)
class BusyboxInit:
    """/init is images/init.sh run by Debian's busybox-static of the kernel's arch and release."""


@dataclass(frozen=True)
class StaticInit:
    """/init is images/init.c, compiled static with the kernel's cross compiler.

    For arches that Debian builds no busybox-static for (no Debian port).
    """

    libc_package: str  # the cross C library to link against, e.g. libc6-dev-ppc64-cross
    cflags: tuple[str, ...] = ()  # with the reason, in the catalog entry


@dataclass(frozen=True)
class SourceUserland:
    """/init is images/init.sh run by busybox, which with the SSH server dropbear is built static from
    Debian's source packages with the kernel's cross compiler: for arches with no Debian port.
    """

    libc_package: str  # the cross C library to link against, e.g. libc6-dev-ppc64-cross
    cflags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Nic:
    """The guest's network card: QEMU's device, and the guest kernel modules its driver needs.

    Debian's kernels have them as modules, loaded by init.sh; kernels built from source have them
    built in (their fragments say so).
    """

    device: str  # QEMU's -device, e.g. virtio-net-pci
    modules: tuple[str, ...]
    # The driver of the virtio RNG that cells reaching the guest over SSH get (archmatrix/guest/domain.py), loaded
    # with the NIC's where the kernel has it as a module: the SSH server's host key needs entropy at once.
    rng_modules: tuple[str, ...] = ("virtio_rng",)

VIRTIO_PCI_NIC = Nic("virtio-net-pci", ("virtio_net", "virtio_pci"))


@dataclass(frozen=True)
class ImageSource:
    kernel: DebianKernel | SourceKernel
    init: BusyboxInit | StaticInit | SourceUserland

    @property
    def runs_ssh(self) -> bool:
        """Its init brings the network and an SSH server up (init.sh with dropbear)."""
        return not isinstance(self.init, StaticInit)

    @property
    def debian_packages(self) -> tuple[str, ...]:
        """Host packages (cross compilers, C libraries) the build needs; ./run installs them."""
        if isinstance(self.kernel, DebianKernel):
            return ()
        needed = [self.kernel.compiler_package, *BUILD_TOOLS]
        if isinstance(self.init, StaticInit | SourceUserland):
            needed.append(self.init.libc_package)
        if isinstance(self.init, SourceUserland):
            needed.append("dpkg-dev")  # dpkg-source: Debian's busybox and dropbear sources with their patches
        return tuple(needed)


# What building a kernel from source needs besides the cross compiler (the host gcc is a host package).
BUILD_TOOLS = ("make", "flex", "bison", "bc", "xz-utils")


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
    image: ImageSource | None  # where the built-in image comes from; None: see `no_image_reason`
    os_trait: str | None  # os-traits COMPUTE_ARCH_* name, where one exists
    # Why there is no built-in image, exactly (no Debian compiler for it, Linux dropped it, ...).
    no_image_reason: str | None = None
    # In the matrix when no --arch is given; the others run with --arch all (or by name).
    default: bool = True
    # libvirt has CPU drivers for x86, arm, ppc64 and s390 only: for other arches a
    # <cpu> element is refused, so the model reaches QEMU as -cpu through
    # <qemu:commandline> (libvirt marks such a domain "tainted: custom-argv").
    cpu_via_qemu_args: bool = False
    memory_mib: int = 512
    kernel_args: str = ""  # what the machine needs on every kernel command line, with the reason beside it
    # Seconds from domain start to the login prompt before the cell fails.
    # Several times the raw-QEMU floor in ARCHES.md: CI runs two guests on two cores.
    boot_timeout_s: dict[str, float] | None = None
    # Domain start to login prompt under TCG, measured here (serial, warm cache): with -n, the longest
    # cells start first so that no worker is left with a long boot at the end.
    typical_tcg_boot_s: float = 5.0
    # The NIC the guest is given for the checks that reach it over SSH; None: `no_nic_reason`.
    nic: Nic | None = VIRTIO_PCI_NIC
    no_nic_reason: str | None = None

    @property
    def has_builtin_image(self) -> bool:
        return self.image is not None

    @property
    def no_ssh_reason(self) -> str | None:
        """Why the built-in image of this arch cannot be reached over SSH, or None when it can."""
        if self.nic is None:
            return self.no_nic_reason
        if self.image is not None and not self.image.runs_ssh:
            return ("its built-in image's /init is images/init.c: no shell and no SSH server (busybox and "
                    "dropbear are built from source for ppc64 and mips only so far)")
        return None

    @property
    def builds_from_source(self) -> bool:
        return self.image is not None and isinstance(self.image.kernel, SourceKernel)

    def timeout_for(self, accel: str) -> float:
        table = self.boot_timeout_s or {}
        return table.get(accel, DEFAULT_TIMEOUT_S[accel])

    def kernel_cmdline(self, extra: str = "") -> str:
        """The built-in image's kernel command line, given directly or written into its firmware disk.

        panic=-1: a panicking kernel reboots at once, and on_reboot=destroy ends the domain.
        """
        return " ".join(filter(None, (f"console={self.kernel_console} panic=-1", self.kernel_args, extra)))

DEFAULT_TIMEOUT_S = {"tcg": 120.0, "kvm": 60.0}
