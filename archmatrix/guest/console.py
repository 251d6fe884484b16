"""A guest's console as the harness receives it: a bounded log, and waits for patterns.

Bytes arrive from libvirt's console stream (archmatrix/guest/console_stream.py)
and are fed in here. The log file keeps everything up to the cap, less a
tail kept in memory; past the cap it keeps head and tail with a note of what
was dropped, so a flood cannot fill the disk. A wait ends at once on a
failure pattern (a kernel panic), on a flood, or when the stream ends.
"""

from __future__ import annotations

import os
import re
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

from archmatrix.core.observation import BootProgress
from archmatrix.core.timeouts import progress_window, seconds_said
from archmatrix.guest.bounded_pattern import BoundedPattern, PatternTimeout
from archmatrix.guest.progress import ConsoleProgress

# Kernel messages that mean the guest will not come up: stop waiting at once.
KERNEL_FAILURE = re.compile(
    rb"Kernel panic - not syncing[^\n]*|---\[ end Kernel panic[^\n]*|Attempted to kill init[^\n]*"
)
WINDOW_BYTES = 64 * 1024  # what a match may look back over, and the tail shown on failure
TAIL_BYTES = 1024 * 1024  # what the log keeps of the end of a console that passed its cap
# The stream's end and libvirt's lifecycle event say when a guest stopped; asking is a fallback only.
ALIVE_CHECK_S = 2.0


@dataclass(frozen=True)
class ConsoleWait:
    matched: bool
    match: tuple[str, ...]  # the pattern's groups (or whole match), when matched
    elapsed_s: float  # since `started` (the guest's start)
    reason: str  # why it ended without a match: "", "failure pattern ...", "timeout", "guest stopped"
    tail: str  # last lines seen, for failure messages
    progress: BootProgress | None = None  # at a timeout: was the guest still printing, and how far had it got


def _search(pattern: re.Pattern[bytes] | BoundedPattern, window: bytes) -> tuple[int, tuple[str, ...]] | None:
    """Where a match of `pattern` ends in `window`, and its groups as text (or the whole match); or None."""
    if not isinstance(pattern, re.Pattern):
        return pattern.search(window)  # a user's, in its own process: PatternTimeout past its bound
    found = pattern.search(window)
    if found is None:
        return None
    groups = tuple((group or b"").decode(errors="replace") for group in found.groups())
    return found.end(), groups or (found.group(0).decode(errors="replace"),)


def _tail(window: bytes, lines: int = 15) -> str:
    text = window.decode("utf-8", errors="replace").replace("\r", "")
    return "\n".join(text.splitlines()[-lines:])


