"""Boot files on this machine: copied into the run directory, the fast path for a local libvirt."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from archmatrix.guest.site import PlacedFiles
from archmatrix.images.firmware_disk import write_cmdline
from archmatrix.images.image import Image


class StagedFiles:
    """Copies kernel and initrd where the QEMU user can read them, one copy per cell.

    The cache may sit under a home directory QEMU cannot traverse (it runs as
    libvirt-qemu); the run directory is made traversable for it.
    """

    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)

    def place(self, image: Image, cell_id: str, cmdline: str, attach: dict[str, Path] | None = None) -> PlacedFiles:
        directory = self.run_dir / cell_id
        directory.mkdir(parents=True, exist_ok=True)
        attached = {name: str(_private_copy(path, directory / name)) for name, path in (attach or {}).items()}
        if image.disk:
            return PlacedFiles(None, None, owned=True, disk=str(local_disk_copy(image, directory, cmdline)),
                               disk_format=image.disk_format or "raw", attached=attached)
        assert image.kernel is not None
        kernel = _private_copy(image.kernel, directory / "kernel")
        initrd = _private_copy(image.initrd, directory / "initrd") if image.initrd else None
        dtb = _private_copy(image.dtb, directory / "dtb") if image.dtb else None
        return PlacedFiles(str(kernel), str(initrd) if initrd else None, owned=True, dtb=str(dtb) if dtb else None,
                           attached=attached)

    def release(self, files: PlacedFiles) -> None:
        for staged in (files.kernel, files.initrd, files.dtb, files.disk, *files.attached.values()):
            if staged and files.owned:
                Path(staged).unlink(missing_ok=True)


def _private_copy(source: Path, target: Path) -> Path:
    shutil.copyfile(source, target)
    target.chmod(0o600)  # libvirt hands it to the QEMU user for the guest's lifetime
    return target


def local_disk_copy(image: Image, directory: Path, cmdline: str) -> Path:
    """The cell's own copy of the image's disk, its command line written in where the disk has a slot for one.

    Sparse, so a big raw image costs what it holds; the guest may write to its disk, never to the image's.
    """
    assert image.disk is not None and image.disk_format is not None
    disk = directory / f"disk.{image.disk_format}"
    subprocess.run(["cp", "--sparse=always", "--reflink=auto", str(image.disk), str(disk)], check=True,
                   capture_output=True)
    disk.chmod(0o600)
    if image.cmdline_slot:  # our firmware disk: the command line a direct boot would get
        write_cmdline(disk, image.cmdline_slot, image.cmdline_offset, cmdline)
    return disk
