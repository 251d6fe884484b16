"""The harness's command-line options, and their checking into a Settings value."""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from archmatrix.core.arches import (
    ACCELERATORS,
    ALL_ARCHES,
    ARCHES,
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
    HostSpecError,
    check_unique,
    parse_ssh,
    spec_for,
    specs_from_file,
    specs_from_uris,
)
from archmatrix.images.disk_image import looks_like_disk, not_regular
from archmatrix.images.kernel_arch import kernel_arch
from archmatrix.paths import default_cache_dir

CONTAINER_RELEASES = ("bookworm", "trixie")
# TCG's translation cache per guest. QEMU's default is 1 GiB; these boots fill less than 32 MiB of it
# (peak RSS and boot time alike at 16, 32, 64, 256 MiB and the default, measured per built-in arch), and
# 64 MiB bounds what many guests at once can take, as Nova's [libvirt]tb_cache_size does.
DEFAULT_TB_CACHE_MIB = 64  # Debian releases a container host can be built from


class OptionError(ValueError):
    """An option value that cannot be used; the message names it and what is valid."""


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

    def timeouts(self, host_factor: float = 1.0) -> Timeouts:
        """The run's one timeout policy (archmatrix/core/timeouts.py), on a host `host_factor` times slower."""
        return Timeouts(self.timeout_factor, self.boot_timeouts, self.kvm_probe_timeout,
                        self.kvm_probe_first_output).for_host(host_factor)


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
    group.addoption("--kvm-probe-timeout", type=float, default=20.0, metavar="SECONDS",
                    help="how long the KVM probe guest may take to print its banner (default: 20)")
    group.addoption("--kvm-probe-first-output", type=float, default=5.0, metavar="SECONDS",
                    help="the KVM probe guest's first console byte must come within this, or KVM is found broken "
                         "at once (default: 5; a kernel under working KVM prints within a second)")
    group.addoption("--timeout-factor", type=float, default=1.0, metavar="FACTOR",
                    help="multiply every per-arch boot timeout, for slow hosts (default: 1.0)")
    group.addoption("--boot-timeout", action="append", default=[], metavar="ARCH[-ACCEL]=SECONDS",
                    help="boot timeout for an arch (or one cell), instead of the catalog's; "
                         "--timeout-factor still applies")
    group.addoption("--kernel-args", action="append", default=[], metavar="ARCH=ARGS",
                    help="extra kernel command line arguments for ARCH's guests (printable ASCII, no <>&)")
    group.addoption("--console-cap", type=float, default=64.0, metavar="MIB",
                    help="a guest whose console passes this size fails at once as a console flood; the harness's "
                         "log of it keeps head and tail with a note of what was dropped (default: 64)")
    group.addoption("--tb-cache", type=int, default=DEFAULT_TB_CACHE_MIB, metavar="MIB",
                    help=f"TCG translation cache per guest (default: {DEFAULT_TB_CACHE_MIB}; 0: QEMU's own default, "
                         "1 GiB)")
    group.addoption("--report-dir", default="reports", metavar="DIR",
                    help="where matrix.json, junit.xml, matrix.md, matrix.html and console logs go "
                         "(default: reports)")


def _pairs(values: list[str], option: str, shape: str) -> dict[str, str]:
    pairs = {}
    for value in values:
        arch, sep, rest = value.partition("=")
        if not sep or not rest:
            raise OptionError(f"{option} {value!r} is not of the form {shape}")
        pairs[arch_named(arch).name] = rest
    return pairs


