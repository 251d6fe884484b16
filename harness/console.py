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
        self.cap_bytes = cap_bytes
        self.dropped_bytes = 0
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
        if self._offset > self.cap_bytes:
            self._cut_back()
        return chunk

    def _cut_back(self) -> None:
        """Empty the log, which QEMU appends to, and say so in it: a flooding guest cannot fill the disk."""
        size = os.path.getsize(self.path)
        os.truncate(self.path, 0)
        self.dropped_bytes += size
        with open(self.path, "ab") as stream:
            stream.write(f"\n[emulation verifier: console log over {self.cap_bytes} bytes; "
                         f"{self.dropped_bytes} bytes dropped so far]\n".encode())
        self._offset = 0

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


def read_capped(path: Path, limit: int = 8 * 1024 * 1024) -> str:
    """The console log's first `limit` bytes as text (enough for every check)."""
    try:
        with open(path, "rb") as stream:
            return stream.read(limit).decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""
