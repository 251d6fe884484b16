"""Files: written so that a reader never sees half of one, what kind a path is, a hash, a log's last lines."""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

FILE_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
              (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISLNK, "a symlink"))


def file_kind(mode: int) -> str:
    """What a stat mode says a file is: "a regular file", "a FIFO", ..."""
    if stat.S_ISREG(mode):
        return "a regular file"
    return next((kind for is_kind, kind in FILE_KINDS if is_kind(mode)), "not a file")


@contextmanager
def replaced_atomically(path: Path, mode: int = 0o644) -> Iterator[BinaryIO]:
    """A new file to write, renamed over `path` once written.

    A reader never sees half of it, and whatever is at `path` is replaced, never written through: a symlink
    planted there in a shared directory points nowhere new.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as stream:
            yield stream
            os.fchmod(stream.fileno(), mode)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def write_atomically(path: Path, content: str | bytes, mode: int = 0o644) -> None:
    """Write to a temporary name beside `path`, then rename over it."""
    with replaced_atomically(path, mode) as stream:
        stream.write(content.encode() if isinstance(content, str) else content)


def sha256_of(path: Path) -> str:
    """The SHA-256 of a file's content, in hex, read a MiB at a time."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def log_tail(path: Path, lines: int, joined_by: str = "\n") -> str:
    """The last `lines` lines of a log, for an error message; what went wrong when it cannot be read."""
    try:
        return joined_by.join(Path(path).read_text(errors="replace").strip().splitlines()[-lines:])
    except OSError as error:
        return f"(no log: {error})"