def settings_from(options) -> Settings:
    """Check every option; raise OptionError (or UnknownNameError) naming what is valid."""
    names = split_names(options.arch)
    arches = tuple(ARCHES) if ALL_ARCHES in names else tuple(arch_named(name).name for name in names)
    accels = tuple(check_accelerator(name) for name in split_names(options.accel)) or ACCELERATORS
    images, disks = {}, set()
    for arch, files in _pairs(options.image, "--image", "ARCH=KERNEL[,INITRD]").items():
        kernel, _, initrd = files.partition(",")
        if not initrd and looks_like_disk(Path(kernel)):
            # Checked by its cells, not here: a disk that cannot be booted stops them, not the run.
            images[arch] = (Path(kernel), None)
            disks.add(arch)
            continue
        images[arch] = check_user_image(arch, Path(kernel), Path(initrd) if initrd else None)
    for value, name in ((options.timeout_factor, "--timeout-factor"),
                        (options.kvm_probe_timeout, "--kvm-probe-timeout"),
                        (options.kvm_probe_first_output, "--kvm-probe-first-output")):
        if value <= 0:
            raise OptionError(f"{name} must be a positive number, not {value}")
    timeouts = {}
    for key, value in _cell_pairs(options.boot_timeout).items():
        try:
            timeouts[key] = float(value)
        except ValueError:
            timeouts[key] = -1.0
        if timeouts[key] <= 0:
            raise OptionError(f"--boot-timeout {key}={value}: the timeout must be a positive number of seconds")
    success_patterns = _pairs(options.success_pattern, "--success-pattern", "ARCH=REGEX")
    for arch, pattern in success_patterns.items():
        check_success_pattern(arch, pattern, images)
    image_properties = nova_properties(options)
    kernel_args = _pairs(options.kernel_args, "--kernel-args", "ARCH=ARGS")
    for arch, args in kernel_args.items():
        check_kernel_args(arch, args)
        if arch in disks:
            raise OptionError(f"--kernel-args {arch}=...: {arch}'s --image is a disk, whose own bootloader gives "
                              f"its kernel the arguments; --kernel-args is for kernels booted directly")
    if options.tb_cache < 0:
        raise OptionError(f"--tb-cache must be 0 (QEMU's default) or a positive number of MiB, not {options.tb_cache}")
    if options.console_cap <= 0:
        raise OptionError(f"--console-cap must be a positive number of MiB, not {options.console_cap}")
    return Settings(
        arches=arches,
        accels=accels,
        hosts=host_specs(options),
        container_releases=container_releases(options.container_host),
        lab_hosts=lab_hosts(options.lab_host),
        lab_without_kvm=options.lab_host_without_kvm,
        image_cache=Path(options.image_cache) if options.image_cache else default_cache_dir(),
        report_dir=Path(options.report_dir),
        user_images=images,
        user_disks=frozenset(disks),
        boot_from=options.boot_from,
        machines=_pairs(options.machine, "--machine", "ARCH=MACHINE"),
        kvm_probe_timeout=options.kvm_probe_timeout,
        kvm_probe_first_output=options.kvm_probe_first_output,
        timeout_factor=options.timeout_factor,
        boot_timeouts=timeouts,
        kernel_args=kernel_args,
        success_patterns=success_patterns,
        image_properties=image_properties,
        console_cap_mib=options.console_cap,
        tb_cache_mib=options.tb_cache,
    )


KERNEL_ARGS_MAX = 1024
BOOT_FROM = ("kernel", "disk")


def check_user_image(arch: str, kernel: Path, initrd: Path | None) -> tuple[Path, Path | None]:
    """A user's kernel must be readable and, where its header tells, built for `arch`."""
    for label, path in (("kernel", kernel), ("initrd", initrd)):
        if path is None:
            continue
        kind = not_regular(path)
        if kind:  # refused before it is opened: a FIFO would block the run, a device read without end
            raise OptionError(f"--image {arch}=...: the {label} {path} is {kind}, not a regular file")
        if not path.is_file() or not os.access(path, os.R_OK):
            raise OptionError(f"--image {arch}=...: the {label} {path} is missing or unreadable")
    built_for = kernel_arch(kernel)
    if built_for is not None and built_for != arch:
        raise OptionError(f"--image {arch}=...: the kernel {kernel} is built for {built_for}, not {arch} "
                          f"(read from its header)")
    return kernel, initrd


