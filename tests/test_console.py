"""The console as the stream feeds it: pattern waits, failure patterns, floods, and the bounded log."""

import re
import threading
import time

from archmatrix.guest.console import TAIL_BYTES, Console
from archmatrix.report.console_logs import copy_capped

BANNER = re.compile(rb"ARCHMATRIX-BANNER arch=(\S+)")
PROMPT = re.compile(rb"login: ")


def feed_later(console, pieces, pause=0.05):
    def run():
        for piece in pieces:
            time.sleep(pause)
            console.feed(piece)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_pattern_found_across_chunks(tmp_path):
    console = Console(tmp_path / "console.log")
    feeder = feed_later(console, [b"[ 0.1] booting\nARCHMATRIX-BAN", b"NER arch=aarch64 rel\n"])
    wait = console.wait_for(BANNER, 5, time.monotonic())
    feeder.join()
    assert wait.matched and wait.match == ("aarch64",)


def test_second_wait_sees_what_arrived_with_the_first_match(tmp_path):
    # SCLP flushes the banner and the login prompt in one write: the prompt must
    # be found at once, not when the guest next prints something.
    console = Console(tmp_path / "console.log")
    console.feed(b"ARCHMATRIX-BANNER arch=s390x\ncirros login: ")
    started = time.monotonic()
    assert console.wait_for(BANNER, 5, started).matched
    prompt = console.wait_for(PROMPT, 5, started)
    assert prompt.matched and prompt.elapsed_s < 1


def test_kernel_panic_ends_the_wait_at_once(tmp_path):
    console = Console(tmp_path / "console.log")
    console.feed(b"[ 1.0] Run /init\n[ 1.1] Kernel panic - not syncing: No working init found.\n")
    wait = console.wait_for(BANNER, 30, time.monotonic())
    assert not wait.matched and wait.elapsed_s < 1
    assert "Kernel panic - not syncing: No working init found." in wait.reason
    assert "Run /init" in wait.tail


def test_timeout_reports_the_last_lines(tmp_path):
    console = Console(tmp_path / "console.log")
    console.feed(b"Decompressing Linux... Parsing ELF... done.\n")
    wait = console.wait_for(BANNER, 0.3, time.monotonic())
    assert not wait.matched and wait.reason == "timeout after 0.3 s"
    assert "Decompressing Linux" in wait.tail


def test_a_stream_that_ends_ends_the_wait_at_once(tmp_path):
    console = Console(tmp_path / "console.log")
    console.feed(b"reboot: Restarting system\n")
    threading.Timer(0.1, console.end, args=("the console stream ended",)).start()
    wait = console.wait_for(BANNER, 30, time.monotonic())
    assert not wait.matched and wait.elapsed_s < 2
    assert wait.reason == "guest stopped before the pattern appeared (the console stream ended)"


def test_a_stopped_guest_ends_the_wait_when_the_stream_says_nothing(tmp_path):
    console = Console(tmp_path / "console.log")
    wait = console.wait_for(BANNER, 30, time.monotonic(), alive=lambda: False)
    assert not wait.matched and wait.reason == "guest stopped before the pattern appeared"
    assert wait.elapsed_s < 3  # asked every ALIVE_CHECK_S


def test_flood_without_newlines_keeps_a_bounded_window(tmp_path):
    console = Console(tmp_path / "console.log")
    for _ in range(64):
        console.feed(b"\xff\x00" * 32 * 1024)
    console.feed(b"ARCHMATRIX-BANNER arch=mips\n")
    wait = console.wait_for(BANNER, 10, time.monotonic())
    assert wait.matched and wait.match == ("mips",)
    assert len(console._window) <= 64 * 1024


def test_console_over_its_cap_ends_the_wait_as_a_flood(tmp_path):
    console = Console(tmp_path / "console.log", cap_bytes=100_000)
    console.feed(b"\x00\xff" * 150_000)
    wait = console.wait_for(BANNER, 30, time.monotonic())
    assert not wait.matched and wait.reason == "console flood: the console passed 100000 bytes"
    assert wait.elapsed_s < 1


