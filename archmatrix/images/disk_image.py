"""A user's disk image, checked before any cell boots it: readable, a format Nova boots here, whole, standalone.

The format is told from the image's first bytes, and `qemu-img` is told it (never left to probe an untrusted
image, as QEMU's documentation warns): it checks a qcow2 image's clusters and reports every other file the
image names. A disk must be standalone, as Nova wants a Glance image: a backing file or an external data file
would be opened at boot, and libvirt hands each file of a backing chain to the QEMU user. A raw image must start
as something a firmware boots (a DOS or GPT partition table, an ISO 9660 file system) and hold every byte its
table claims: a copy cut short by a failed download is named as truncated, not booted into a firmware's shell.
"""

from __future__ import annotations

import functools
import json
import os
import resource
import signal
import stat
import struct
import subprocess
from pathlib import Path

from archmatrix.files import file_kind

DISK_FORMATS = ("qcow2", "raw")
# What --image ARCH=PATH takes as a disk rather than a kernel, when the file cannot be read to tell.
DISK_SUFFIXES = (".qcow2", ".qcow", ".img", ".raw", ".iso", ".vmdk", ".vdi", ".vhd", ".vhdx", ".qed")
QCOW2_MAGIC = b"QFI\xfb"
# Other formats' first bytes: a disk of a format the harness does not boot is named as one, not run as a kernel.
OTHER_DISK_FORMATS = {b"KDMV": "vmdk", b"# Disk DescriptorFile": "vmdk", b"<<< ": "vdi", b"conectix": "vpc",
                      b"vhdxfile": "vhdx", b"QED\x00": "qed", b"LUKS\xba\xbe": "luks"}
ISO9660_AT = 0x8001  # "CD001" of the primary volume descriptor
GPT_HEADER_AT = 512
# Each qemu-img run on a user's image is bounded, as QEMU advises for untrusted images and as Nova runs it
# (its QEMU_IMG_LIMITS: 1 GiB of address space). The time is wall-clock: `qemu-img check` reads all of a big
# image's metadata.
QEMU_IMG_TIMEOUT_S = 120.0
QEMU_IMG_MEMORY_BYTES = 1 << 30
FLATTEN = "qemu-img convert -O qcow2 {path} STANDALONE.qcow2"


class DiskImageError(ValueError):
    """The disk image cannot be booted; the message names it and what would be valid."""


def not_regular(path: Path) -> str | None:
    """What `path` is (through symlinks) when it is there but not a regular file, e.g. "a FIFO"; else None.

    Told from stat, which never blocks: opening a FIFO waits for a writer, and a device may read without end.
    """
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    return None if stat.S_ISREG(mode) else file_kind(mode)


def looks_like_disk(path: Path) -> bool:
    """Whether --image's single file is meant as a disk: its name, else its first bytes."""
    if path.suffix.lower() in DISK_SUFFIXES:
        return True
    if not_regular(path):
        return False  # refused by name as a kernel
    try:
        head = _head(path, ISO9660_AT + 5)
    except OSError:
        return False
    return head.startswith((QCOW2_MAGIC, *OTHER_DISK_FORMATS)) or _raw_layout(head) is not None


def _head(path: Path, size: int) -> bytes:
    """The first `size` bytes of a regular file; OSError for anything else (swapped in since it was looked at)."""
    handle = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    with os.fdopen(handle, "rb") as image:
        if not stat.S_ISREG(os.fstat(image.fileno()).st_mode):
            raise OSError(f"{path} is not a regular file")
        return image.read(size)


def is_iso9660(path: Path) -> bool:
    """An ISO 9660 image (a CD-ROM's): Glance's disk_format=iso, which Nova boots from a CD-ROM."""
    try:
        return _raw_layout(_head(path, ISO9660_AT + 5)) == "iso9660"
    except OSError:
        return False


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
    kind = not_regular(path)
    if kind:
        raise DiskImageError(f"{label} is {kind}, not a regular file; valid: a {' or '.join(DISK_FORMATS)} image file")
    try:
        head = _head(path, ISO9660_AT - 1 + 2048)  # to the end of the primary volume descriptor
    except OSError:
        raise DiskImageError(f"{label} is missing or unreadable") from None
    other = next((name for magic, name in OTHER_DISK_FORMATS.items() if head.startswith(magic)), None)
    if other:
        raise DiskImageError(f"{label} is {other}, which the harness does not boot; valid: "
                             f"{' or '.join(DISK_FORMATS)} (qemu-img convert -O qcow2 turns it into one)")
    if not head.startswith(QCOW2_MAGIC):
        _check_raw(label, path, head)
        return "raw"
    info = _qcow2_info(label, path)
    references = other_files(info)
    if references:
        raise DiskImageError(f"{label} names another file it would read at boot: {'; '.join(references)}; the "
                             f"harness boots standalone disks only, as Nova does: make one with "
                             f"{FLATTEN.format(path=path)}")
    _check_qcow2(label, path)
    return "qcow2"


