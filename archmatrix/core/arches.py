"""The guest-architecture catalog: one frozen record per guest arch.

Data only: no I/O, no imports beyond the standard library, so that the
bootstrap script can read it with the system Python before any virtual
environment exists (see archmatrix/requirements.py).
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

BUSYBOX = BusyboxInit()


def _debian(debian_arch: str, package: str, glob: str = "boot/vmlinuz-*", *releases: str,
            dtb_glob: str | None = None) -> ImageSource:
    return ImageSource(DebianKernel(debian_arch, package, glob, tuple(releases), dtb_glob), BUSYBOX)


def _from_source(make_arch: str, cross_prefix: str, fragment: str, libc_package: str,
                 target: str = "vmlinux", output: str = "vmlinux", init_cflags: tuple[str, ...] = (),
                 userland: bool = False) -> ImageSource:
    init = SourceUserland(libc_package, init_cflags) if userland else StaticInit(libc_package, init_cflags)
    return ImageSource(SourceKernel(make_arch, cross_prefix, fragment, target, output), init)


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
        image=_debian("arm64", "linux-image-arm64"),
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
        image=_debian("ppc64el", "linux-image-powerpc64le", "boot/vmlinux-*"),
        os_trait="COMPUTE_ARCH_PPC64LE",
    ),
    Arch(
        name="ppc64",
        typical_tcg_boot_s=6.5,
        emulator="qemu-system-ppc64",
        qemu_package="qemu-system-ppc",
        machine_family="pseries",
        tcg_cpu=None,
        tcg_cpu_reason="machine default",
        kernel_console="hvc0",
        libvirt_console=SERIAL,
        uname_machine="ppc64",
        byte_order="big",
        # No Debian release builds ppc64 (big-endian): the kernel and /init are built from source.
        image=_from_source("powerpc", "powerpc64-linux-gnu-", "ppc64.config", "libc6-dev-ppc64-cross",
                           userland=True),
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
        # s390x has channel I/O, not PCI; Debian builds the virtio-ccw transport in (CONFIG_S390_GUEST).
        nic=Nic("virtio-net-ccw", ("virtio_net",)),
        uname_machine="s390x",
        byte_order="big",
        image=_debian("s390x", "linux-image-s390x"),
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
        image=_debian("mips64el", "linux-image-5kc-malta"),
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
        image=_debian("mipsel", "linux-image-4kc-malta"),
        os_trait="COMPUTE_ARCH_MIPSEL",
    ),
    Arch(
        name="mips",
        typical_tcg_boot_s=3.0,
        emulator="qemu-system-mips",
        qemu_package="qemu-system-mips",
        machine_family="malta",
        tcg_cpu=None,
        tcg_cpu_reason="machine default (24Kf), runs a MIPS32r2 kernel",
        kernel_console="ttyS0",
        libvirt_console=SERIAL,
        uname_machine="mips",
        byte_order="big",
        # No Debian release builds mips (big-endian) since Debian 10: built from source.
        image=_from_source("mips", "mips-linux-gnu-", "mips.config", "libc6-dev-mips-cross", userland=True),
        os_trait=None,
    ),
    Arch(
        name="riscv64",
        typical_tcg_boot_s=3.0,
        emulator="qemu-system-riscv64",
        qemu_package="qemu-system-misc",
        machine_family="virt",
        tcg_cpu=None,
        tcg_cpu_reason="machine default (rv64); libvirt has no riscv CPU driver",
        kernel_console="ttyS0",
        libvirt_console=SERIAL,
        uname_machine="riscv64",
        byte_order="little",
        # Debian 12 has no riscv64 port; trixie (13) is the first release with one. The firmware
        # (OpenSBI) is QEMU's default for the virt machine, from qemu-system-data.
        image=_debian("riscv64", "linux-image-riscv64", "vmlinu[xz]*", "trixie", "forky"),
        os_trait="COMPUTE_ARCH_RISCV64",
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
        image=_debian("amd64", "linux-image-cloud-amd64"),
        os_trait="COMPUTE_ARCH_X86_64",
    ),
    # --- with --arch all: every other arch libvirt lists on a Debian 12 host -------------------
    Arch(
        name="armv7l",
        default=False,
        emulator="qemu-system-arm",
        qemu_package="qemu-system-arm",
        machine_family="virt",
        tcg_cpu="cortex-a15",
        tcg_cpu_reason="the virt machine's default (cortex-a15) named: Debian's armmp kernel needs ARMv7 with LPAE",
        kernel_console="ttyAMA0",
        libvirt_console=SERIAL,
        uname_machine="armv7l",
        byte_order="little",
        image=_debian("armhf", "linux-image-armmp"),
        os_trait=None,
        # The virt board's PCIe host fails to probe under a 32-bit kernel here ("can't claim ECAM area ...:
        # address conflict"): the NIC sits on one of the board's virtio-mmio slots instead.
        nic=Nic("virtio-net-device", ("virtio_net", "virtio_mmio")),
    ),
    Arch(
        name="i686",
        default=False,
        emulator="qemu-system-i386",
        qemu_package="qemu-system-x86",
        machine_family="pc",
        tcg_cpu="qemu32",
        tcg_cpu_reason="QEMU's baseline 32-bit model; Debian's 686 kernel needs PAE, which qemu32 has",
        kernel_console="ttyS0",
        libvirt_console=SERIAL,
        uname_machine="i686",
        byte_order="little",
        image=_debian("i386", "linux-image-686"),
        os_trait=None,
    ),
    Arch(
        name="mips64",
        default=False,
        emulator="qemu-system-mips64",
        qemu_package="qemu-system-mips",
        machine_family="malta",
        tcg_cpu="MIPS64R2-generic",
        tcg_cpu_reason="a MIPS64r2 core for the MIPS64r2 kernel (the malta default 20Kc is MIPS64r1)",
        kernel_console="ttyS0",
        libvirt_console=SERIAL,
        uname_machine="mips64",
        byte_order="big",
        image=_from_source("mips", "mips64-linux-gnuabi64-", "mips64.config", "libc6-dev-mips64-cross"),
        os_trait=None,
        cpu_via_qemu_args=True,
    ),
    Arch(
        name="ppc",
        default=False,
        emulator="qemu-system-ppc",
        qemu_package="qemu-system-ppc",
        machine_family="ppce500",
        tcg_cpu="e500mc",
        tcg_cpu_reason="the e500v2 default has no classic FPU, which Debian's powerpc C library uses; e500mc has one",
        kernel_console="ttyS0",
        libvirt_console=SERIAL,
        uname_machine="ppc",
        byte_order="big",
        image=_from_source("powerpc", "powerpc-linux-gnu-", "ppc.config", "libc6-dev-powerpc-cross"),
        os_trait=None,
        cpu_via_qemu_args=True,
    ),
    Arch(
        name="m68k",
        default=False,
        emulator="qemu-system-m68k",
        qemu_package="qemu-system-misc",
        machine_family="virt",
        tcg_cpu=None,
        tcg_cpu_reason="machine default (m68040)",
        kernel_console="ttyGF0",
        libvirt_console=SERIAL,
        uname_machine="m68k",
        byte_order="big",
        image=_from_source("m68k", "m68k-linux-gnu-", "m68k.config", "libc6-dev-m68k-cross"),
        os_trait=None,
    ),
    Arch(
        name="alpha",
        default=False,
        emulator="qemu-system-alpha",
        qemu_package="qemu-system-misc",
        machine_family="clipper",
        tcg_cpu=None,
        tcg_cpu_reason="machine default (ev67)",
        kernel_console="ttyS0",
        libvirt_console=SERIAL,
        uname_machine="alpha",
        byte_order="little",
        # --no-relax: the linker's relaxation turns glibc's weak &__ehdr_start test into 0, so a static
        # program never finds its TLS segment and dies in __ctype_init (traced with gdb).
        image=_from_source("alpha", "alpha-linux-gnu-", "alpha.config", "libc6.1-dev-alpha-cross",
                           init_cflags=("-Wl,--no-relax",)),
        os_trait=None,
    ),
    Arch(
        name="sh4",
        default=False,
        emulator="qemu-system-sh4",
        qemu_package="qemu-system-misc",
        machine_family="r2d",
        tcg_cpu=None,
        tcg_cpu_reason="machine default (SH7751R)",
        kernel_console="ttySC1",
        libvirt_console=LibvirtConsole("serial", port=1),
        uname_machine="sh4",
        byte_order="little",
        memory_mib=64,  # the r2d board has 64 MiB and takes no other size
        image=None,
        no_image_reason="Debian 12's sh4 cross compiler (gcc-12-sh4-linux-gnu 12.2.0-13cross1) drops compares at "
                        "-O1 and above (its sh_treg_combine pass), so the kernel it builds hangs in its zImage "
                        "decompressor and in printk; it is Debian 12's only sh4 compiler",
        os_trait=None,
    ),
    Arch(
        name="armv6l",
        default=False,
        emulator="qemu-system-arm",
        qemu_package="qemu-system-arm",
        machine_family="raspi0",
        tcg_cpu=None,
        tcg_cpu_reason="machine default (arm1176, the Pi Zero's ARMv6 core)",
        kernel_console="ttyAMA0",
        libvirt_console=SERIAL,
        uname_machine="armv6l",
        byte_order="little",
        memory_mib=512,  # the raspi0 board has 512 MiB and takes no other size
        # QEMU 7.2 does not emulate the BCM2835 power-management block: probing it is an external abort.
        kernel_args="initcall_blacklist=bcm2835_pm_driver_init",
        # Debian's armel Raspberry Pi kernel (ARMv6), with the Pi Zero's device tree from its package.
        image=_debian("armel", "linux-image-rpi", dtb_glob="bcm2835-rpi-zero.dtb"),
        os_trait=None,
        nic=None,
        no_nic_reason="QEMU's raspi0 board has no PCI and no other slot for a virtio NIC (only USB)",
    ),
    Arch(
        name="riscv32",
        default=False,
        emulator="qemu-system-riscv32",
        qemu_package="qemu-system-misc",
        machine_family="virt",
        tcg_cpu=None,
        tcg_cpu_reason="machine default",
        kernel_console="ttyS0",
        libvirt_console=SERIAL,
        uname_machine="riscv32",
        byte_order="little",
        image=None,
        no_image_reason="Debian ships no rv32 firmware for the virt machine (qemu-system-data has only "
                        "opensbi-riscv64-*) and no riscv32 C library to build an init with",
        os_trait=None,
    ),
    Arch(
        name="sh4eb",
        default=False,
        emulator="qemu-system-sh4eb",
        qemu_package="qemu-system-misc",
        machine_family="r2d",
        tcg_cpu=None,
        tcg_cpu_reason="machine default",
        kernel_console="ttySC1",
        libvirt_console=LibvirtConsole("serial", port=1),
        uname_machine="sh4",
        byte_order="big",
        image=None,
        no_image_reason="Debian's only SuperH cross compiler (gcc-sh4-linux-gnu) and C library are "
                        "little-endian; nothing in Debian builds big-endian sh4",
        os_trait=None,
    ),
    *(
        Arch(
            name=name,
            default=False,
            emulator=f"qemu-system-{name}",
            qemu_package="qemu-system-misc",
            machine_family=machine,
            tcg_cpu=None,
            tcg_cpu_reason="machine default",
            kernel_console=console,
            libvirt_console=SERIAL,
            uname_machine=uname,
            byte_order=order,
            image=None,
            no_image_reason=reason,
            os_trait=None,
        )
        for name, machine, console, uname, order, reason in (
            ("microblaze", "petalogix-s3adsp1800", "ttyUL0", "microblaze", "big",
             "Debian has no MicroBlaze cross compiler (no gcc-microblaze-linux-gnu in any release)"),
            ("microblazeel", "petalogix-s3adsp1800", "ttyUL0", "microblaze", "little",
             "Debian has no MicroBlaze cross compiler (no gcc-microblaze-linux-gnu in any release)"),
            ("xtensa", "lx60", "ttyS0", "xtensa", "little",
             "Debian has no Xtensa cross compiler (each Xtensa core needs its own toolchain overlay)"),
            ("xtensaeb", "lx60", "ttyS0", "xtensa", "big",
             "Debian has no Xtensa cross compiler (each Xtensa core needs its own toolchain overlay)"),
            ("cris", "axis-dev88", "ttyS0", "cris", "little",
             "Linux dropped the CRIS port in 4.17 (2018) and Debian has no CRIS compiler"),
        )
    ),
)

ARCHES: dict[str, Arch] = {arch.name: arch for arch in _CATALOG}


# --arch all: every arch of the catalog, not only the default matrix.
ALL_ARCHES = "all"


def default_arches() -> list[str]:
    return [arch.name for arch in _CATALOG if arch.default]


def arch_named(name: str) -> Arch:
    try:
        return ARCHES[name]
    except KeyError:
        raise UnknownNameError(
            f"unknown guest arch {name!r}; valid arches: {', '.join(ARCHES)} (or {ALL_ARCHES!r} for every one)"
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