def test_log_past_its_cap_keeps_head_and_tail_and_says_what_was_dropped(tmp_path):
    cap = 4 * TAIL_BYTES
    console = Console(tmp_path / "console.log", cap_bytes=cap)
    console.feed(b"console [ttyAMA0] enabled\n")
    for _ in range(10):
        console.feed(b"." * TAIL_BYTES)
    console.feed(b"THE LAST LINE\n")
    console.close()
    text = (tmp_path / "console.log").read_bytes()
    assert text.startswith(b"console [ttyAMA0] enabled\n") and text.endswith(b"THE LAST LINE\n")
    total = 26 + 10 * TAIL_BYTES + 14
    assert f"{total - cap} bytes of console output dropped here; the console sent {total} bytes".encode() in text
    assert len(text) < cap + 200


def test_log_under_its_cap_is_whole(tmp_path):
    console = Console(tmp_path / "console.log")
    for piece in (b"one\n", b"two\n", b"three"):
        console.feed(piece)
    console.close()
    assert (tmp_path / "console.log").read_bytes() == b"one\ntwo\nthree"
    assert (tmp_path / "console.log").stat().st_mode & 0o777 == 0o600


def test_capped_copy_keeps_head_and_tail_and_says_what_was_dropped(tmp_path):
    source, target = tmp_path / "console.log", tmp_path / "out" / "console.log"
    source.write_bytes(b"HEAD" + b"." * 10_000 + b"TAIL")
    copy_capped(source, target, 1000)
    text = target.read_bytes()
    assert text.startswith(b"HEAD") and text.endswith(b"TAIL")
    assert b"[archmatrix: 9008 bytes of console output dropped here; the log was 10008 bytes" in text
    copy_capped(source, target, 20_000)
    assert target.read_bytes() == source.read_bytes()


def test_a_kernel_message_printed_into_the_banner_line_does_not_hide_it(tmp_path):
    from archmatrix.guest.observe import BANNER as REAL_BANNER

    console = Console(tmp_path / "console.log")
    # Seen on a trixie host: the kernel's printk landed between the banner and its newline.
    feeder = feed_later(console, [b"ARCHMATRIX-BANNER arch=x86_64 release=6.1.0-56-cloud-amd64 endian=little",
                                  b"[    2.399242] tsc: Refined TSC clocksource calibration: 2596.124 MHz\r\n"])
    wait = console.wait_for(REAL_BANNER, 5, time.monotonic())
    feeder.join()
    assert wait.match == ("x86_64", "6.1.0-56-cloud-amd64", "little")


def test_a_banner_read_in_two_pieces_is_matched_whole(tmp_path):
    from archmatrix.guest.observe import BANNER as REAL_BANNER

    console = Console(tmp_path / "console.log")
    feeder = feed_later(console, [b"ARCHMATRIX-BANNER arch=aarch64 release=6.1.0-56-arm64 endian=li", b"ttle\r\n"])
    wait = console.wait_for(REAL_BANNER, 5, time.monotonic())
    feeder.join()
    assert wait.match == ("aarch64", "6.1.0-56-arm64", "little")


def test_the_first_output_wait_leaves_the_first_byte_to_the_next_wait(tmp_path):
    # A kernel booted quiet prints nothing before init: the first byte on the console is the banner's "E".
    from archmatrix.guest.observe import ANY_OUTPUT

    console = Console(tmp_path / "console.log")
    console.feed(b"ARCHMATRIX-BANNER arch=aarch64 release=6.1.0-56-arm64 endian=little\n")
    started = time.monotonic()
    assert console.wait_for(ANY_OUTPUT, 1, started).matched
    banner = console.wait_for(BANNER, 1, started)
    assert banner.matched and banner.match == ("aarch64",)
