"""The harness's command-line options, and their checking into a Settings value."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from archmatrix.core.arches import (
    ACCELERATORS,
    ALL_ARCHES,
    ARCHES,
    UnknownNameError,
    arch_named,
    check_accelerator,
    default_arches,
    split_names,
)
from archmatrix.core.plan import DEFAULT_SUCCESS_PATTERN
from archmatrix.core.timeouts import Timeouts
from archmatrix.hosts.lab_catalog import LAB_KINDS, UnknownLabHostError, lab_kind
from archmatrix.hosts.spec import (
    DEFAULT_URI,
    HostSpec,
    check_unique,
    parse_ssh,
    spec_for,
    specs_from_file,
    specs_from_uris,
)
from archmatrix.images.disk_image import DISK_SUFFIXES, looks_like_disk
from archmatrix.images.kernel_arch import kernel_arch
from archmatrix.inputs import InputError
from archmatrix.inputs.files import check_input_file, check_writable_dir, read_input_text
from archmatrix.inputs.numbers import CONSOLE_CAP_MIB, SECONDS, TB_CACHE_MIB, TIMEOUT_FACTOR, check_number
from archmatrix.inputs.text import check_text
from archmatrix.nova.environment import DEFAULT_VERSION as NOVA_VERSION
from archmatrix.nova.environment import pinned_nova_versions
from archmatrix.paths import default_cache_dir

CONTAINER_RELEASES = ("bookworm", "trixie")
# TCG's translation cache per guest. QEMU's default is 1 GiB; these boots fill less than 32 MiB of it
# (peak RSS and boot time alike at 16, 32, 64, 256 MiB and the default, measured per built-in arch), and
# 64 MiB bounds what many guests at once can take, as Nova's [libvirt]tb_cache_size does.
DEFAULT_TB_CACHE_MIB = 64  # Debian releases a container host can be built from


class OptionError(InputError):
    """An option value that cannot be used; the message names it and what is valid."""


@contextlib.contextmanager
def _option(name: str):
    """Errors of checks that do not know the option (an unknown arch, a bad number) raised as OptionError naming it."""
    try:
        yield
    except (InputError, UnknownNameError) as error:
        message = str(error)
        raise OptionError(message if message.startswith(name) else f"{name}: {message}") from None


@dataclass(frozen=True)
class Settings:
    arches: tuple[str, ...]  # empty: the catalog's default arches (or a test's marker)
    accels: tuple[str, ...]
    hosts: tuple[HostSpec, ...]  # the libvirt hosts given (or this machine); container hosts come on top
    image_cache: Path
    report_dir: Path
    user_images: dict[str, tuple[Path, Path | None]] = field(default_factory=dict)  # a disk: (disk, None)
    user_disks: frozenset[str] = frozenset()  # arches whose --image is a disk, booted through the firmware
    boot_from: str = "kernel"  # the built-in images: "kernel" (libvirt's direct boot) or "disk" (the firmware's)
    machines: dict[str, str] = field(default_factory=dict)
    kvm_probe_timeout: float = 20.0
    kvm_probe_first_output: float = 5.0
    timeout_factor: float = 1.0
    boot_timeouts: dict[str, float] = field(default_factory=dict)  # "arch" or "arch-accel" -> seconds
    kernel_args: dict[str, str] = field(default_factory=dict)
    success_patterns: dict[str, str] = field(default_factory=dict)  # arch -> regex its --image shows when up
    # arch -> Nova image properties: its cells boot what Nova's libvirt driver would (archmatrix/nova/plan.py)
    image_properties: dict[str, dict[str, str]] = field(default_factory=dict)
    console_cap_mib: float = 64.0
    tb_cache_mib: int = DEFAULT_TB_CACHE_MIB  # 0: QEMU's own default
    container_releases: tuple[str, ...] = ()
    lab_hosts: tuple[str, ...] = ()  # arches of the lab hosts the run boots (archmatrix/hosts/lab_catalog.py)
    lab_without_kvm: bool = False  # a planted fault: lab hosts boot without the virtualization extensions
    nova: bool = False  # also every cell with the domain Nova's own driver writes (archmatrix/nova/cells.py)
    nova_version: str = NOVA_VERSION
    nova_conf: dict[str, str] = field(default_factory=dict)  # "section.option" -> value, as nova.conf has it
    nova_config_drive: bool = True  # the Nova cells' instances ask for a config drive

    def timeouts(self, host_factor: float = 1.0, tcg_speed: float | None = None) -> Timeouts:
        """The run's one timeout policy (archmatrix/core/timeouts.py), on a host `host_factor` times slower, whose
        TCG was measured `tcg_speed` times slower than the reference machine's."""
        return Timeouts(self.timeout_factor, self.boot_timeouts, self.kvm_probe_timeout,
                        self.kvm_probe_first_output).for_host(host_factor, tcg_speed)


