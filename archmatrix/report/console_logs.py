"""Console logs a report names: read and copied from inside the report's own directory only.

A matrix.json is data, never a list of paths to follow: its cells' console_log names a file relative to the
directory the matrix.json is in (consoles/<cell>.log). A name that is absolute, holds "..", passes through or is
a symlink, or is not a regular file (a FIFO would block, /dev/zero read without end) is refused with the reason,
and no more of a log is read than what is shown of it. A log copied into a report keeps, past its cap, its
head and tail with a note of what was dropped.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import stat
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from archmatrix.files import file_kind, replaced_atomically

EXCERPT_BYTES = 64 * 1024  # the end of a log an excerpt is cut from: 40 lines of up to 1.6 KiB
# A merged report's copy of a log: what a run keeps at its default --console-cap (64 MiB) and its note.
CARRIED_CAP_BYTES = 64 * 1024 * 1024 + 4096
OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC


class ConsoleLogRefused(ValueError):
    """A console log a report names is not one to read; the message says why."""


def open_inside(directory: Path, name: object) -> BinaryIO:
    """The console log `name` names, opened for reading if it is a regular file inside `directory`."""
    if not isinstance(name, str) or not name or "\0" in name:
        raise ConsoleLogRefused(f"{name!r} is not a file name")
    relative = PurePosixPath(name)
    if relative.is_absolute():
        raise ConsoleLogRefused(f"{name!r} is an absolute path; a report names its console logs relative to its "
                                f"own directory")
    if ".." in relative.parts:
        raise ConsoleLogRefused(f"{name!r} contains '..'; a report names its console logs inside its own directory")
    for depth in range(1, len(relative.parts)):
        if (directory.joinpath(*relative.parts[:depth])).is_symlink():
            raise ConsoleLogRefused(f"{name!r} passes through the symlink {'/'.join(relative.parts[:depth])}")
    path = directory.joinpath(*relative.parts)
    try:
        handle = os.open(path, OPEN_FLAGS)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise ConsoleLogRefused(f"{name!r} is a symlink") from None
        raise ConsoleLogRefused(f"{name!r} cannot be read: {error.strerror}") from None
    stream = os.fdopen(handle, "rb")
    mode = os.fstat(handle).st_mode
    inside = Path(os.path.realpath(path)).is_relative_to(os.path.realpath(directory))
    if stat.S_ISREG(mode) and inside:
        return stream
    stream.close()
    raise ConsoleLogRefused(f"{name!r} is {file_kind(mode)}, not a regular file" if inside else
                            f"{name!r} resolves outside {directory}")


def excerpt(directory: Path, name: object, lines: int) -> list[str]:
    """The last `lines` lines of the log, from no more than its last EXCERPT_BYTES; ConsoleLogRefused."""
    with open_inside(directory, name) as stream:
        size = os.fstat(stream.fileno()).st_size
        start = max(0, size - EXCERPT_BYTES)
        stream.seek(start)
        data = stream.read(EXCERPT_BYTES)
    found = data.decode("utf-8", errors="replace").replace("\r", "").splitlines()
    return (found[1:] if start else found)[-lines:]  # a read from the middle starts in the middle of a line


def file_name(label: object) -> str:
    """A host label or cell id as one file name: never a path, never "." or ".."; distinct labels stay distinct."""
    text = str(label)
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", text).lstrip(".") or "_"
    return safe if safe == text else f"{safe}-{hashlib.sha256(text.encode(errors='surrogatepass')).hexdigest()[:8]}"


def carried(document: dict, source: Path, report_dir: Path) -> dict:
    """`document`, whose matrix.json is in `source`, with its console logs copied into `report_dir`.

    Each as consoles/<host>/<cell>.log, as a run of several hosts lays them out; a log refused is left out and
    the reason is kept in the cell's facts as console_log_refused, which matrix.html shows.
    """
    cells = []
    for cell in document["cells"]:
        facts = dict(cell["facts"])
        name = facts.pop("console_log", None)
        if name is not None:
            target = f"consoles/{file_name(cell['host'])}/{file_name(cell['id'])}.log"
            try:
                with open_inside(source, name) as stream:
                    copy_stream_capped(stream, report_dir / target, CARRIED_CAP_BYTES)
                facts["console_log"] = target
                facts.pop("console_log_refused", None)
            except ConsoleLogRefused as refused:
                facts["console_log_refused"] = f"{refused} (in {source})"
        cells.append({**cell, "facts": facts})
    return {**document, "cells": cells}


def copy_capped(source: Path, target: Path, cap_bytes: int) -> None:
    """Copy a console log; past `cap_bytes`, keep its head and tail with a note of what was dropped."""
    with open(source, "rb") as stream:
        copy_stream_capped(stream, target, cap_bytes)


def copy_stream_capped(stream: BinaryIO, target: Path, cap_bytes: int) -> None:
    """copy_capped from an open regular file. The copy replaces `target`, never writes through a symlink there."""
    size = os.fstat(stream.fileno()).st_size
    with replaced_atomically(target) as out:
        if size <= cap_bytes:
            _copy_bytes(stream, out, size)  # no more than it had: a log still being written is not followed
            return
        half = cap_bytes // 2
        _copy_bytes(stream, out, half)
        out.write(f"\n[archmatrix: {size - 2 * half} bytes of console output dropped here; "
                  f"the log was {size} bytes, over the {cap_bytes}-byte cap]\n".encode())
        stream.seek(size - half)
        _copy_bytes(stream, out, half)


def _copy_bytes(stream: BinaryIO, out: BinaryIO, count: int) -> None:
    while count > 0:
        chunk = stream.read(min(count, 1 << 20))
        if not chunk:
            return
        out.write(chunk)
        count -= len(chunk)