class BoundedLog:
    """The console log file: its first `cap - TAIL_BYTES` bytes, then the last TAIL_BYTES in memory.

    Closing writes the kept tail after a note of how many bytes were dropped.
    """

    def __init__(self, path: Path, cap_bytes: int):
        self.path = Path(path)
        self.head_limit = max(cap_bytes - TAIL_BYTES, cap_bytes // 2)
        self.tail_limit = cap_bytes - self.head_limit
        self.total = 0
        self._tail = bytearray()
        self._file = open(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb")

    def write(self, data: bytes) -> None:
        head_room = self.head_limit - min(self.total, self.head_limit)
        if head_room:
            self._file.write(data[:head_room])
            self._file.flush()
        rest = data[head_room:]
        if rest:
            self._tail += rest
            del self._tail[:-self.tail_limit or len(self._tail)]
        self.total += len(data)

    def close(self) -> None:
        if self._file.closed:
            return
        beyond = self.total - self.head_limit
        if beyond > 0:
            dropped = beyond - len(self._tail)
            if dropped > 0:
                self._file.write(f"\n[archmatrix: {dropped} bytes of console output dropped here; the "
                                 f"console sent {self.total} bytes, over the {self.head_limit + self.tail_limit}"
                                 f"-byte cap]\n".encode())
            self._file.write(bytes(self._tail))
        self._file.close()


class Console:
    """What a guest printed so far, fed by the stream's reader; waits block on a condition."""

    def __init__(self, log_path: Path, cap_bytes: int = 64 * 1024 * 1024):
        self.log_path = Path(log_path)
        self.cap_bytes = cap_bytes  # a console past this is a flood: the wait ends as a failure
        self.log = BoundedLog(self.log_path, cap_bytes)
        self._window = b""
        self._fresh = False  # bytes arrived that no wait has searched yet
        self._ended: str = ""  # why the stream ended, once it has
        self._changed = threading.Condition()
        self.progress = ConsoleProgress()  # when the bytes arrived

    def feed(self, data: bytes) -> None:
        with self._changed:
            self.progress.record(time.monotonic(), data)
            self.log.write(data)
            self._window = (self._window + data)[-WINDOW_BYTES:]
            self._fresh = True
            self._changed.notify_all()

    def end(self, why: str) -> None:
        """The stream is over (the guest stopped, or the console was closed)."""
        with self._changed:
            self._ended = self._ended or why
            self._changed.notify_all()

    def close(self) -> None:
        with self._changed:
            self.log.close()

    @property
    def total_bytes(self) -> int:
        return self.log.total

    @property
    def first_at(self) -> float | None:
        """Monotonic time of the console's first byte."""
        return self.progress.first_at

    @property
    def last_at(self) -> float | None:
        """Monotonic time of the console's last byte so far."""
        return self.progress.last_at

    def wait_for(
        self,
        pattern: re.Pattern[bytes] | BoundedPattern,
        timeout_s: float,
        started: float,
        alive=None,
        failure: re.Pattern[bytes] = KERNEL_FAILURE,
    ) -> ConsoleWait:
        """Wait until `pattern` appears after what earlier waits consumed.

        `alive`, if given, is asked now and then whether the guest still runs,
        for streams that do not end when the guest does. The window is searched
        outside the lock: the stream's reader (libvirt's event thread) never
        waits for a search, and a user's pattern is searched in its own process
        with its own bound (archmatrix/guest/bounded_pattern.py).
        """
        deadline = started + timeout_s
        next_alive_check = time.monotonic() + ALIVE_CHECK_S
        with self._changed:
            self._fresh = self._fresh or bool(self._window)  # an earlier wait may have read past its match
        while True:
            with self._changed:
                fresh, self._fresh = self._fresh, False
                window, window_end = self._window, self.log.total
            if fresh:
                try:
                    found = _search(pattern, window)
                except PatternTimeout as error:
                    return self._ended_wait(started, str(error))
                if found:
                    end, groups = found
                    with self._changed:
                        self._consume_to(window_end - len(window) + end)  # later waits look only after this match
                        return ConsoleWait(True, groups, time.monotonic() - started, "", _tail(self._window))
                bad = failure.search(window)
                if bad:
                    return self._ended_wait(started, "failure pattern seen: "
                                                     f"{bad.group(0).decode(errors='replace')}")
                if window_end > self.cap_bytes:
                    # End the guest now rather than read a flood until the timeout.
                    return self._ended_wait(started, f"console flood: the console passed {self.cap_bytes} bytes")
            with self._changed:
                now = time.monotonic()
                if self._fresh and now < deadline:
                    continue  # more arrived while the window was searched (a console that never pauses still ends)
                if self._ended:
                    return self._ended_wait(started, f"guest stopped before the pattern appeared ({self._ended})")
                if now >= deadline:
                    return replace(self._ended_wait(started, f"timeout after {seconds_said(timeout_s)} s"),
                                   progress=self.progress.at_bound(started, timeout_s, progress_window(timeout_s)))
                if alive is not None and now >= next_alive_check:
                    next_alive_check = now + ALIVE_CHECK_S
                    if not alive():
                        self._changed.wait(0.2)  # the stream's last bytes may still be on their way
                        if not self._fresh:
                            return self._ended_wait(started, "guest stopped before the pattern appeared")
                        continue
                self._changed.wait(min(deadline, next_alive_check) - now)

    def _consume_to(self, position: int) -> None:
        """Drop the window's bytes before `position` of the stream (the window may have moved on since)."""
        cut = position - (self.log.total - len(self._window))
        if cut > 0:
            self._window = self._window[cut:]

    def _ended_wait(self, started: float, reason: str) -> ConsoleWait:
        return ConsoleWait(False, (), time.monotonic() - started, reason, _tail(self._window))
