"""A minimal writer of the newc cpio format that the kernel unpacks as initramfs.

Written here rather than by the cpio tool so that device nodes need no root
and the archive is byte-for-byte reproducible (fixed owners and times), which
the content-addressed cache relies on.
"""

from __future__ import annotations

import stat
from dataclasses import dataclass


@dataclass(frozen=True)
class Entry:
    path: str  # inside the archive, without a leading slash
    mode: int  # full st_mode, type bits included
    data: bytes = b""  # file content, or the target of a symlink
    rdev: tuple[int, int] = (0, 0)  # (major, minor) for device nodes


def directory(path: str) -> Entry:
    return Entry(path, stat.S_IFDIR | 0o755)


def regular(path: str, data: bytes, executable: bool = False) -> Entry:
    return Entry(path, stat.S_IFREG | (0o755 if executable else 0o644), data)


def char_device(path: str, major: int, minor: int) -> Entry:
    return Entry(path, stat.S_IFCHR | 0o600, rdev=(major, minor))


def _pad(length: int) -> bytes:
    return b"\0" * (-length % 4)


def _record(ino: int, entry: Entry) -> bytes:
    name = entry.path.encode() + b"\0"
    fields = (
        ino, entry.mode, 0, 0, 1, 0, len(entry.data),
        0, 0, entry.rdev[0], entry.rdev[1], len(name), 0,
    )  # ino mode uid gid nlink mtime filesize devmajor devminor rdevmajor rdevminor namesize check
    header = b"070701" + b"".join(b"%08X" % field for field in fields)
    head = header + name
    return head + _pad(len(head)) + entry.data + _pad(len(entry.data))


def newc_archive(entries: list[Entry]) -> bytes:
    records = [_record(ino, entry) for ino, entry in enumerate(entries, start=1)]
    records.append(_record(0, Entry("TRAILER!!!", 0)))
    return b"".join(records)