def add_options(parser) -> None:
    group = parser.getgroup("archmatrix", "archmatrix")
    group.addoption("--arch", action="append", default=[], metavar="ARCH[,ARCH...]",
                    help=f"guest arch(es) to run, repeatable; valid: {', '.join(ARCHES)}, or 'all' for every one "
                         f"(default: {', '.join(default_arches())})")
    group.addoption("--accel", action="append", default=[], metavar="ACCEL[,ACCEL...]",
                    help=f"accelerator(s), repeatable; valid: {', '.join(ACCELERATORS)} (default: all; "
                         "KVM cells are skipped with the KVM probe's reason unless KVM really works)")
    group.addoption("--libvirt-uri", action="append", default=[], metavar="[LABEL=]URI",
                    help=f"a libvirt host to verify, repeatable; LABEL names it in test ids and the matrix "
                         f"(default label: the host name). Default: {DEFAULT_URI}, or $ARCHMATRIX_LIBVIRT_URI")
    group.addoption("--hosts-file", default=None, metavar="FILE",
                    help="TOML file of hosts: [[host]] tables with uri and optional label, ssh (USER@HOST[:PORT]), "
                         "ssh_key, ssh_fingerprint (SHA256:...), ssh_known_hosts")
    group.addoption("--host-ssh", action="append", default=[], metavar="LABEL=USER@HOST[:PORT][,key=PATH]...",
                    help="an SSH way into a host, for its facts and its QEMU processes; settings key=, "
                         "fingerprint=SHA256:... (pinned host key), known_hosts= (default ~/.ssh/known_hosts)")
    group.addoption("--container-host", action="append", default=[], metavar="RELEASE[,RELEASE...]",
                    help=f"also verify a Docker container running libvirtd and QEMU of this Debian release, "
                         f"built and started by the run; valid: {', '.join(CONTAINER_RELEASES)}")
    group.addoption("--lab-host", action="append", default=[], metavar="ARCH[,ARCH...]",
                    help="also verify a lab host: a virtual host of that arch booted by the run under this "
                         "machine's TCG with the virtualization extensions on, so its KVM works; built from Debian "
                         f"packages; valid: {', '.join(working_lab_arches())}")
    group.addoption("--nova", action="store_true", default=False,
                    help="also boot every cell with the domain OpenStack Nova's own libvirt driver writes for it: "
                         "the arch's image properties as Nova's nova-emulation job sets them, and --image-property's, "
                         "booted from the arch's built-in firmware disk (or its --image disk) with a config drive; "
                         "their ids end in -nova (-k nova)")
    group.addoption("--nova-version", default=NOVA_VERSION, metavar="VERSION",
                    help=f"the Nova whose driver writes the Nova cells' domains, installed into an environment of its "
                         f"own on first use (default: {NOVA_VERSION}; pinned: {', '.join(pinned_nova_versions())})")
    group.addoption("--nova-conf", action="append", default=[], metavar="SECTION.OPTION=VALUE",
                    help="a nova.conf option for the Nova cells, repeatable: e.g. libvirt.cpu_mode=host-model, "
                         "libvirt.cpu_models=cortex-a72, libvirt.hw_machine_type=aarch64=virt, "
                         "libvirt.tb_cache_size=128; [libvirt] virt_type is the cell's accelerator (kvm, or qemu "
                         "for tcg)")
    group.addoption("--nova-without-config-drive", action="store_true", default=False,
                    help="the Nova cells' instances ask for no config drive (default: they do, as "
                         "`openstack server create --config-drive true`)")
    group.addoption("--lab-host-without-kvm", action="store_true", default=False,
                    help="boot the lab hosts without the virtualization extensions (no /dev/kvm in them): a planted "
                         "fault, under which their KVM cells must be unsupported")
    group.addoption("--image-cache", default=None, metavar="DIR",
                    help=f"content-addressed image cache (default: {default_cache_dir()})")
    group.addoption("--image", action="append", default=[], metavar="ARCH=KERNEL[,INITRD]|ARCH=DISK",
                    help="boot a user-supplied kernel (and initrd), or a disk image (qcow2 or raw) through the "
                         "arch's firmware, for ARCH instead of the built-in image (the only way for the arches "
                         "without one); it is up when its console shows --success-pattern")
    group.addoption("--boot-from", choices=BOOT_FROM, default="kernel",
                    help="how the built-in images boot: 'kernel', libvirt's direct kernel boot, or 'disk', a disk "
                         "through the arch's firmware as a Glance image boots (UEFI on aarch64 and x86_64, SLOF on "
                         "ppc64le, the s390-ccw BIOS on s390x; other arches are unsupported) (default: kernel)")
    group.addoption("--success-pattern", action="append", default=[], metavar="ARCH=REGEX",
                    help="what the console of ARCH's --image shows once it is up (a Python regular expression; "
                         f"default: a login prompt, {DEFAULT_SUCCESS_PATTERN!r})")
    group.addoption("--image-property", action="append", default=[], metavar="ARCH=KEY=VALUE",
                    help="a Nova image property for ARCH's cells, repeatable: they boot the machine, CPU and "
                         "firmware Nova's libvirt driver would pick (see `archmatrix nova-plan`)")
    group.addoption("--image-properties", action="append", default=[], metavar="ARCH=FILE",
                    help="ARCH's image properties from a file: `openstack image show -f json` output or KEY=VALUE "
                         "lines")
    group.addoption("--machine", action="append", default=[], metavar="ARCH=MACHINE",
                    help="machine type for ARCH instead of its default family; checked against that "
                         "arch's emulator before any boot")
    # The numbers are taken as text and checked by settings_from: finite, and in the range their help states.
    group.addoption("--kvm-probe-timeout", default=20.0, metavar="SECONDS",
                    help=f"how long the KVM probe guest may take to print its banner: {SECONDS} (default: 20)")
    group.addoption("--kvm-probe-first-output", default=5.0, metavar="SECONDS",
                    help="the KVM probe guest's first console byte must come within this, or KVM is found broken "
                         f"at once: {SECONDS} (default: 5; a kernel under working KVM prints within a second)")
    group.addoption("--timeout-factor", default=1.0, metavar="FACTOR",
                    help=f"multiply every per-arch boot timeout, for slow hosts: {TIMEOUT_FACTOR} (default: 1.0)")
    group.addoption("--boot-timeout", action="append", default=[], metavar="ARCH[-ACCEL]=SECONDS",
                    help="boot timeout for an arch (or one cell), instead of the catalog's: "
                         f"{SECONDS}; --timeout-factor still applies")
    group.addoption("--kernel-args", action="append", default=[], metavar="ARCH=ARGS",
                    help="extra kernel command line arguments for ARCH's guests (printable ASCII, no <>&)")
    group.addoption("--console-cap", default=64.0, metavar="MIB",
                    help="a guest whose console passes this size fails at once as a console flood; the harness's "
                         f"log of it keeps head and tail with a note of what was dropped: {CONSOLE_CAP_MIB} "
                         "(default: 64)")
    group.addoption("--tb-cache", default=DEFAULT_TB_CACHE_MIB, metavar="MIB",
                    help=f"TCG translation cache per guest: {TB_CACHE_MIB} (default: {DEFAULT_TB_CACHE_MIB}; "
                         "QEMU's own is 1 GiB)")
    group.addoption("--report-dir", default="reports", metavar="DIR",
                    help="where matrix.json, junit.xml, matrix.md, matrix.html and console logs go "
                         "(default: reports)")


