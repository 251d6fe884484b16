"""Wait for a pattern on a guest's console log, ending at once on a failure pattern.

The log is read incrementally and only a bounded window is kept, so a guest
that floods its console cannot grow the harness's memory.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

# Kernel messages that mean the guest will not come up: stop waiting at once.
KERNEL_FAILURE = re.compile(
    rb"Kernel panic - not syncing[^\n]*|---\[ end Kernel panic[^\n]*|Attempted to kill init[^\n]*"
)
WINDOW_BYTES = 64 * 1024  # what a match may look back over, and the tail shown on failure
POLL_S = 0.02


@dataclass(frozen=True)
class ConsoleWait:
    matched: bool
    match: tuple[str, ...]  # the pattern's groups (or whole match), when matched
    elapsed_s: float  # since `started` (the domain's start)
    reason: str  # why it ended without a match: "", "failure pattern ...", "timeout", "guest stopped"
    tail: str  # last lines seen, for failure messages


def _tail(window: bytes, lines: int = 15) -> str:
    text = window.decode("utf-8", errors="replace").replace("\r", "")
    return "\n".join(text.splitlines()[-lines:])


class ConsoleLog:
    """Follows one console log file from its start."""

    def __init__(self, path: Path, cap_bytes: int = 64 * 1024 * 1024):
        self.path = Path(path)
        self.cap_bytes = cap_bytes  # a console past this is a flood: the wait ends as a failure
        self._offset = 0
        self._window = b""

    def _read_new(self) -> bytes:
        try:
            with open(self.path, "rb") as stream:
                stream.seek(self._offset)
                chunk = stream.read(4 * WINDOW_BYTES)
        except FileNotFoundError:
            return b""
        self._offset += len(chunk)
        return chunk

    def wait_for(
        self,
        pattern: re.Pattern[bytes],
        timeout_s: float,
        started: float,
        alive: Callable[[], bool],
        failure: re.Pattern[bytes] = KERNEL_FAILURE,
    ) -> ConsoleWait:
        """Wait until `pattern` appears after what earlier waits consumed."""
        deadline = started + timeout_s
        fresh = bool(self._window)  # what an earlier wait read past its own match counts too
        while True:
            if fresh:
                fresh = False
                found = pattern.search(self._window)
                if found:
                    # Later waits look only after this match.
                    self._window = self._window[found.end():]
                    groups = tuple(g.decode(errors="replace") for g in found.groups()) or (
                        found.group(0).decode(errors="replace"),
                    )
                    return ConsoleWait(True, groups, time.monotonic() - started, "", _tail(self._window))
                bad = failure.search(self._window)
                if bad:
                    return self._ended(started, f"failure pattern seen: {bad.group(0).decode(errors='replace')}")
                if self._offset > self.cap_bytes:
                    # Stop the guest now rather than let it fill the disk until the timeout.
                    return self._ended(started, f"console flood: the log passed {self.cap_bytes} bytes")
            chunk = self._read_new()
            if chunk:
                self._window = (self._window + chunk)[-WINDOW_BYTES:]
                fresh = True
                if time.monotonic() < deadline:
                    continue  # more may be waiting: read again before sleeping
            if time.monotonic() >= deadline:
                return self._ended(started, f"timeout after {timeout_s:.0f} s")
            if not alive():
                chunk = self._read_new()  # the last words may have landed just before it stopped
                if chunk:
                    self._window = (self._window + chunk)[-WINDOW_BYTES:]
                    fresh = True
                    continue
                return self._ended(started, "guest stopped before the pattern appeared")
            time.sleep(POLL_S)

    def _ended(self, started: float, reason: str) -> ConsoleWait:
        return ConsoleWait(False, (), time.monotonic() - started, reason, _tail(self._window))


def copy_capped(source: Path, target: Path, cap_bytes: int) -> None:
    """Copy a console log; past `cap_bytes`, keep its head and tail with a note of what was dropped."""
    size = os.path.getsize(source)
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(source, "rb") as stream, open(target, "wb") as out:
        if size <= cap_bytes:
            out.write(stream.read())
            return
        half = cap_bytes // 2
        out.write(stream.read(half))
        out.write(f"\n[emulation verifier: {size - 2 * half} bytes of console output dropped here; "
                  f"the log was {size} bytes, over the {cap_bytes}-byte cap]\n".encode())
        stream.seek(size - half)
        out.write(stream.read(half))


def read_capped(path: Path, limit: int = 8 * 1024 * 1024) -> str:
    """The console log's first `limit` bytes as text (enough for every check)."""
    try:
        with open(path, "rb") as stream:
            return stream.read(limit).decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""
