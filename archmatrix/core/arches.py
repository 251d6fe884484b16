"""The guest-architecture catalog: one frozen record per guest arch (archmatrix/core/arch.py), and its names.

Data only: no I/O, no imports beyond the standard library, so that the
bootstrap script can read it with the system Python before any virtual
environment exists (see archmatrix/requirements.py).
"""

from __future__ import annotations

from archmatrix.core.arch import (
    SERIAL,
    Arch,
    BusyboxInit,
    DebianKernel,
    ImageSource,
    LibvirtConsole,
    Nic,
    SourceKernel,
    SourceUserland,
    StaticInit,
)

ACCELERATORS = ("tcg", "kvm")


class UnknownNameError(ValueError):
    """A user-supplied arch or accelerator name that the catalog does not know."""


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
