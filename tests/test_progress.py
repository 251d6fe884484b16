"""A boot's bound running out: a guest still printing is told from one that stopped, with how far it got."""

import threading
import time

from archmatrix.core.observation import BootProgress
from archmatrix.guest.console import Console
from archmatrix.guest.progress import ConsoleProgress
from tests.test_console import BANNER


def test_bytes_since_a_time_and_the_last_kernel_timestamp():
    progress = ConsoleProgress()
    lines = (b"[    0.000000] Booting Linux on physical CPU 0x0\n", b"[    1.170769] Call trace:\n",
             b"init: still going\n")
    for at, line in zip((100.0, 100.5, 101.0), lines, strict=True):
        progress.record(at, line)
    assert progress.total == sum(map(len, lines))
    assert progress.bytes_since(100.7) == 18 and progress.bytes_since(99.0) == progress.total
    assert progress.bytes_since(101.5) == 0
    assert progress.kernel_time() == 1.170769
    assert progress.first_at == 100.0 and progress.last_at == 101.0


def test_at_the_bound_a_guest_printing_in_its_last_eighth_is_still_progressing():
    progress = ConsoleProgress()
    for tick in range(80):  # a line every 0.1 s for 8 s: a kernel still booting on a slow host
        progress.record(10.0 + tick * 0.1, f"[ {tick * 0.1:10.6f}] probing\n".encode())
    seen = progress.at_bound(started=10.0, bound_s=8.0, window_s=1.0)
    assert seen.still_progressing and seen.quiet_s <= 0.11 and seen.bytes_in_window > 0
    assert seen.kernel_time_s == 7.9
    assert seen.said().startswith("the guest was still printing when its 8 s bound ran out: ")


def test_at_the_bound_a_guest_silent_for_its_last_eighth_had_stopped():
    progress = ConsoleProgress()
    progress.record(10.0, b"[    0.100000] Booting\n")
    progress.record(11.5, b"[    1.173516] Run /bin/busybox as init process\n")  # then a hung init
    seen = progress.at_bound(started=10.0, bound_s=8.0, window_s=1.0)
    assert not seen.still_progressing and seen.bytes_in_window == 0 and seen.quiet_s == 6.5
    assert seen.said() == ("the guest had stopped printing 6.5 s before its 8 s bound ran out (nothing in its last "
                           "1.0 s; its last output 1.50 s after the domain started, kernel time 1.17 s)")


def test_a_guest_that_printed_nothing():
    seen = ConsoleProgress().at_bound(started=0.0, bound_s=8.0, window_s=1.0)
    assert not seen.still_progressing and seen.said() == "the guest printed nothing within its 8 s bound"
    assert BootProgress(**{**seen.__dict__}) == seen


def test_a_wait_that_times_out_says_whether_the_console_was_still_going(tmp_path):
    console = Console(tmp_path / "console.log")
    stop = threading.Event()

    def printing() -> None:
        tick = 0
        while not stop.is_set():
            console.feed(f"[ {tick * 0.02:10.6f}] initcall done\n".encode())
            tick += 1
            time.sleep(0.02)

    feeder = threading.Thread(target=printing)
    feeder.start()
    try:
        busy = console.wait_for(BANNER, 0.8, time.monotonic())
    finally:
        stop.set()
        feeder.join()
    assert busy.reason == "timeout after 0.8 s" and busy.progress.still_progressing
    quiet = Console(tmp_path / "quiet.log")
    quiet.feed(b"[    1.000000] Run /init as init process\n")
    time.sleep(0.5)
    stopped = quiet.wait_for(BANNER, 0.8, time.monotonic() - 0.5)
    assert stopped.reason == "timeout after 0.8 s" and not stopped.progress.still_progressing
    assert stopped.progress.kernel_time_s == 1.0


def test_a_wait_that_ends_otherwise_carries_no_progress(tmp_path):
    console = Console(tmp_path / "console.log")
    console.feed(b"[ 1.1] Kernel panic - not syncing: No working init found.\n")
    assert console.wait_for(BANNER, 30, time.monotonic()).progress is None


def test_a_console_that_never_pauses_still_ends_its_wait_at_the_bound(tmp_path):
    """Bytes that arrive while each search runs must not keep the wait from its deadline."""
    console = Console(tmp_path / "console.log", cap_bytes=1 << 30)

    class MoreEachTime:  # as a user's pattern searched in its own process, while the guest keeps printing
        def search(self, window: bytes):
            console.feed(b"[    0.500000] a line that never matches\n")
            return None

    console.feed(b"[    0.100000] Booting Linux\n")
    began = time.monotonic()
    wait = console.wait_for(MoreEachTime(), 0.5, began)
    assert wait.reason == "timeout after 0.5 s" and time.monotonic() - began < 1.5
    assert wait.progress.still_progressing