def _pairs(values: list[str], option: str, shape: str) -> dict[str, str]:
    pairs = {}
    for value in values:
        check_text(value, option, shape)
        arch, sep, rest = value.partition("=")
        if not sep or not rest:
            raise OptionError(f"{option} {value!r} is not of the form {shape}")
        pairs[arch_named(arch).name] = rest
    return pairs


def _names(values: list[str], option: str, valid: str) -> list[str]:
    """Comma-separated names, each value checked as text first: split_names would drop an empty one silently."""
    for value in values:
        check_text(value, option, valid)
        if not split_names([value]):
            raise OptionError(f"{option}: {value!r} names nothing; valid: {valid}")
    return split_names(values)


def settings_from(options) -> Settings:
    """Check every option; raise OptionError naming the option and what is valid."""
    with _option("--arch"):
        names = _names(options.arch, "--arch", f"arch names, comma-separated: {', '.join(ARCHES)}, or {ALL_ARCHES}")
        arches = tuple(ARCHES) if ALL_ARCHES in names else tuple(arch_named(name).name for name in names)
    with _option("--accel"):
        accels = tuple(check_accelerator(name) for name in _names(
            options.accel, "--accel", f"accelerator names, comma-separated: {', '.join(ACCELERATORS)}")) or ACCELERATORS
    with _option("--image"):
        images, disks = user_images(options.image)
    with _option("--timeout-factor"):
        timeout_factor = check_number(options.timeout_factor, "--timeout-factor", TIMEOUT_FACTOR)
    with _option("--kvm-probe-timeout"):
        kvm_probe_timeout = check_number(options.kvm_probe_timeout, "--kvm-probe-timeout", SECONDS)
    with _option("--kvm-probe-first-output"):
        kvm_probe_first_output = check_number(options.kvm_probe_first_output, "--kvm-probe-first-output", SECONDS)
    with _option("--console-cap"):
        console_cap = check_number(options.console_cap, "--console-cap", CONSOLE_CAP_MIB)
    with _option("--tb-cache"):
        tb_cache = check_number(options.tb_cache, "--tb-cache", TB_CACHE_MIB)
    with _option("--boot-timeout"):
        timeouts = {key: check_number(value, f"--boot-timeout {key}", SECONDS)
                    for key, value in _cell_pairs(options.boot_timeout).items()}
    with _option("--success-pattern"):
        success_patterns = _pairs(options.success_pattern, "--success-pattern", "ARCH=REGEX")
        for arch, pattern in success_patterns.items():
            check_success_pattern(arch, pattern, images)
    image_properties = nova_properties(options)
    with _option("--kernel-args"):
        kernel_args = _pairs(options.kernel_args, "--kernel-args", "ARCH=ARGS")
        for arch, args in kernel_args.items():
            check_kernel_args(arch, args)
            if arch in disks:
                raise OptionError(f"--kernel-args {arch}=...: {arch}'s --image is a disk, whose own bootloader gives "
                                  f"its kernel the arguments; --kernel-args is for kernels booted directly")
    with _option("--machine"):
        machines = _pairs(options.machine, "--machine", "ARCH=MACHINE")
    with _option("--image-cache"):
        image_cache = Path(check_text(options.image_cache, "--image-cache", "a directory")) if (
            options.image_cache is not None) else default_cache_dir()
    with _option("--report-dir"):
        report_dir = Path(check_text(options.report_dir, "--report-dir", "a directory"))
    with _option("--container-host"):
        releases = container_releases(options.container_host)
    with _option("--lab-host"):
        labs = lab_hosts(options.lab_host)
    with _option("--nova-version"):
        nova_version = check_nova_version(options.nova_version)
    with _option("--nova-conf"):
        nova_conf = nova_conf_pairs(options.nova_conf)
    return Settings(
        nova=options.nova,
        nova_version=nova_version,
        nova_conf=nova_conf,
        nova_config_drive=not options.nova_without_config_drive,
        arches=arches,
        accels=accels,
        hosts=host_specs(options),
        container_releases=releases,
        lab_hosts=labs,
        lab_without_kvm=options.lab_host_without_kvm,
        image_cache=image_cache,
        report_dir=report_dir,
        user_images=images,
        user_disks=frozenset(disks),
        boot_from=options.boot_from,
        machines=machines,
        kvm_probe_timeout=kvm_probe_timeout,
        kvm_probe_first_output=kvm_probe_first_output,
        timeout_factor=timeout_factor,
        boot_timeouts=timeouts,
        kernel_args=kernel_args,
        success_patterns=success_patterns,
        image_properties=image_properties,
        console_cap_mib=console_cap,
        tb_cache_mib=tb_cache,
    )


