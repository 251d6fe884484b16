"""The harness's command-line options, and their checking into a Settings value."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from harness.arches import ACCELERATORS, ARCHES, arch_named, check_accelerator, split_names
from harness.images import default_cache_dir

DEFAULT_URI = "qemu:///system"


class OptionError(ValueError):
    """An option value that cannot be used; the message names it and what is valid."""


@dataclass(frozen=True)
class Settings:
    arches: tuple[str, ...]  # empty: every arch in the catalog (or a test's marker)
    accels: tuple[str, ...]
    libvirt_uri: str
    image_cache: Path
    report_dir: Path
    user_images: dict[str, tuple[Path, Path | None]] = field(default_factory=dict)
    machines: dict[str, str] = field(default_factory=dict)
    kvm_probe_timeout: float = 20.0
    timeout_factor: float = 1.0


def add_options(parser) -> None:
    group = parser.getgroup("emulation-verifier", "emulation verifier")
    group.addoption("--arch", action="append", default=[], metavar="ARCH[,ARCH...]",
                    help=f"guest arch(es) to run, repeatable; valid: {', '.join(ARCHES)} (default: all)")
    group.addoption("--accel", action="append", default=[], metavar="ACCEL[,ACCEL...]",
                    help=f"accelerator(s), repeatable; valid: {', '.join(ACCELERATORS)} (default: all; "
                         "KVM cells are skipped with the KVM probe's reason unless KVM really works)")
    group.addoption("--libvirt-uri", default=os.environ.get("EMUV_LIBVIRT_URI", DEFAULT_URI),
                    help=f"libvirt connection URI (default: {DEFAULT_URI}, or $EMUV_LIBVIRT_URI)")
    group.addoption("--image-cache", default=None, metavar="DIR",
                    help=f"content-addressed image cache (default: {default_cache_dir()})")
    group.addoption("--image", action="append", default=[], metavar="ARCH=KERNEL[,INITRD]",
                    help="boot a user-supplied kernel (and initrd) for ARCH instead of the built-in image; "
                         "the only way to run ppc64 and mips, for which Debian 12 ships no kernel")
    group.addoption("--machine", action="append", default=[], metavar="ARCH=MACHINE",
                    help="machine type for ARCH instead of its default family; checked against that "
                         "arch's emulator before any boot")
    group.addoption("--kvm-probe-timeout", type=float, default=20.0, metavar="SECONDS",
                    help="how long the KVM probe guest may take to print its banner (default: 20)")
    group.addoption("--timeout-factor", type=float, default=1.0, metavar="FACTOR",
                    help="multiply every per-arch boot timeout, for slow hosts (default: 1.0)")
    group.addoption("--report-dir", default="reports", metavar="DIR",
                    help="where matrix.json, matrix.md and console logs go (default: reports)")


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
    arches = tuple(arch_named(name).name for name in split_names(options.arch))
    accels = tuple(check_accelerator(name) for name in split_names(options.accel)) or ACCELERATORS
    images = {}
    for arch, files in _pairs(options.image, "--image", "ARCH=KERNEL[,INITRD]").items():
        kernel, _, initrd = files.partition(",")
        images[arch] = (Path(kernel), Path(initrd) if initrd else None)
    for value, name in ((options.timeout_factor, "--timeout-factor"),
                        (options.kvm_probe_timeout, "--kvm-probe-timeout")):
        if value <= 0:
            raise OptionError(f"{name} must be a positive number, not {value}")
    return Settings(
        arches=arches,
        accels=accels,
        libvirt_uri=options.libvirt_uri,
        image_cache=Path(options.image_cache) if options.image_cache else default_cache_dir(),
        report_dir=Path(options.report_dir),
        user_images=images,
        machines=_pairs(options.machine, "--machine", "ARCH=MACHINE"),
        kvm_probe_timeout=options.kvm_probe_timeout,
        timeout_factor=options.timeout_factor,
    )


def uri_is_local(uri: str) -> bool:
    """qemu:///system and qemu:///session name this machine; a host or transport does not."""
    parts = urlsplit(uri)
    transport = parts.scheme.partition("+")[2]
    return not parts.netloc and transport in ("", "unix")


def redact_uri(uri: str) -> str:
    """The URI without user name or password, fit for logs and reports."""
    parts = urlsplit(uri)
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return f"{parts.scheme}://{host}{parts.path}"
