"""The Debian packages the harness needs on the host, derived from the catalog.

Run by the bootstrap script with the system Python, before the virtual
environment exists: `python3 -m archmatrix.requirements --missing` prints one
missing package per line. `./run matrix` passes its options: the default matrix on this host needs fewer
packages than the rest of what the harness does, and a new machine's first run waits for every one installed.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

from archmatrix.core.arches import ALL_ARCHES, ARCHES, default_arches

# What ./run's virtual environment is made with: python3-venv (Nova's own environment, for --nova, too) and
# what pip compiles libvirt-python with against the host's libvirt and Python (python3-dev: Python.h, which a
# new Debian machine lacks). A new machine gets these first; the rest installs while pip works.
VENV_PACKAGES = ("python3-venv", "libvirt-dev", "pkg-config", "gcc", "python3-dev")
# Host tools besides the emulators that the default matrix on this host needs: the libvirt daemon and client,
# the reaper ./run starts libvirtd under (tools/start-libvirtd), as an init system would be, and the pgrep it
# looks for running daemons with (a minimal Debian root has no procps).
HOST_PACKAGES = ("libvirt-daemon-system", "libvirt-clients", "tini", "procps")
# What the rest needs: other hosts, lab hosts, Nova, firmware and disks (the other arches' cross compilers come
# from the catalog).
MORE_HOST_PACKAGES = (
    # Docker with the image builder for container hosts (archmatrix/hosts/container.py)
    "docker.io", "mmdebstrap",
    # UEFI firmware, which Nova forces for aarch64 (--image-property, harness nova-plan), and OVMF
    "qemu-efi-aarch64", "ovmf",
    # disks: qemu-img checks a user's; the firmware disks are made with GRUB's grub-mkimage, a FAT
    # file system (dosfstools, mtools) and, for s390x, an ISO image (xorriso)
    "qemu-utils", "grub-common", "dosfstools", "mtools", "xorriso",
    # lab hosts (--lab-host): their root file system, and the SSH client libvirt's ext transport runs
    "e2fsprogs", "openssh-client",
    # the tool the config drive builder of Nova's own driver (--nova) runs
    "genisoimage",
)
# Options of a matrix run that may need more than the default matrix's packages (MORE_HOST_PACKAGES, the other
# arches' cross compilers): with any of them, every package is installed. --arch only when it names an arch
# outside the default matrix. ARCHMATRIX_LIBVIRT_URI, a remote host by default, counts as --libvirt-uri.
OPTIONS_NEEDING_MORE = ("--arch", "--libvirt-uri", "--hosts-file", "--host-ssh", "--container-host", "--lab-host",
                        "--lab-host-without-kvm", "--nova", "--nova-version", "--nova-conf",
                        "--nova-without-config-drive", "--image", "--boot-from", "--image-property",
                        "--image-properties")
# The other options of the harness tune the default matrix's run and need nothing more
# (tests/test_requirements.py holds every option of the plugin to one of the two lists).
OPTIONS_NEEDING_NOTHING_MORE = ("--accel", "--image-cache", "--success-pattern", "--machine", "--kvm-probe-timeout",
                                "--kvm-probe-first-output", "--timeout-factor", "--boot-timeout", "--kernel-args",
                                "--console-cap", "--tb-cache", "--report-dir")
# Only the harness's own tests need these: a real browser checks matrix.html.
TEST_PACKAGES = ("chromium",)


def needs_more_than_the_default(options: list[str], environ: dict[str, str] | None = None) -> bool:
    """Whether a matrix run with these pytest options may need more than the default matrix's packages."""
    environ = os.environ if environ is None else environ
    if environ.get("ARCHMATRIX_LIBVIRT_URI"):
        return True
    arches: list[str] = []
    for at, option in enumerate(options):
        name, equals, value = option.partition("=")
        if name == "--arch":
            arches += (value if equals else (options[at + 1] if at + 1 < len(options) else "")).split(",")
        elif name in OPTIONS_NEEDING_MORE:
            return True
    named = {arch.strip() for arch in arches if arch.strip()}
    return bool(named - set(default_arches())) or ALL_ARCHES in named


def required_packages(purpose: str = "matrix", options: list[str] | None = None) -> list[str]:
    """`matrix` with `options` that need nothing more (archmatrix's own options and pytest's): the default
    matrix's packages only. `matrix` without options, and `test`: everything, so that `--arch all`, container
    and lab hosts and Nova then work without another install. `builds`: of those, what the kernels built from
    source need (./run installs them before the rest, archmatrix/run/early_build.py)."""
    if purpose == "venv":
        return list(VENV_PACKAGES)
    everything = purpose == "test" or options is None or needs_more_than_the_default(options)
    emulators = sorted({arch.qemu_package for arch in ARCHES.values()})
    # Cross compilers and C libraries for the kernels built from source.
    arches = ARCHES.values() if everything else [ARCHES[name] for name in default_arches()]
    builds = sorted({package for arch in arches if arch.image for package in arch.image.debian_packages})
    if purpose == "builds":
        return builds
    host = [*VENV_PACKAGES, *HOST_PACKAGES, *(MORE_HOST_PACKAGES if everything else ())]
    packages = emulators + host + [p for p in builds if p not in host]
    return packages + (list(TEST_PACKAGES) if purpose == "test" else [])


def is_installed(package: str) -> bool:
    result = subprocess.run(
        ["dpkg-query", "-W", "-f", "${db:Status-Abbrev}", package],
        capture_output=True,
        text=True,
        check=False,
    )
    return result.returncode == 0 and result.stdout.startswith("ii")


def missing_packages(purpose: str = "matrix", options: list[str] | None = None) -> list[str]:
    return [package for package in required_packages(purpose, options) if not is_installed(package)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--missing", action="store_true", help="list only the packages not installed")
    parser.add_argument("--for", dest="purpose", choices=("matrix", "test", "venv", "builds"), default="matrix",
                        help="what the packages are for: the main job, also the harness's own tests, only "
                             "making ./run's virtual environment, or only building kernels from source")
    parser.add_argument("run_options", nargs="*", metavar="-- OPTION",
                        help="the options of the run, after --: a matrix run with only options that need nothing "
                             "more than the default matrix's packages gets only those")
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)
    options = args.run_options if "--" in argv else None  # no "--": not told the run's options, so everything
    lister = missing_packages if args.missing else required_packages
    packages = lister(args.purpose, options)
    print("\n".join(packages))
    return 0


if __name__ == "__main__":
    sys.exit(main())