def user_images(values: list[str]) -> tuple[dict[str, tuple[Path, Path | None]], set[str]]:
    """--image ARCH=KERNEL[,INITRD] or ARCH=DISK: the files, and the arches whose file is a disk."""
    images, disks = {}, set()
    for arch, files in _pairs(values, "--image", "ARCH=KERNEL[,INITRD]|ARCH=DISK").items():
        kernel, comma, initrd = files.partition(",")
        if comma and not initrd:
            raise OptionError(f"--image {arch}={files}: the initrd after ',' is empty; valid: ARCH=KERNEL[,INITRD]")
        if not initrd and Path(kernel).suffix.lower() in DISK_SUFFIXES:
            # Checked by its cells, not here: a disk that cannot be booted (a missing one too) stops them, not
            # the run. Something there that is no file at all (a FIFO, a directory) is no disk.
            check_input_file(kernel, f"--image {arch}=...: the disk", missing_ok=True)
            images[arch] = (Path(kernel), None)
            disks.add(arch)
            continue
        check_input_file(kernel, f"--image {arch}=...: the {'kernel' if initrd else 'kernel or disk'}")
        if not initrd and looks_like_disk(Path(kernel)):  # read only now: it is a regular file
            images[arch] = (Path(kernel), None)
            disks.add(arch)
            continue
        images[arch] = check_user_image(arch, Path(kernel), Path(initrd) if initrd else None)
    return images, disks


