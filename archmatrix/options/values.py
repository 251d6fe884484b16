"""Each option's value checked and turned into Settings; a bad one is an OptionError naming it (words.py)."""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

from archmatrix.core.arches import ACCELERATORS, ALL_ARCHES, ARCHES, arch_named, check_accelerator
from archmatrix.hosts.container_recipe import CONTAINER_RELEASES
from archmatrix.hosts.lab_catalog import UnknownLabHostError, lab_kind
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
from archmatrix.inputs.files import check_input_file
from archmatrix.inputs.numbers import CONSOLE_CAP_MIB, SECONDS, TB_CACHE_MIB, TIMEOUT_FACTOR, check_number
from archmatrix.inputs.text import check_text
from archmatrix.options.declare import working_lab_arches
from archmatrix.options.nova import check_nova_version, nova_conf_pairs, nova_properties
from archmatrix.options.settings import Settings
from archmatrix.options.words import OptionError, arch_pairs, comma_names, option_named
from archmatrix.paths import default_cache_dir

KERNEL_ARGS_MAX = 1024


def settings_from(options) -> Settings:
    """Check every option; raise OptionError naming the option and what is valid."""
    with option_named("--arch"):
        names = comma_names(options.arch, "--arch",
                            f"arch names, comma-separated: {', '.join(ARCHES)}, or {ALL_ARCHES}")
        arches = tuple(ARCHES) if ALL_ARCHES in names else tuple(arch_named(name).name for name in names)
    with option_named("--accel"):
        accels = tuple(check_accelerator(name) for name in comma_names(
            options.accel, "--accel", f"accelerator names, comma-separated: {', '.join(ACCELERATORS)}")) or ACCELERATORS
    with option_named("--image"):
        images, disks = user_images(options.image)
    with option_named("--timeout-factor"):
        timeout_factor = check_number(options.timeout_factor, "--timeout-factor", TIMEOUT_FACTOR)
    with option_named("--kvm-probe-timeout"):
        kvm_probe_timeout = check_number(options.kvm_probe_timeout, "--kvm-probe-timeout", SECONDS)
    with option_named("--kvm-probe-first-output"):
        kvm_probe_first_output = check_number(options.kvm_probe_first_output, "--kvm-probe-first-output", SECONDS)
    with option_named("--console-cap"):
        console_cap = check_number(options.console_cap, "--console-cap", CONSOLE_CAP_MIB)
    with option_named("--tb-cache"):
        tb_cache = check_number(options.tb_cache, "--tb-cache", TB_CACHE_MIB)
    with option_named("--boot-timeout"):
        timeouts = {key: check_number(value, f"--boot-timeout {key}", SECONDS)
                    for key, value in _cell_pairs(options.boot_timeout).items()}
    with option_named("--success-pattern"):
        success_patterns = arch_pairs(options.success_pattern, "--success-pattern", "ARCH=REGEX")
        for arch, pattern in success_patterns.items():
            check_success_pattern(arch, pattern, images)
    image_properties = nova_properties(options)
    with option_named("--kernel-args"):
        kernel_args = arch_pairs(options.kernel_args, "--kernel-args", "ARCH=ARGS")
        for arch, args in kernel_args.items():
            check_kernel_args(arch, args)
            if arch in disks:
                raise OptionError(f"--kernel-args {arch}=...: {arch}'s --image is a disk, whose own bootloader gives "
                                  f"its kernel the arguments; --kernel-args is for kernels booted directly")
    with option_named("--machine"):
        machines = arch_pairs(options.machine, "--machine", "ARCH=MACHINE")
    with option_named("--image-cache"):
        image_cache = Path(check_text(options.image_cache, "--image-cache", "a directory")) if (
            options.image_cache is not None) else default_cache_dir()
    with option_named("--report-dir"):
        report_dir = Path(check_text(options.report_dir, "--report-dir", "a directory"))
    with option_named("--container-host"):
        releases = container_releases(options.container_host)
    with option_named("--lab-host"):
        labs = lab_hosts(options.lab_host)
    with option_named("--nova-version"):
        nova_version = check_nova_version(options.nova_version)
    with option_named("--nova-conf"):
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
    for arch, files in arch_pairs(values, "--image", "ARCH=KERNEL[,INITRD]|ARCH=DISK").items():
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


def check_user_image(arch: str, kernel: Path, initrd: Path | None) -> tuple[Path, Path | None]:
    """A user's kernel must be readable and, where its header tells, built for `arch`."""
    for label, path in (("kernel", kernel), ("initrd", initrd)):
        if path is not None:
            with option_named("--image"):
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
    with option_named("--libvirt-uri"):
        specs = specs_from_uris(options.libvirt_uri)
    with option_named("--hosts-file"):
        if options.hosts_file is not None:
            specs += specs_from_file(Path(check_input_file(options.hosts_file, "--hosts-file")))
    if not specs:
        from_environment = os.environ.get("ARCHMATRIX_LIBVIRT_URI")
        where = "$ARCHMATRIX_LIBVIRT_URI" if from_environment else "default"
        with option_named(where):
            specs = [spec_for(from_environment or DEFAULT_URI, where=where)]
    with option_named("--libvirt-uri and --hosts-file"):
        by_label = {spec.label: spec for spec in check_unique(specs)}
    with option_named("--host-ssh"):
        for value in options.host_ssh:
            check_text(value, "--host-ssh", "LABEL=USER@HOST[:PORT][,key=PATH]...")
            label, sep, access = value.partition("=")
            if not sep or label not in by_label:
                raise OptionError(f"--host-ssh {value!r}: the label before '=' must name a host of this run; "
                                  f"valid: {', '.join(by_label)}")
            by_label[label] = dataclasses.replace(by_label[label], ssh=parse_ssh(access, f"--host-ssh {label}"))
    return tuple(by_label.values())


def lab_hosts(values: list[str]) -> tuple[str, ...]:
    valid = f"lab host arches: {', '.join(working_lab_arches())}"
    arches = tuple(dict.fromkeys(comma_names(values, "--lab-host", valid)))
    for arch in arches:
        try:
            lab_kind(arch)
        except UnknownLabHostError as error:
            raise OptionError(str(error)) from None
    return arches


def container_releases(values: list[str]) -> tuple[str, ...]:
    releases = tuple(comma_names(values, "--container-host", f"Debian releases: {', '.join(CONTAINER_RELEASES)}"))
    for release in releases:
        if release not in CONTAINER_RELEASES:
            raise OptionError(f"--container-host {release!r}: no such container host; valid: "
                              f"{', '.join(CONTAINER_RELEASES)}")
    return releases
