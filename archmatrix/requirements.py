"""The Debian packages the harness needs on the host, derived from the catalog.

Run by the bootstrap script with the system Python, before the virtual
environment exists: `python3 -m archmatrix.requirements --missing` prints one
missing package per line.
"""

from __future__ import annotations

import argparse
import subprocess
import sys

from archmatrix.core.arches import ARCHES

# What ./run's virtual environment is made with: python3-venv (Nova's own environment, for --nova, too) and
# what pip compiles libvirt-python with against the host's libvirt and Python (python3-dev: Python.h, which a
# new Debian machine lacks). A new machine gets these first; the rest installs while pip works.
VENV_PACKAGES = ("python3-venv", "libvirt-dev", "pkg-config", "gcc", "python3-dev")
# Host tools besides the emulators: the libvirt daemon and client, and Docker with the image builder for
# container hosts (archmatrix/hosts/container.py).
HOST_PACKAGES = ("libvirt-daemon-system", "libvirt-clients",
                 "docker.io", "mmdebstrap",
                 # the reaper ./run starts libvirtd under (tools/start-libvirtd), as an init system would be, and
                 # the pgrep it looks for running daemons with (a minimal Debian root has no procps)
                 "tini", "procps",
                 # UEFI firmware, which Nova forces for aarch64 (--image-property, harness nova-plan), and OVMF
                 "qemu-efi-aarch64", "ovmf",
                 # disks: qemu-img checks a user's; the firmware disks are made with GRUB's grub-mkimage, a FAT
                 # file system (dosfstools, mtools) and, for s390x, an ISO image (xorriso)
                 "qemu-utils", "grub-common", "dosfstools", "mtools", "xorriso",
                 # lab hosts (--lab-host): their root file system, and the SSH client libvirt's ext transport runs
                 "e2fsprogs", "openssh-client",
                 # the tool the config drive builder of Nova's own driver (--nova) runs
                 "genisoimage")
# Only the harness's own tests need these: a real browser checks matrix.html.
TEST_PACKAGES = ("chromium",)


def required_packages(purpose: str = "matrix") -> list[str]:
    if purpose == "venv":
        return list(VENV_PACKAGES)
    emulators = sorted({arch.qemu_package for arch in ARCHES.values()})
    # Cross compilers and C libraries for the kernels built from source, of every arch (not only the
    # default matrix): `--arch all` then works without another install.
    builds = sorted({package for arch in ARCHES.values() if arch.image for package in arch.image.debian_packages})
    host = [*VENV_PACKAGES, *HOST_PACKAGES]
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


def missing_packages(purpose: str = "matrix") -> list[str]:
    return [package for package in required_packages(purpose) if not is_installed(package)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--missing", action="store_true", help="list only the packages not installed")
    parser.add_argument("--for", dest="purpose", choices=("matrix", "test", "venv"), default="matrix",
                        help="what the packages are for: the main job, also the harness's own tests, or only "
                             "making ./run's virtual environment")
    args = parser.parse_args(argv)
    packages = missing_packages(args.purpose) if args.missing else required_packages(args.purpose)
    print("\n".join(packages))
    return 0


if __name__ == "__main__":
    sys.exit(main())
