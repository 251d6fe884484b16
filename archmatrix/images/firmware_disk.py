"""Built-in disk images that boot through the arch's firmware, as a Glance image would under Nova.

The same kernel and initramfs as the direct boot, put on a disk the firmware itself boots:

- aarch64 and x86_64: an MBR disk whose one partition is an EFI system partition (FAT). UEFI (AAVMF, OVMF)
  starts GRUB from the removable-media path (EFI/BOOT/BOOT*.EFI), as it does for any cloud image.
- ppc64le: SLOF loads GRUB's ELF from a PReP boot partition (MBR type 0x41); GRUB reads a FAT partition.
- s390x: the s390-ccw BIOS has no GRUB. It IPLs an El Torito boot entry of an ISO 9660 file system on a
  virtio disk (QEMU's pc-bios/s390-ccw/bootmap.c `zipl_load_vblk`, after finding no zIPL SCSI boot map): the
  kernel image with the initrd appended, their place and the command line written in the kernel's parameter
  area, as `mk-s390image` of s390-tools lays out a CD boot image.

GRUB is Debian's: `grub-mkimage` of this machine (grub-common) with the target's modules from the package of
the guest's arch (grub-efi-arm64-bin, grub-efi-amd64-bin, grub-ieee1275-bin). Nothing is mounted: the FAT
file system is made and filled with dosfstools and mtools, the ISO with xorriso, the MBR here.

The kernel command line is a slot of the disk, written into each cell's copy (`write_cmdline`): GRUB reads
it from `archmatrix/cmdline.cfg`; s390x from the kernel's parameter area. So a disk cell gets the same command line
(console, the run's SSH key) as a direct boot, where cloud-init would read a config drive.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

from archmatrix.core.firmware import FIRMWARE_DISKS

SECTOR = 512
PARTITION_ALIGN = 2048  # sectors: 1 MiB, as partitioning tools align
FAT_SLACK_KIB = 2048
CMDLINE_FILE = "archmatrix/cmdline.cfg"

# GRUB, built in: find the partition holding our config whatever the firmware calls the disk, read it, boot.
GRUB_EMBEDDED = "search --no-floppy --file --set=root /archmatrix/grub.cfg\nset prefix=($root)/archmatrix\n"
GRUB_CFG = """\
set timeout=0
source /archmatrix/cmdline.cfg
echo "GRUB: loading the kernel"
linux /archmatrix/kernel $archmatrix_cmdline
initrd /archmatrix/initrd
boot
"""
GRUB_MODULES = ("part_msdos", "fat", "search", "search_fs_file", "normal", "configfile", "linux", "echo", "test")

# s390 kernel image (arch/s390/include/asm/setup.h, struct parmarea): where the loaded image keeps these.
S390_INITRD_START = 0x10408
S390_INITRD_SIZE = 0x10410
S390_COMMAND_LINE = 0x10480
S390_LEGACY_COMMAND_LINE_SIZE = 896  # what every s390 kernel reads; newer ones read more
S390_IPL_MAGIC = bytes.fromhex("02000018600000500200006860000050") + b"\x40" * 8  # bytes 8-31: the IPL CCWs
ISO_SECTOR = 2048


class FirmwareDiskError(RuntimeError):
    """A firmware disk could not be built, or a cell's command line not written into it."""


def _run(command: list[str], what: str, **kwargs) -> None:
    result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "MTOOLS_SKIP_CHECK": "1"},
                            **kwargs)
    if result.returncode != 0:
        raise FirmwareDiskError(f"{what}: {' '.join(command[:3])} ... failed (exit {result.returncode}): "
                                f"{(result.stderr or result.stdout).strip()[-400:]}")


def grub_cmdline_cfg(cmdline: str) -> bytes:
    """GRUB's `set` of the command line, quoted so that nothing in it is GRUB syntax."""
    quoted = cmdline.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$")
    return f'set archmatrix_cmdline="{quoted}"\n'.encode()


def mbr(partitions: list[tuple[int, int, int, bool]]) -> bytes:
    """A DOS partition table: (type, first sector, sectors, bootable) each; CHS fields say "use LBA"."""
    sector = bytearray(SECTOR)
    for index, (kind, start, count, bootable) in enumerate(partitions):
        entry = struct.pack("<B3sB3sII", 0x80 if bootable else 0, b"\xfe\xff\xff", kind, b"\xfe\xff\xff",
                            start, count)
        sector[446 + 16 * index:462 + 16 * index] = entry
    sector[510:512] = b"\x55\xaa"
    return bytes(sector)


