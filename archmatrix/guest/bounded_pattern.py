"""A user's --success-pattern, searched in a child process with a bound on each search.

Python's `re` can take exponential time on a pattern like `(a+)+$` (a console line of forty a's and a b is
enough for hours), and holds the GIL all along: in-process, no deadline, no console read and no libvirt event
of any guest would run again. A pattern of the harness's own is known to be cheap; a user's is searched in a
child process, which is killed when one search of a console window takes longer than SEARCH_LIMIT_S.
"""

from __future__ import annotations

import json
import os
import select
import struct
import subprocess
import sys
import time

SEARCH_LIMIT_S = 2.0  # one search of a console window (64 KiB at most): a sane pattern takes milliseconds

# The child: a pattern on its command line; windows in (a 4-byte length, then the bytes), answers out (one JSON
# line each: null, or where the match ends and its groups as text).
_WORKER = r"""
import json, re, struct, sys
pattern = re.compile(sys.argv[1].encode())
read, write = sys.stdin.buffer.read, sys.stdout.write
while True:
    head = read(4)
    if len(head) < 4:
        break
    found = pattern.search(read(struct.unpack(">I", head)[0]))
    groups = [(g or b"").decode(errors="replace") for g in found.groups()] if found else []
    answer = None if found is None else {"end": found.end(),
                                         "groups": groups or [found.group(0).decode(errors="replace")]}
    write(json.dumps(answer) + "\n")
    sys.stdout.flush()
"""


class PatternTimeout(RuntimeError):
    """One search took longer than its bound; the message names the pattern and says what to do."""


class BoundedPattern:
    """`search(window)` of a user's pattern, each bounded by `limit_s`; a context manager that ends its child."""

    def __init__(self, pattern: str, what: str, limit_s: float = SEARCH_LIMIT_S):
        self.pattern = pattern
        self.what = what  # how the user gave it, for the message: "--success-pattern aarch64=(a+)+$"
        self.limit_s = limit_s
        self._child = subprocess.Popen([sys.executable, "-I", "-S", "-c", _WORKER, pattern],
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self._answers = b""

    def search(self, window: bytes) -> tuple[int, tuple[str, ...]] | None:
        """(where the match ends in `window`, its groups as text, or the whole match), or None."""
        if self._child.poll() is not None:
            raise PatternTimeout(f"{self.what}: its search process is gone (exit {self._child.returncode})")
        try:
            self._child.stdin.write(struct.pack(">I", len(window)) + window)
            self._child.stdin.flush()
        except BrokenPipeError:
            raise PatternTimeout(f"{self.what}: its search process is gone") from None
        line = self._answer_within(time.monotonic() + self.limit_s)
        if line is None:
            self.close()
            raise PatternTimeout(
                f"{self.what} took longer than {self.limit_s:.0f} s to search {len(window)} bytes of console "
                f"output (a pattern that backtracks without end, such as a nested repeat like (a+)+): give one "
                f"that matches in linear time, such as a literal line of the console")
        answer = json.loads(line)
        return None if answer is None else (answer["end"], tuple(answer["groups"]))

    def _answer_within(self, deadline: float) -> bytes | None:
        stdout = self._child.stdout.fileno()
        while b"\n" not in self._answers:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([stdout], [], [], left)[0]:
                return None
            chunk = os.read(stdout, 65536)
            if not chunk:
                return None
            self._answers += chunk
        line, self._answers = self._answers.split(b"\n", 1)
        return line

    def close(self) -> None:
        if self._child.poll() is None:
            self._child.kill()
        self._child.wait()
        for stream in (self._child.stdin, self._child.stdout):
            try:
                stream.close()
            except OSError:
                pass  # its pipe is gone with it

    def __enter__(self) -> BoundedPattern:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
