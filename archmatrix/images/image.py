"""A guest image: the files a cell boots and where they came from. A plain value; the builders make them."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from archmatrix.core.arch import Arch
from archmatrix.files import sha256_of
from archmatrix.images.disk_image import DiskImageError, inspect_disk


class ImageError(RuntimeError):
    """An image could not be built, found or trusted."""


@dataclass(frozen=True)
class Image:
    arch: str
    kernel: Path | None  # None: a user's disk, whose kernel only its bootloader knows
    initrd: Path | None
    kernel_sha256: str | None
    initrd_sha256: str | None
    origin: str  # "built-in" or "user-supplied"
    kernel_release: str | None = None  # what `uname -r` should print, when known
    recipe_key: str | None = None
    packages: tuple[dict[str, str], ...] = field(default=())  # Debian packages it was built from
    warnings: tuple[str, ...] = field(default=())  # what its build had to say (fallbacks, a rebuild)
    dtb: Path | None = None  # a device tree, for boards that boot with one (raspi0)
    dtb_sha256: str | None = None
    # A disk the arch's firmware boots (archmatrix/images/firmware_disk.py builds ours; a user's is theirs).
    disk: Path | None = None
    disk_format: str | None = None  # "raw" or "qcow2"
    disk_sha256: str | None = None
    disk_boot: str | None = None  # what boots it, for reports
    cmdline_slot: str | None = None  # where a cell's kernel command line is written into its copy (ours only)
    cmdline_offset: int = 0

    def identity(self) -> dict:
        return {
            "origin": self.origin,
            "kernel_sha256": self.kernel_sha256,
            "initrd_sha256": self.initrd_sha256,
            "kernel_release": self.kernel_release,
            "recipe_key": self.recipe_key,
            "packages": list(self.packages),
            "warnings": list(self.warnings),
            **({"dtb_sha256": self.dtb_sha256} if self.dtb_sha256 else {}),
            **({"disk_sha256": self.disk_sha256, "disk_format": self.disk_format, "disk_boot": self.disk_boot}
               if self.disk else {}),
        }


def user_disk_image(arch: Arch, disk: Path) -> Image:
    """A user's disk, checked before any cell boots it (unreadable, truncated, a format not booted: ImageError)."""
    try:
        disk_format = inspect_disk(arch.name, disk)
    except DiskImageError as error:
        raise ImageError(str(error)) from None
    return Image(arch=arch.name, kernel=None, initrd=None, kernel_sha256=None, initrd_sha256=None,
                 origin="user-supplied", disk=disk.resolve(), disk_format=disk_format, disk_sha256=sha256_of(disk),
                 disk_boot="the arch's firmware, then the disk's own bootloader")


def user_image(arch: Arch, kernel: Path, initrd: Path | None) -> Image:
    for label, path in (("kernel", kernel), ("initrd", initrd)):
        if path is not None and not os.access(path, os.R_OK):
            raise ImageError(f"{arch.name} {label} {path} is missing or unreadable")
    return Image(
        arch=arch.name,
        kernel=kernel.resolve(),
        initrd=initrd.resolve() if initrd else None,
        kernel_sha256=sha256_of(kernel),
        initrd_sha256=sha256_of(initrd) if initrd else None,
        origin="user-supplied",
    )
