"""What goes into a lab host's image: its packages, the files of recipes/lab/, its modules; and the key that names it.

The key is a hash of the recipe, of the builder's own source (lab_build.py and this file) and of the candidate
versions of its packages: a change to any of them makes another image.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from archmatrix.hosts.lab_catalog import LabKind
from archmatrix.paths import RECIPES

RECIPE_DIR = RECIPES / "lab"
UDHCPC_SCRIPT = RECIPE_DIR.parent / "udhcpc.script"
RELEASE = "bookworm"
# base-files: /etc/os-release (the host's distribution in the matrix) and /var/run.
BASE_PACKAGES = ("base-files", "libvirt-daemon", "libvirt-daemon-driver-qemu", "libvirt-clients", "dropbear-bin",
                 "busybox-static")
STAGE1_MODULES = ("virtio_pci", "virtio_blk", "ext4", "crc32c_generic")  # the disk and its file system
LAB_MODULES = ("virtio_net",)  # its NIC (the virtio PCI transport is loaded by stage 1), and its kind's KVM
# Not needed in a lab host and large: documentation, and the emulators of guest arches it does not offer.
PRUNED = ("usr/share/doc", "usr/share/man", "usr/share/locale", "usr/share/info", "usr/share/lintian",
          "usr/share/bug", "var/cache/apt", "var/lib/apt/lists", "usr/bin/qemu-storage-daemon",
          "usr/bin/qemu-system-arm", "usr/bin/qemu-system-i386")
BUILDER_SOURCES = (Path(__file__), Path(__file__).with_name("lab_build.py"))


class LabImageError(RuntimeError):
    """The lab host's image could not be built; says which step and why."""


@dataclass(frozen=True)
class LabImage:
    kind: LabKind
    kernel: Path
    initrd: Path  # stage 1
    disk: Path  # ext4, read-only here: each lab boots a copy
    manifest: Path
    key: str

    def version_of(self, package: str) -> str | None:
        packages = dict(json.loads(self.manifest.read_text())["packages"])
        return packages.get(package)


def recipe_files() -> dict[str, bytes]:
    """recipes/lab/ and the udhcpc hook, by their path in the image."""
    files = {str(path.relative_to(RECIPE_DIR)): path.read_bytes()
             for path in sorted(RECIPE_DIR.rglob("*")) if path.is_file() and path.name != "README.md"}
    files["etc/udhcpc.script"] = UDHCPC_SCRIPT.read_bytes()
    return files


def packages_of(kind: LabKind) -> tuple[str, ...]:
    return (kind.kernel_package, *BASE_PACKAGES, *kind.emulator_packages)


def recipe_key(kind: LabKind, versions: dict[str, str]) -> str:
    identity = {
        # The builder's own source: a change to how the image is made makes another image.
        "builder": hashlib.sha256(b"".join(path.read_bytes() for path in BUILDER_SOURCES)).hexdigest(),
        "release": RELEASE, "kind": kind.arch, "packages": packages_of(kind),
        "versions": versions, "stage1": STAGE1_MODULES, "modules": LAB_MODULES, "pruned": PRUNED,
        "files": {path: hashlib.sha256(data).hexdigest() for path, data in recipe_files().items()},
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