KERNEL_ARGS_MAX = 1024
BOOT_FROM = ("kernel", "disk")


def check_user_image(arch: str, kernel: Path, initrd: Path | None) -> tuple[Path, Path | None]:
    """A user's kernel must be readable and, where its header tells, built for `arch`."""
    for label, path in (("kernel", kernel), ("initrd", initrd)):
        if path is not None:
            with _option("--image"):
                check_input_file(path, f"--image {arch}=...: the {label}")
    try:
        built_for = kernel_arch(kernel)
    except OSError as error:
        raise OptionError(f"--image {arch}=...: the kernel {kernel} cannot be read: {error.strerror or error}; "
                          f"valid: a readable regular file") from None
    if built_for is not None and built_for != arch:
        raise OptionError(f"--image {arch}=...: the kernel {kernel} is built for {built_for}, not {arch} "
                          f"(read from its header)")
    return kernel, initrd


def check_report_dir(path: Path) -> Path:
    """The report directory must exist or be creatable, and be writable, before anything boots.

    Tried for real and made only when the reports are written: a session that runs no cell leaves none behind.
    """
    with _option("--report-dir"):
        return check_writable_dir(path, "--report-dir", keep=False)


def check_image_cache(path: Path) -> Path:
    """The image cache must be a directory that can be written (the cache makes it when it is first used)."""
    with _option("--image-cache"):
        return check_writable_dir(path, "--image-cache", keep=False)


def nova_properties(options) -> dict[str, dict[str, str]]:
    """--image-properties ARCH=FILE, then --image-property ARCH=KEY=VALUE on top; each checked as Nova would."""
    from archmatrix.nova.plan import check_properties, read_properties

    properties: dict[str, dict[str, str]] = {}
    with _option("--image-properties"):
        for value in options.image_properties:
            (arch, path), = _pairs([value], "--image-properties", "ARCH=FILE").items()
            text = read_input_text(path, f"--image-properties {arch}=...: the file")
            properties.setdefault(arch, {}).update(read_properties(text, path))
        for values in properties.values():
            check_properties(values)
    with _option("--image-property"):
        for value in options.image_property:
            check_text(value, "--image-property", "ARCH=KEY=VALUE")
            arch, sep, pair = value.partition("=")
            if not sep or "=" not in pair:
                raise OptionError(f"--image-property {value!r} is not of the form ARCH=KEY=VALUE")
            properties.setdefault(arch_named(arch).name, {}).update(read_properties(pair, "--image-property"))
        for values in properties.values():
            check_properties(values)
    return properties


def check_success_pattern(arch: str, pattern: str, images: dict) -> str:
    """A regular expression that compiles, for an arch whose image is the user's (ours print their banner)."""
    if arch not in images:
        raise OptionError(f"--success-pattern {arch}=...: only for an image of your own (--image {arch}=...); "
                          f"the built-in {arch} image is judged by the banner its /init prints")
    try:
        re.compile(pattern.encode(errors="surrogateescape"))  # a console is bytes; so is what argv could not decode
    except (re.error, OverflowError) as error:
        raise OptionError(f"--success-pattern {arch}={pattern!r} is not a valid regular expression: {error}; valid: "
                          f"a Python regular expression") from None
    return pattern


