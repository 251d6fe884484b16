"""A user's disk image, checked before any cell boots it: readable, a format Nova boots here, whole.

`qemu-img` names the format and checks a qcow2 image's clusters. A raw image must start as something a
firmware boots (a DOS or GPT partition table, an ISO 9660 file system) and hold every byte its table
claims: a copy cut short by a failed download is named as truncated, not booted into a firmware's shell.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
from pathlib import Path

DISK_FORMATS = ("qcow2", "raw")
# What --image ARCH=PATH takes as a disk rather than a kernel, when the file cannot be read to tell.
DISK_SUFFIXES = (".qcow2", ".qcow", ".img", ".raw", ".iso", ".vmdk", ".vdi", ".vhd", ".vhdx", ".qed")
QCOW2_MAGIC = b"QFI\xfb"
# Other formats' first bytes: a disk of a format the harness does not boot is named as one, not run as a kernel.
OTHER_DISK_MAGICS = (b"KDMV", b"# Disk DescriptorFile", b"<<< ", b"conectix", b"vhdxfile", b"QED\x00")
ISO9660_AT = 0x8001  # "CD001" of the primary volume descriptor
GPT_HEADER_AT = 512


class DiskImageError(ValueError):
    """The disk image cannot be booted; the message names it and what would be valid."""


def looks_like_disk(path: Path) -> bool:
    """Whether --image's single file is meant as a disk: its name, else its first bytes."""
    if path.suffix.lower() in DISK_SUFFIXES:
        return True
    try:
        with open(path, "rb") as image:
            head = image.read(ISO9660_AT + 5)
    except OSError:
        return False
    return head.startswith((QCOW2_MAGIC, *OTHER_DISK_MAGICS)) or _raw_layout(head) is not None


def _raw_layout(head: bytes) -> str | None:
    if head[ISO9660_AT:ISO9660_AT + 5] == b"CD001":
        return "iso9660"
    if head[GPT_HEADER_AT:GPT_HEADER_AT + 8] == b"EFI PART":
        return "gpt"
    if len(head) >= 512 and head[510:512] == b"\x55\xaa":
        return "mbr"
    return None


def inspect_disk(arch: str, path: Path) -> str:
    """The image's format ("qcow2" or "raw"); DiskImageError if it should not be booted."""
    label = f"the {arch} disk image {path}"
    if not os.access(path, os.R_OK) or not path.is_file():
        raise DiskImageError(f"{label} is missing or unreadable")
    result = subprocess.run(["qemu-img", "info", "--output=json", "-U", str(path)], capture_output=True, text=True)
    if result.returncode != 0:
        raise DiskImageError(f"{label} cannot be read as a disk image: {result.stderr.strip()}; valid: "
                             f"{' or '.join(DISK_FORMATS)}")
    disk_format = json.loads(result.stdout)["format"]
    if disk_format not in DISK_FORMATS:
        raise DiskImageError(f"{label} is {disk_format}, which the harness does not boot; valid: "
                             f"{' or '.join(DISK_FORMATS)} (qemu-img convert -O qcow2 turns it into one)")
    if disk_format == "qcow2":
        _check_qcow2(label, path)
    else:
        _check_raw(label, path)
    return disk_format


def _check_qcow2(label: str, path: Path) -> None:
    result = subprocess.run(["qemu-img", "check", "--output=json", "-U", "-f", "qcow2", str(path)],
                            capture_output=True, text=True)
    try:
        report = json.loads(result.stdout)
    except ValueError:
        raise DiskImageError(f"{label}: qemu-img check failed: {result.stderr.strip()[-300:]}") from None
    if report.get("corruptions") or report.get("check-errors"):
        end = report.get("image-end-offset")
        raise DiskImageError(f"{label} is damaged or truncated: qemu-img check finds {report.get('corruptions', 0)} "
                             f"corruptions and {report.get('check-errors', 0)} errors (its clusters reach past "
                             f"its {path.stat().st_size} bytes{'' if end is None else f'; end at {end}'})")


def _check_raw(label: str, path: Path) -> None:
    size = path.stat().st_size
    with open(path, "rb") as image:
        head = image.read(ISO9660_AT - 1 + 2048)  # to the end of the primary volume descriptor
    layout = _raw_layout(head)
    if layout is None:
        raise DiskImageError(f"{label} is raw but neither partitioned (DOS or GPT) nor an ISO 9660 image, so no "
                             f"firmware would boot it; is it a kernel? (--image ARCH=KERNEL[,INITRD])")
    needed = _bytes_claimed(layout, head)
    if needed > size:
        raise DiskImageError(f"{label} is truncated: its {layout} layout reaches byte {needed}, the file has "
                             f"{size}")


def _bytes_claimed(layout: str, head: bytes) -> int:
    """How long the image must be for what its first sectors say it holds."""
    if layout == "iso9660":
        volume_blocks, = struct.unpack_from("<I", head, ISO9660_AT - 1 + 80)
        block_size, = struct.unpack_from("<H", head, ISO9660_AT - 1 + 128)
        return volume_blocks * block_size
    if layout == "gpt":
        last_usable, = struct.unpack_from("<Q", head, GPT_HEADER_AT + 48)
        return (last_usable + 1) * 512
    ends = []
    for index in range(4):
        start, count = struct.unpack_from("<II", head, 446 + 16 * index + 8)
        if count:
            ends.append((start + count) * 512)
    return max(ends, default=512)
