"""Boot files on this machine: copied into the run directory, the fast path for a local libvirt."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from archmatrix.guest.site import PlacedFiles
from archmatrix.images.cache import Image


class StagedFiles:
    """Copies kernel and initrd where the QEMU user can read them, one copy per cell.

    The cache may sit under a home directory QEMU cannot traverse (it runs as
    libvirt-qemu); the run directory is made traversable for it.
    """

    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)

    def place(self, image: Image, cell_id: str) -> PlacedFiles:
        directory = self.run_dir / cell_id
        directory.mkdir(parents=True, exist_ok=True)
        if image.disk:
            return self._place_disk(image, directory)
        assert image.kernel is not None
        kernel = Path(shutil.copyfile(image.kernel, directory / "kernel"))
        initrd = Path(shutil.copyfile(image.initrd, directory / "initrd")) if image.initrd else None
        dtb = Path(shutil.copyfile(image.dtb, directory / "dtb")) if image.dtb else None
        for staged in (kernel, initrd, dtb):
            if staged:
                staged.chmod(0o600)  # libvirt hands them to the QEMU user for the guest's lifetime
        return PlacedFiles(str(kernel), str(initrd) if initrd else None, owned=True, dtb=str(dtb) if dtb else None)

    @staticmethod
    def _place_disk(image: Image, directory: Path) -> PlacedFiles:
        """The cell's own copy: the guest writes to its disk. Sparse, so a big raw image costs what it holds."""
        assert image.disk is not None and image.disk_format is not None
        disk = directory / f"disk.{image.disk_format}"
        subprocess.run(["cp", "--sparse=always", "--reflink=auto", str(image.disk), str(disk)], check=True,
                       capture_output=True)
        disk.chmod(0o600)
        return PlacedFiles(None, None, owned=True, disk=str(disk), disk_format=image.disk_format,
                           cmdline_slot=image.cmdline_slot, cmdline_offset=image.cmdline_offset)

    def release(self, files: PlacedFiles) -> None:
        for staged in (files.kernel, files.initrd, files.dtb, files.disk):
            if staged and files.owned:
                Path(staged).unlink(missing_ok=True)