def check_report_dir(path: Path) -> Path:
    """The report directory must be a writable directory, or creatable in one, before anything boots.

    Nothing is created here: a session that runs no cell leaves no report directory behind.
    """
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise OptionError(f"--report-dir {path} cannot be written: {existing} is not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OptionError(f"--report-dir {path} cannot be written: {existing} is not writable by this user")
    return path


def nova_properties(options) -> dict[str, dict[str, str]]:
    """--image-properties ARCH=FILE, then --image-property ARCH=KEY=VALUE on top; each checked as Nova would."""
    from archmatrix.nova.plan import PropertyError, check_properties, read_properties

    properties: dict[str, dict[str, str]] = {}
    try:
        for value in options.image_properties:
            arch, sep, path = value.partition("=")
            if not sep or not path:
                raise OptionError(f"--image-properties {value!r} is not of the form ARCH=FILE")
            try:
                text = Path(path).read_text()
            except OSError as error:
                raise OptionError(f"--image-properties {value}: {path} cannot be read: {error.strerror}") from None
            properties.setdefault(arch_named(arch).name, {}).update(read_properties(text, path))
        for value in options.image_property:
            arch, sep, pair = value.partition("=")
            if not sep or "=" not in pair:
                raise OptionError(f"--image-property {value!r} is not of the form ARCH=KEY=VALUE")
            properties.setdefault(arch_named(arch).name, {}).update(read_properties(pair, "--image-property"))
        for values in properties.values():
            check_properties(values)
    except PropertyError as error:
        raise OptionError(str(error)) from None
    return properties


def check_success_pattern(arch: str, pattern: str, images: dict) -> str:
    """A regular expression that compiles, for an arch whose image is the user's (ours print their banner)."""
    if arch not in images:
        raise OptionError(f"--success-pattern {arch}=...: only for an image of your own (--image {arch}=...); "
                          f"the built-in {arch} image is judged by the banner its /init prints")
    try:
        re.compile(pattern.encode())
    except re.error as error:
        raise OptionError(f"--success-pattern {arch}={pattern!r} is not a valid regular expression: {error}") from None
    return pattern


def check_kernel_args(arch: str, args: str) -> str:
    """Refuse kernel arguments that are not plain printable ASCII or could read as markup."""
    bad = sorted({c for c in args if not (" " <= c <= "~") or c in "<>&"})
    if bad:
        raise OptionError(f"--kernel-args {arch}=...: characters not allowed in kernel arguments: "
                          f"{', '.join(repr(c) for c in bad)}; use printable ASCII without < > &")
    if len(args) > KERNEL_ARGS_MAX:
        raise OptionError(f"--kernel-args {arch}=...: {len(args)} characters, more than {KERNEL_ARGS_MAX}")
    return args


def _cell_pairs(values: list[str]) -> dict[str, str]:
    """ARCH[-ACCEL]=VALUE pairs, with ARCH and ACCEL checked against the catalog."""
    pairs = {}
    for value in values:
        key, sep, rest = value.partition("=")
        if not sep or not rest:
            raise OptionError(f"--boot-timeout {value!r} is not of the form ARCH[-ACCEL]=SECONDS")
        arch, _, accel = key.partition("-")
        name = arch_named(arch).name + (f"-{check_accelerator(accel)}" if accel else "")
        pairs[name] = rest
    return pairs


def host_specs(options) -> tuple[HostSpec, ...]:
    """The hosts named by --libvirt-uri and --hosts-file, or this machine; with --host-ssh applied."""
    try:
        specs = specs_from_uris(options.libvirt_uri)
        if options.hosts_file:
            specs += specs_from_file(Path(options.hosts_file))
        if not specs:
            from_environment = os.environ.get("ARCHMATRIX_LIBVIRT_URI")
            specs = [spec_for(from_environment or DEFAULT_URI,
                              where="$ARCHMATRIX_LIBVIRT_URI" if from_environment else "default")]
        by_label = {spec.label: spec for spec in check_unique(specs)}
        for value in options.host_ssh:
            label, sep, access = value.partition("=")
            if not sep or label not in by_label:
                raise HostSpecError(f"--host-ssh {value!r}: the label before '=' must name a host of this run; "
                                    f"valid: {', '.join(by_label)}")
            by_label[label] = dataclasses.replace(by_label[label], ssh=parse_ssh(access, f"--host-ssh {label}"))
    except HostSpecError as error:
        raise OptionError(str(error)) from None
    return tuple(by_label.values())


def working_lab_arches() -> list[str]:
    return sorted(arch for arch, kind in LAB_KINDS.items() if kind.unsupported is None)


def lab_hosts(values: list[str]) -> tuple[str, ...]:
    arches = tuple(dict.fromkeys(split_names(values)))
    for arch in arches:
        try:
            lab_kind(arch)
        except UnknownLabHostError as error:
            raise OptionError(str(error)) from None
    return arches


def container_releases(values: list[str]) -> tuple[str, ...]:
    releases = tuple(split_names(values))
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