def check_kernel_args(arch: str, args: str) -> str:
    """Refuse kernel arguments that are not plain printable ASCII or could read as markup."""
    bad = sorted({c for c in args if not (" " <= c <= "~") or c in "<>&"})
    if bad:
        raise OptionError(f"--kernel-args {arch}=...: characters not allowed in kernel arguments: "
                          f"{', '.join(repr(c) for c in bad)}; valid: printable ASCII without < > &")
    if len(args) > KERNEL_ARGS_MAX:
        raise OptionError(f"--kernel-args {arch}=...: {len(args)} characters, more than {KERNEL_ARGS_MAX}; valid: "
                          f"at most {KERNEL_ARGS_MAX}")
    return args


def _cell_pairs(values: list[str]) -> dict[str, str]:
    """ARCH[-ACCEL]=VALUE pairs, with ARCH and ACCEL checked against the catalog."""
    pairs = {}
    for value in values:
        check_text(value, "--boot-timeout", "ARCH[-ACCEL]=SECONDS")
        key, sep, rest = value.partition("=")
        if not sep or not rest:
            raise OptionError(f"--boot-timeout {value!r} is not of the form ARCH[-ACCEL]=SECONDS")
        arch, dash, accel = key.partition("-")
        name = arch_named(arch).name + (f"-{check_accelerator(accel)}" if dash else "")
        pairs[name] = rest
    return pairs


def host_specs(options) -> tuple[HostSpec, ...]:
    """The hosts named by --libvirt-uri and --hosts-file, or this machine; with --host-ssh applied."""
    with _option("--libvirt-uri"):
        specs = specs_from_uris(options.libvirt_uri)
    with _option("--hosts-file"):
        if options.hosts_file is not None:
            specs += specs_from_file(Path(check_input_file(options.hosts_file, "--hosts-file")))
    if not specs:
        from_environment = os.environ.get("ARCHMATRIX_LIBVIRT_URI")
        where = "$ARCHMATRIX_LIBVIRT_URI" if from_environment else "default"
        with _option(where):
            specs = [spec_for(from_environment or DEFAULT_URI, where=where)]
    with _option("--libvirt-uri and --hosts-file"):
        by_label = {spec.label: spec for spec in check_unique(specs)}
    with _option("--host-ssh"):
        for value in options.host_ssh:
            check_text(value, "--host-ssh", "LABEL=USER@HOST[:PORT][,key=PATH]...")
            label, sep, access = value.partition("=")
            if not sep or label not in by_label:
                raise OptionError(f"--host-ssh {value!r}: the label before '=' must name a host of this run; "
                                  f"valid: {', '.join(by_label)}")
            by_label[label] = dataclasses.replace(by_label[label], ssh=parse_ssh(access, f"--host-ssh {label}"))
    return tuple(by_label.values())


def working_lab_arches() -> list[str]:
    return sorted(arch for arch, kind in LAB_KINDS.items() if kind.unsupported is None)


NOVA_VERSION_FORM = re.compile(r"[0-9]{1,3}(\.[0-9]{1,4}){1,3}")
NOVA_CONF_FORM = re.compile(r"(?P<section>[a-z][a-z0-9_]*|DEFAULT)\.(?P<option>[a-z][a-z0-9_]*)=(?P<value>.+)",
                            re.DOTALL)
# Set by archmatrix for every Nova cell: the cell's accelerator, and where the run keeps the instance's files.
NOVA_CONF_OWN = ("libvirt.virt_type", "DEFAULT.instances_path")


def check_nova_version(version: str) -> str:
    check_text(version, "--nova-version", "a Nova release such as 34.0.0")
    if not NOVA_VERSION_FORM.fullmatch(version):
        raise OptionError(f"--nova-version {version!r} is not a release number; valid: a Nova release on PyPI such as "
                          f"{', '.join(pinned_nova_versions())}")
    return version