def partitioned_disk(out: Path, partitions: list[tuple[int, Path, bool]]) -> list[int]:
    """Write a disk of the given partition images; return each partition's byte offset."""
    start, table, offsets = PARTITION_ALIGN, [], []
    for kind, image, bootable in partitions:
        sectors = -(-image.stat().st_size // SECTOR)
        table.append((kind, start, sectors, bootable))
        offsets.append(start * SECTOR)
        start += -(-sectors // PARTITION_ALIGN) * PARTITION_ALIGN
    with open(out, "wb") as disk:
        disk.truncate(start * SECTOR)
        disk.write(mbr(table))
        for offset, (_, image, _) in zip(offsets, partitions, strict=True):
            disk.seek(offset)
            with open(image, "rb") as source:
                shutil.copyfileobj(source, disk, 1 << 20)
    return offsets


def fat_image(out: Path, files: dict[str, Path]) -> None:
    """A FAT file system image holding `files` (path in it -> source), with room to rewrite the command line."""
    kib = sum(source.stat().st_size for source in files.values()) // 1024 + FAT_SLACK_KIB
    _run(["mkfs.vfat", "-C", "-n", "ARCHMATRIX", str(out), str(kib)], "the FAT file system")
    made: set[str] = set()
    for target in sorted(files):
        parts = target.split("/")[:-1]
        for depth in range(1, len(parts) + 1):
            directory = "/".join(parts[:depth])
            if directory not in made:
                _run(["mmd", "-i", str(out), f"::{directory}"], "a FAT directory")
                made.add(directory)
        _run(["mcopy", "-i", str(out), str(files[target]), f"::{target}"], "a file onto the FAT file system")


def grub_image(out: Path, target: str, modules_dir: Path, workdir: Path) -> None:
    embedded = workdir / "embedded.cfg"
    embedded.write_text(GRUB_EMBEDDED)
    _run(["grub-mkimage", "-O", target, "-d", str(modules_dir), "-o", str(out), "-p", "/archmatrix",
          "-c", str(embedded), *GRUB_MODULES], f"GRUB for {target}")


def s390_boot_image(kernel: bytes, initrd: bytes, cmdline: str) -> bytes:
    """The kernel with the initrd appended at the next MiB, both announced in its parameter area."""
    if kernel[8:32] != S390_IPL_MAGIC:
        raise FirmwareDiskError("the s390x kernel does not start with the IPL record the s390-ccw BIOS looks for")
    initrd_at = -(-len(kernel) // (1 << 20)) * (1 << 20)
    image = bytearray(kernel) + bytes(initrd_at - len(kernel)) + initrd
    struct.pack_into(">QQ", image, S390_INITRD_START, initrd_at, len(initrd))
    image[S390_COMMAND_LINE:S390_COMMAND_LINE + S390_LEGACY_COMMAND_LINE_SIZE] = s390_cmdline(cmdline)
    return bytes(image)


def s390_cmdline(cmdline: str) -> bytes:
    data = cmdline.encode()
    if len(data) >= S390_LEGACY_COMMAND_LINE_SIZE:
        raise FirmwareDiskError(f"the s390x kernel command line is {len(data)} bytes; its parameter area takes "
                                f"{S390_LEGACY_COMMAND_LINE_SIZE - 1}")
    return data.ljust(S390_LEGACY_COMMAND_LINE_SIZE, b"\0")


@dataclass(frozen=True)
class BuiltDisk:
    path: Path
    cmdline_slot: str  # "grub-fat" or "s390-parmarea"
    cmdline_offset: int  # the FAT partition's byte offset, or the command line's in the disk


def build_firmware_disk(arch: str, kernel: Path, initrd: Path, cmdline: str, grub_modules: Path | None,
                        workdir: Path) -> BuiltDisk:
    """Build `arch`'s firmware disk in `workdir`; `grub_modules` is the target's module directory."""
    spec = FIRMWARE_DISKS[arch]
    out = workdir / "disk.raw"
    if spec.layout == "eltorito":
        tree = workdir / "iso"
        (tree / "archmatrix").mkdir(parents=True)
        boot = s390_boot_image(kernel.read_bytes(), initrd.read_bytes(), cmdline)
        (tree / "archmatrix" / "boot.img").write_bytes(boot)
        _run(["xorriso", "-as", "mkisofs", "-quiet", "-V", "ARCHMATRIX", "-b", "archmatrix/boot.img", "-no-emul-boot",
              "-o", str(out), str(tree)], "the s390x ISO image")
        found = _aligned_find(out, boot[:ISO_SECTOR * 2])
        if found is None:
            raise FirmwareDiskError("the s390x boot image is not whole in the ISO xorriso wrote")
        return BuiltDisk(out, "s390-parmarea", found + S390_COMMAND_LINE)
    assert grub_modules is not None and spec.grub_target is not None
    grub = workdir / "grub.img"
    grub_image(grub, spec.grub_target, grub_modules, workdir)
    (workdir / "grub.cfg").write_text(GRUB_CFG)
    (workdir / "cmdline.cfg").write_bytes(grub_cmdline_cfg(cmdline))
    files = {"archmatrix/grub.cfg": workdir / "grub.cfg", CMDLINE_FILE: workdir / "cmdline.cfg",
             "archmatrix/kernel": kernel, "archmatrix/initrd": initrd}
    if spec.layout == "esp":
        assert spec.efi_path is not None
        fat_image(workdir / "fat.img", files | {spec.efi_path: grub})
        offsets = partitioned_disk(out, [(0xEF, workdir / "fat.img", True)])
        return BuiltDisk(out, "grub-fat", offsets[0])
    fat_image(workdir / "fat.img", files)
    offsets = partitioned_disk(out, [(0x41, grub, True), (0x0C, workdir / "fat.img", False)])
    return BuiltDisk(out, "grub-fat", offsets[1])


def _aligned_find(path: Path, needle: bytes) -> int | None:
    """The offset of `needle` at a sector boundary of an ISO image (where El Torito puts a boot image)."""
    with open(path, "rb") as disk:
        offset = 0
        while chunk := disk.read(len(needle)):
            if chunk == needle:
                return offset
            offset += ISO_SECTOR
            disk.seek(offset)
    return None


def write_cmdline(disk: Path, slot: str, offset: int, cmdline: str) -> None:
    """Write a cell's kernel command line into its copy of a firmware disk."""
    if slot == "s390-parmarea":
        with open(disk, "r+b") as image:
            image.seek(offset)
            image.write(s390_cmdline(cmdline))
        return
    if slot != "grub-fat":
        raise FirmwareDiskError(f"unknown command line slot {slot!r} of {disk}")
    source = disk.with_name(disk.name + ".cmdline.cfg")
    source.write_bytes(grub_cmdline_cfg(cmdline))
    try:
        _run(["mcopy", "-o", "-i", f"{disk}@@{offset}", str(source), f"::{CMDLINE_FILE}"],
             f"the command line into {disk}")
    finally:
        source.unlink(missing_ok=True)
