"""Reading a guest's console log after its boot, in bounded pieces.

A flooding guest leaves a log of up to --console-cap bytes. Read whole as text, its first 8 MiB of random bytes
became a string of up to 32 MiB (one astral character decoded from the noise makes Python store every character
in four bytes) next to the 8 MiB read, and the harness's peak grew by about 40 MiB for one cell. The checks look
for short lines (the kernel's, the banner), which fit in one piece: the log is read a piece at a time, each
overlapping the last by more than such a line, and the end is read from the end.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

SCAN_BYTES = 8 * 1024 * 1024  # what the checks read of a log's head: the kernel's lines come first
PIECE_BYTES = 256 * 1024  # as text up to 1 MiB (four bytes a character, when noise decodes to an astral one)
OVERLAP_BYTES = 4096  # longer than any line looked for: a line cut by one piece's end is whole in the next


def log_pieces(path: Path, limit: int = SCAN_BYTES) -> Iterator[str]:
    """The log's first `limit` bytes as text, a piece at a time; consecutive pieces overlap by OVERLAP_BYTES."""
    try:
        stream = open(path, "rb")
    except FileNotFoundError:
        return
    with stream:
        carried = b""
        read = 0
        while read < limit:
            fresh = stream.read(min(PIECE_BYTES, limit - read))
            if not fresh:
                break
            read += len(fresh)
            yield (carried + fresh).decode("utf-8", errors="replace")
            carried = fresh[-OVERLAP_BYTES:]


def log_tail(path: Path, size: int = 2000) -> str:
    """The last `size` bytes of the log as text."""
    try:
        with open(path, "rb") as stream:
            stream.seek(max(stream.seek(0, 2) - size, 0))
            return stream.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""


def find_all(pattern: re.Pattern[str], path: Path, limit: int = SCAN_BYTES) -> set[str]:
    """Every match of `pattern` (its first group, if it has one) in the log's first `limit` bytes."""
    found: set[str] = set()
    for piece in log_pieces(path, limit):
        found.update(pattern.findall(piece))
    return found


def search(pattern: re.Pattern[str], path: Path, limit: int = SCAN_BYTES) -> re.Match[str] | None:
    """The first match of `pattern` in the log's first `limit` bytes."""
    for piece in log_pieces(path, limit):
        found = pattern.search(piece)
        if found:
            return found
    return None