def nova_conf_pairs(values: list[str]) -> dict[str, str]:
    """--nova-conf SECTION.OPTION=VALUE values; Nova's own configuration checks each value's type."""
    conf = {}
    for value in values:
        check_text(value, "--nova-conf", "SECTION.OPTION=VALUE")
        found = NOVA_CONF_FORM.fullmatch(value)
        if not found:
            raise OptionError(f"--nova-conf {value!r} is not of the form SECTION.OPTION=VALUE, e.g. "
                              f"libvirt.cpu_mode=host-model")
        section = "DEFAULT" if found["section"] == "default" else found["section"]
        key = f"{section}.{found['option']}"
        if key in NOVA_CONF_OWN:
            raise OptionError(f"--nova-conf {value!r}: {key} is archmatrix's to set for every Nova cell (virt_type is "
                              f"the cell's accelerator); valid: any other nova.conf option")
        conf[key] = found["value"]
    return conf


def lab_hosts(values: list[str]) -> tuple[str, ...]:
    arches = tuple(dict.fromkeys(_names(values, "--lab-host", f"lab host arches: {', '.join(working_lab_arches())}")))
    for arch in arches:
        try:
            lab_kind(arch)
        except UnknownLabHostError as error:
            raise OptionError(str(error)) from None
    return arches


def container_releases(values: list[str]) -> tuple[str, ...]:
    releases = tuple(_names(values, "--container-host", f"Debian releases: {', '.join(CONTAINER_RELEASES)}"))
    for release in releases:
        if release not in CONTAINER_RELEASES:
            raise OptionError(f"--container-host {release!r}: no such container host; valid: "
                              f"{', '.join(CONTAINER_RELEASES)}")
    return releases


def check_machines(settings: Settings) -> None:
    """--machine names a machine of that arch's emulator: asked of each local host's libvirt, before any worker starts.

    Remote and container hosts are asked when their cells plan: a machine type
    they lack makes those cells errors, naming the valid ones.
    """
    if not settings.machines:
        return
    import libvirt

    from archmatrix.core.capabilities import parse_capabilities
    from archmatrix.hosts.spec import redact_uri

    for spec in settings.hosts:
        if not spec.is_local:
            continue
        try:
            conn = libvirt.open(spec.uri)
        except libvirt.libvirtError as error:
            raise OptionError(f"--machine needs libvirt to check it, and {redact_uri(spec.uri)} "
                              f"cannot be reached: {error}") from None
        try:
            capabilities = parse_capabilities(conn.getCapabilities())
        finally:
            conn.close()
        for arch, machine in settings.machines.items():
            offer = capabilities.offer_for(arch)
            if offer is not None and machine not in offer.machines:
                raise OptionError(f"--machine {arch}={machine}: {offer.emulator} has no such machine type; "
                                  f"valid: {', '.join(offer.machine_family_names())}")


class _ArgparseGroups:
    """pytest's parser.getgroup(...).addoption(...), over argparse: the same options outside pytest."""

    def __init__(self, parser):
        self.parser = parser

    def getgroup(self, name: str, description: str = ""):
        group = self.parser.add_argument_group(description or name)
        group.addoption = group.add_argument
        return group


def add_options_to_argparse(parser) -> None:
    """The run's options on an argparse parser (the `archmatrix cell` command, the benchmarks)."""
    add_options(_ArgparseGroups(parser))


def settings_for(argv: list[str]) -> Settings:
    """Settings from command-line words, as the pytest plugin would check them (OptionError on bad input)."""
    import argparse

    parser = argparse.ArgumentParser(add_help=False)
    add_options_to_argparse(parser)
    return settings_from(parser.parse_args(argv))


def option_defaults() -> dict[str, object]:
    """Every option's destination and default, as add_options declares them."""
    import argparse

    parser = argparse.ArgumentParser(add_help=False)
    add_options_to_argparse(parser)
    return vars(parser.parse_args([]))


def checked_settings(options, controller: bool = True) -> Settings:
    """Every option checked as a run checks it, before anything of the run exists; OptionError if one is bad.

    The controller also asks this machine's libvirt about --machine and tries the image cache and the report
    directory; workers were started by a controller that did. Nothing is left made by the tries.
    """
    settings = settings_from(options)
    if controller:
        check_machines(settings)
        check_image_cache(settings.image_cache)
        check_report_dir(settings.report_dir)
    return settings
