"""When a guest's console bytes arrived: enough to tell, when a bound runs out, a guest still printing from one that
stopped, and how far it got (the last kernel timestamp it printed).

Fed from the stream's reader with every chunk: a comparison, and a mark every MARK_EVERY_S.
"""

from __future__ import annotations

import re
from collections import deque

from archmatrix.core.observation import BootProgress

KERNEL_TIME = re.compile(rb"\[\s*(\d+\.\d+)\]")  # printk's timestamp: seconds since the kernel started
MARK_EVERY_S = 0.05
MAX_MARKS = 40_000  # 33 minutes of marks at most; a window reaching past the oldest counts every byte
RECENT_BYTES = 4096  # where the last kernel timestamp is looked for


class ConsoleProgress:
    def __init__(self) -> None:
        self.first_at: float | None = None  # monotonic time of the first byte, and of the last
        self.last_at: float | None = None
        self.total = 0
        # [a time, the bytes that had arrived by the last chunk before the next mark's time]
        self._marks: deque[list] = deque(maxlen=MAX_MARKS)
        self._recent = b""

    def record(self, now: float, data: bytes) -> None:
        if not data:
            return
        if self.first_at is None:
            self.first_at = now
        self.total += len(data)
        if not self._marks or now - self._marks[-1][0] >= MARK_EVERY_S:
            self._marks.append([now, self.total])
        else:
            self._marks[-1][1] = self.total
        self.last_at = now
        self._recent = (self._recent + data[-RECENT_BYTES:])[-RECENT_BYTES:]

    def bytes_since(self, when: float) -> int:
        """The bytes that arrived after `when`, to MARK_EVERY_S (those of the mark `when` falls in are not counted)."""
        before = 0
        for at, total in reversed(self._marks):
            if at <= when:
                before = total
                break
        return self.total - before

    def kernel_time(self) -> float | None:
        """The last printk timestamp the console showed, if it is among its last bytes."""
        times = KERNEL_TIME.findall(self._recent)
        return float(times[-1]) if times else None

    def at_bound(self, started: float, bound_s: float, window_s: float) -> BootProgress:
        """What the console showed by the time `bound_s` after `started` ran out."""
        end = started + bound_s
        return BootProgress(
            bound_s=round(bound_s, 3), window_s=round(window_s, 3), console_bytes=self.total,
            bytes_in_window=self.bytes_since(end - window_s),
            last_output_s=round(self.last_at - started, 3) if self.last_at is not None else None,
            quiet_s=round(max(end - self.last_at, 0.0), 3) if self.last_at is not None else None,
            kernel_time_s=self.kernel_time())
