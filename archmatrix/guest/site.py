"""Where a guest boots: the libvirt host's side of one boot, as observe.py needs it.

Two things differ between this machine and a remote libvirt host: how the
boot files get there (copied into the run directory, or uploaded into a
storage pool through the connection), and how the running QEMU process can
be looked at (/proc here, SSH there, or not at all).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from archmatrix.cleanup.names import domain_name
from archmatrix.guest.reach import GuestNetwork
from archmatrix.images.image import Image


@dataclass(frozen=True)
class PlacedFiles:
    """Kernel, initrd and device tree, or a disk, as paths on the libvirt host; and other files of the cell."""

    kernel: str | None
    initrd: str | None
    owned: bool  # removed by release(): a per-cell copy, not a volume shared by the run
    dtb: str | None = None
    disk: str | None = None  # the cell's own copy, its command line written in: the guest may write to it
    disk_format: str = "raw"
    attached: dict[str, str] = field(default_factory=dict)  # name -> path of other files (a config drive)

    @property
    def directory(self) -> str:
        """Where the cell's files are (its UEFI variable store goes there too)."""
        return str(Path(self.disk or self.kernel or ".").parent)


class BootFiles(Protocol):
    def place(self, image: Image, cell_id: str, cmdline: str, attach: dict[str, Path]) -> PlacedFiles:
        """The image's files for the cell on the libvirt host, with `cmdline` written into a disk that has a slot
        for it (our firmware disks), and `attach`'s files (name -> local path) beside them."""
        ...

    def release(self, files: PlacedFiles) -> None: ...


class HostInspector(Protocol):
    can_resolve: bool  # can real paths on the libvirt host be read?

    def resolve(self, path: str) -> str | None: ...

    def process_exe(self, domain_name: str) -> tuple[str | None, str]:
        """The real path of the domain's running QEMU, and how it was found (or why not)."""
        ...

    def peak_rss_kib(self, domain_name: str) -> int | None:
        """The running QEMU's peak resident memory so far, or None where it cannot be read."""
        ...


@dataclass(frozen=True)
class GuestSite:
    run_id: str
    run_dir: Path  # this run's private directory on this machine: console logs
    boot_files: BootFiles
    inspector: HostInspector
    # With several hosts in a run, two labels may reach one libvirtd: the label keeps domain names apart.
    name_tag: str = ""
    # How guests' forwarded SSH ports are reached; None: they cannot be (`no_network_reason`).
    network: GuestNetwork | None = None
    no_network_reason: str = ""

    def domain_name(self, cell_id: str) -> str:
        return domain_name(self.run_id, f"{self.name_tag}-{cell_id}" if self.name_tag else cell_id)
