"""A console log read after the boot: in overlapping pieces, so a flood's log costs little memory."""

import random
import tracemalloc

from archmatrix.core.kernel_evidence import kernel_evidence, kernel_evidence_of
from archmatrix.guest.console_log import PIECE_BYTES, find_all, log_pieces, log_tail, search
from archmatrix.guest.observe import BANNER_TEXT, CONSOLE_ENABLED


def noise(size: int) -> bytes:
    """Console noise as /dev/urandom gives it: its bytes decode to every kind of character, astral ones among them."""
    return random.Random(21).randbytes(size)


def test_a_line_cut_by_a_pieces_end_is_found_whole(tmp_path):
    line = b"[    0.000000] printk: console [ttyAMA0] enabled\r\n"
    log = tmp_path / "console.log"
    log.write_bytes(b"x" * (PIECE_BYTES - 20) + line + b"y" * 100)
    assert find_all(CONSOLE_ENABLED, log) == {"ttyAMA0"}
    assert len(list(log_pieces(log))) == 2


def test_only_the_head_is_read_and_the_tail_from_the_end(tmp_path):
    log = tmp_path / "console.log"
    log.write_bytes(b"console [ttyS0] enabled\n" + b"z" * (3 * PIECE_BYTES) + b"\nconsole [hvc0] enabled\nthe end")
    assert find_all(CONSOLE_ENABLED, log, limit=PIECE_BYTES) == {"ttyS0"}
    assert find_all(CONSOLE_ENABLED, log, limit=4 * PIECE_BYTES) == {"ttyS0", "hvc0"}
    assert log_tail(log, 7) == "the end"
    assert log_tail(tmp_path / "absent") == "" and list(log_pieces(tmp_path / "absent")) == []


def test_the_banner_and_kernel_evidence_read_in_pieces_as_whole(tmp_path):
    text = ("Linux version 6.1.0-57-arm64 (debian-kernel@lists.debian.org)\n" + "." * (PIECE_BYTES + 10) +
            "\nCPU features: detected: 32-bit EL0 Support\n"
            "ARCHMATRIX-BANNER arch=aarch64 release=6.1.0 endian=little\n")
    log = tmp_path / "console.log"
    log.write_text(text)
    assert kernel_evidence_of(log_pieces(log)) == kernel_evidence(text)
    assert search(BANNER_TEXT, log).groups() == ("aarch64", "6.1.0", "little")


def test_a_flooded_log_is_scanned_in_little_memory(tmp_path):
    # Read whole as text, 8 MiB of noise took about 40 MiB at once (the harness's peak grew by as much per cell).
    log = tmp_path / "console.log"
    log.write_bytes(b"console [ttyAMA0] enabled\n" + noise(12 * 1024 * 1024))
    tracemalloc.start()
    try:
        consoles = find_all(CONSOLE_ENABLED, log)
        evidence = kernel_evidence_of(log_pieces(log))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert consoles == {"ttyAMA0"} and evidence["release"] is None
    assert peak < 4 * 1024 * 1024, f"peak {peak} bytes"  # read whole: about 40 MiB