def other_files(info: dict) -> list[str]:
    """Every other file a disk's `qemu-img info --output=json` says it reads, named (repr: the names are untrusted).

    Deliberately not `--backing-chain`: that would open each file the image names, on the image's word.
    """
    found = []
    backing = info.get("full-backing-filename") or info.get("backing-filename")
    if backing:  # a path (absolute, or relative to the image), or a json:/protocol name of any block driver
        found.append(f"backing file {backing[:300]!r}")
    data = (info.get("format-specific") or {}).get("data") or {}
    if data.get("data-file"):
        found.append(f"data file {str(data['data-file'])[:300]!r}")
    # QEMU 8.0 and later list the nodes under the image; its own file is the only one a standalone disk has.
    for child in info.get("children") or ():
        if child.get("name") != "file":
            named = (child.get("info") or {}).get("filename", "")
            found.append(f"{child.get('name')} {str(named)[:300]!r}")
    return found


def _qemu_img(label: str, action: str, *arguments: str) -> subprocess.CompletedProcess:
    """`qemu-img ACTION ARGUMENTS`, bounded in time (killed at the end) and in memory."""
    limit = QEMU_IMG_MEMORY_BYTES
    try:
        result = subprocess.run(["qemu-img", action, *arguments], capture_output=True, text=True,
                                timeout=QEMU_IMG_TIMEOUT_S,
                                preexec_fn=functools.partial(resource.setrlimit, resource.RLIMIT_AS, (limit, limit)))
    except subprocess.TimeoutExpired:
        raise DiskImageError(f"{label}: qemu-img {action} did not finish within {QEMU_IMG_TIMEOUT_S:g} s; it was "
                             f"killed (a sound image is checked in seconds)") from None
    if result.returncode < 0:  # a signal: g_malloc aborts when the bound is reached
        name = signal.Signals(-result.returncode).name
        raise DiskImageError(f"{label}: qemu-img {action} was ended by {name} ({result.stderr.strip()[-300:]}): it "
                             f"failed within its {limit // (1 << 20)} MiB memory limit, which a sound image never "
                             f"needs")
    return result


def _qcow2_info(label: str, path: Path) -> dict:
    # An absolute name: qemu-img reads "json:..." or "PROTOCOL:..." at the start of a name as a block driver.
    result = _qemu_img(label, "info", "--output=json", "-U", "-f", "qcow2", os.path.abspath(path))
    if result.returncode != 0:
        raise DiskImageError(f"{label} cannot be read as a qcow2 image: {result.stderr.strip()[-300:]}; valid: "
                             f"{' or '.join(DISK_FORMATS)}")
    try:
        return json.loads(result.stdout)
    except ValueError:
        raise DiskImageError(f"{label}: qemu-img info printed no JSON: {result.stdout[:300]!r}") from None


def _check_qcow2(label: str, path: Path) -> None:
    result = _qemu_img(label, "check", "--output=json", "-U", "-f", "qcow2", os.path.abspath(path))
    try:
        report = json.loads(result.stdout)
    except ValueError:
        raise DiskImageError(f"{label}: qemu-img check failed: {result.stderr.strip()[-300:]}") from None
    if report.get("corruptions") or report.get("check-errors"):
        end = report.get("image-end-offset")
        raise DiskImageError(f"{label} is damaged or truncated: qemu-img check finds {report.get('corruptions', 0)} "
                             f"corruptions and {report.get('check-errors', 0)} errors (its clusters reach past "
                             f"its {path.stat().st_size} bytes{'' if end is None else f'; end at {end}'})")


def _check_raw(label: str, path: Path, head: bytes) -> None:
    layout = _raw_layout(head)
    if layout is None:
        raise DiskImageError(f"{label} is raw but neither partitioned (DOS or GPT) nor an ISO 9660 image, so no "
                             f"firmware would boot it; is it a kernel? (--image ARCH=KERNEL[,INITRD])")
    needed = _bytes_claimed(layout, head)
    size = path.stat().st_size
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
