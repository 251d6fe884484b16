"""The console watcher against log files written while it waits, as QEMU writes them."""

import re
import threading
import time

from harness.guest.console import ConsoleLog, copy_capped

BANNER = re.compile(rb"EMUV-BANNER arch=(\S+)")
PROMPT = re.compile(rb"login: ")


def write_later(path, pieces, pause=0.05):
    def run():
        for piece in pieces:
            time.sleep(pause)
            with open(path, "ab") as stream:
                stream.write(piece)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_pattern_found_across_writes(tmp_path):
    log = tmp_path / "console.log"
    log.touch()
    writer = write_later(log, [b"[ 0.1] booting\nEMUV-BAN", b"NER arch=aarch64 rel\n"])
    wait = ConsoleLog(log).wait_for(BANNER, 5, time.monotonic(), lambda: True)
    writer.join()
    assert wait.matched and wait.match == ("aarch64",)


def test_second_wait_sees_what_arrived_with_the_first_match(tmp_path):
    # SCLP flushes the banner and the login prompt in one write: the prompt must
    # be found at once, not when the guest next prints something.
    log = tmp_path / "console.log"
    log.write_bytes(b"EMUV-BANNER arch=s390x\ncirros login: ")
    console = ConsoleLog(log)
    started = time.monotonic()
    assert console.wait_for(BANNER, 5, started, lambda: True).matched
    prompt = console.wait_for(PROMPT, 5, started, lambda: True)
    assert prompt.matched and prompt.elapsed_s < 1


def test_kernel_panic_ends_the_wait_at_once(tmp_path):
    log = tmp_path / "console.log"
    log.write_bytes(b"[ 1.0] Run /init\n[ 1.1] Kernel panic - not syncing: No working init found.\n")
    wait = ConsoleLog(log).wait_for(BANNER, 30, time.monotonic(), lambda: True)
    assert not wait.matched and wait.elapsed_s < 1
    assert "Kernel panic - not syncing: No working init found." in wait.reason
    assert "Run /init" in wait.tail


def test_timeout_reports_the_last_lines(tmp_path):
    log = tmp_path / "console.log"
    log.write_bytes(b"Decompressing Linux... Parsing ELF... done.\n")
    wait = ConsoleLog(log).wait_for(BANNER, 0.3, time.monotonic(), lambda: True)
    assert not wait.matched and wait.reason == "timeout after 0 s"
    assert "Decompressing Linux" in wait.tail


def test_stopped_guest_ends_the_wait(tmp_path):
    log = tmp_path / "console.log"
    log.write_bytes(b"reboot: Restarting system\n")
    wait = ConsoleLog(log).wait_for(BANNER, 30, time.monotonic(), lambda: False)
    assert not wait.matched and wait.reason == "guest stopped before the pattern appeared"


def test_flood_without_newlines_keeps_a_bounded_window(tmp_path):
    log = tmp_path / "console.log"
    log.write_bytes(b"\xff\x00" * (4 * 1024 * 1024) + b"EMUV-BANNER arch=mips\n")
    console = ConsoleLog(log)
    wait = console.wait_for(BANNER, 10, time.monotonic(), lambda: True)
    assert wait.matched and wait.match == ("mips",)
    assert len(console._window) <= 64 * 1024


def test_console_over_its_cap_ends_the_wait_as_a_flood(tmp_path):
    log = tmp_path / "console.log"
    log.write_bytes(b"\x00\xff" * 150_000)
    wait = ConsoleLog(log, cap_bytes=100_000).wait_for(BANNER, 30, time.monotonic(), lambda: True)
    assert not wait.matched and wait.reason == "console flood: the log passed 100000 bytes"
    assert wait.elapsed_s < 1


def test_capped_copy_keeps_head_and_tail_and_says_what_was_dropped(tmp_path):
    source, target = tmp_path / "console.log", tmp_path / "out" / "console.log"
    source.write_bytes(b"HEAD" + b"." * 10_000 + b"TAIL")
    copy_capped(source, target, 1000)
    text = target.read_bytes()
    assert text.startswith(b"HEAD") and text.endswith(b"TAIL")
    assert b"[emulation verifier: 9008 bytes of console output dropped here; the log was 10008 bytes" in text
    copy_capped(source, target, 20_000)
    assert target.read_bytes() == source.read_bytes()
