"""Hostile inputs, by the type of what they are given to, and a bound on each try.

The walk (tests/test_hostile_walk.py) and the findings' own tests (test_number_bounds.py,
test_hostile_inputs.py) share them: the places hostile paths name (a FIFO, a directory, a dangling
symlink, a path under a file, ...), a deadline that turns a hang into a failure, and a snapshot of what
a try left behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import tempfile
from dataclasses import dataclass
from pathlib import Path

HUGE = "a" * 100_000  # far past any name, path or line a person types
CONTROL = ["\n", "a\nb", "a\n", "\r", "\t", "a\x00b", "\x1b[31m", "\x7f", "\x85", "a\u2028b"]


class Hung(BaseException):
    """A try that did not answer in time (a BaseException: the code under test must not swallow it)."""


@contextlib.contextmanager
def deadline(seconds: float):
    """Raise Hung in the main thread after `seconds`: a blocking open() of a FIFO is interrupted too."""

    def expire(signum, frame):
        raise Hung(f"no answer within {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@dataclass(frozen=True)
class Places:
    """What hostile paths name, made once under `root`; `valid_*` are good files for the other arguments."""

    root: Path

    @classmethod
    def make(cls, root: Path) -> Places:
        places = cls(root)
        root.mkdir(parents=True, exist_ok=True)
        os.mkfifo(places.fifo)
        places.directory.mkdir()
        places.regular.write_text("not what anything wants\n")
        places.dangling.symlink_to(root / "nowhere")
        places.loop.symlink_to(places.loop)
        places.kernel.write_bytes(b"\0" * 56 + b"ARM\x64" + b"\0" * 8)  # an arm64 Image header's magic at 0x38
        places.matrix.write_text(json.dumps({"schema_version": 1, "cells": []}))
        places.junit.write_text('<?xml version="1.0"?><testsuites><testsuite name="s" tests="0"/></testsuites>\n')
        places.properties.write_text("hw_machine_type=virt\n")
        places.not_utf8.write_bytes(b"\xff\xfe\x00uri = \xc3\x28\n")
        return places

    fifo = property(lambda self: self.root / "fifo")
    directory = property(lambda self: self.root / "directory")
    regular = property(lambda self: self.root / "a-file")
    dangling = property(lambda self: self.root / "dangling")
    loop = property(lambda self: self.root / "loop")
    under_file = property(lambda self: self.root / "a-file" / "child")  # ENOTDIR, for root too
    missing = property(lambda self: self.root / "missing")
    kernel = property(lambda self: self.root / "Image")
    matrix = property(lambda self: self.root / "matrix.json")
    junit = property(lambda self: self.root / "junit.xml")
    properties = property(lambda self: self.root / "image.properties")
    not_utf8 = property(lambda self: self.root / "not-utf8")

    def unblock(self) -> None:
        """Open the FIFO for writing and close it: a reader stuck in open() or read() sees its end."""
        with contextlib.suppress(OSError):
            os.close(os.open(self.fifo, os.O_WRONLY | os.O_NONBLOCK))


def numbers() -> list[str]:
    """Every one invalid for every number archmatrix takes, but for the walk's table of exceptions."""
    return ["", "nan", "NaN", "-nan", "inf", "-inf", "+inf", "infinity", "1e999", "1e308", "99999999",
            "1" + "0" * 400, "-1", "-0.5", "0", "abc", "5\n", " 5", "5\x00", "\x1b[2J", "0x10", "1_0", "5s"]


def texts() -> list[str]:
    return ["", *CONTROL, HUGE]


def name_lists() -> list[str]:
    return [*texts(), ",", "nan", "-1", "0", "no-such-name", "aarch64,\t", "aarch64\n"]


def input_files(places: Places) -> list[str]:
    """Paths no file argument may take: nothing here is a readable regular file."""
    return [str(path) for path in (places.fifo, places.directory, places.dangling, places.loop, places.under_file,
                                   places.missing)] + [
        "/proc/self/mem",  # a regular file to stat() whose first page cannot be read (EIO), by root either
        "/dev/zero", "/dev/null", "", str(places.regular) + "\n", f"{places.regular}\x00", "x/" * 3000]


def output_dirs(places: Places) -> list[str]:
    """Paths no directory archmatrix writes may be: none is or can become a writable directory."""
    return [str(path) for path in (places.regular, places.fifo, places.under_file, places.dangling)] + [
        "/proc", "/proc/archmatrix-walk", "/dev/null", "", str(places.root / "new\n"), str(places.root / "a\x00"),
        str(places.root / ("x/" * 3000))]


def output_files(places: Places) -> list[str]:
    return [str(path) for path in (places.directory, places.fifo, places.under_file / "out.xml")] + [
        "/proc/archmatrix-walk.xml", "", str(places.root / "out\n.xml"), str(places.root / "out\x00.xml")]


def uris() -> list[str]:
    return [*texts(), "nan", "-1", "just-a-hostname", "qemu:///system\n", "qemu:///sys\x00tem",
            "qemu+ssh://root@h:70000/system", "qemu+ssh://root@h:-1/system", "qemu+ssh://root@h:nan/system",
            "qemu+ssh://root@h:0/system", "qemu+ssh://root@h:99999999999/system", "qemu+ssh://root@h:/system\n"]


def labels() -> list[str]:
    return [*texts(), "-x", "a b", "a/b", "lab\n", "x" * 254]


def properties() -> list[str]:
    """KEY=VALUE image properties."""
    return [*texts(), "hw_machine_type", "=virt", "hw_machine_type=", "hw_machine_type=virt\n",
            "hw_machine_type=a\nhw_video_model=x", "hw_machine_type=" + HUGE, "hw_firmware_type=\x1b"]


def ssh_ways(places: Places, label: str) -> list[str]:
    """--host-ssh LABEL=USER@HOST[:PORT][,key=PATH]... values, for the host labelled `label`."""
    ways = [f"{label}=root@h:{port}" for port in ("70000", "-1", "0", "nan", "inf", "1e3", "", "22\n", " 22")]
    ways += [f"{label}=root@h,key={path}" for path in input_files(places)]
    ways += [f"{label}=root@h,known_hosts={path}" for path in (places.fifo, places.directory, places.under_file,
                                                              "/dev/zero")]
    ways += [f"{label}={access}" for access in ("", *CONTROL, "root@h\n", "ro\x00ot@h", "@h", "root@", "root@h,",
                                                "root@h,bogus=1", "root@h,fingerprint=SHA256:\n",
                                                "root@h,fingerprint=md5:aa", "root@h,key=", HUGE)]
    return ways + ["", f"\n={label}", f"{label}\n=root@h", "no-such-host=root@h", "=root@h", "root@h"]


def keyed(inner: list[str], valid_inner: str, keys: tuple[str, ...] = ()) -> list[str]:
    """ARCH=VALUE arguments: a valid arch with each hostile value, and each hostile arch with a valid value."""
    bad_keys = ("", "nosuch", "\n", "aarch64\n", "all", "a\x00", HUGE, *keys)
    return ([f"aarch64={value}" for value in inner] + [f"{key}={valid_inner}" for key in bad_keys]
            + ["aarch64", "=", "aarch64="])


def leftovers(*roots: Path) -> set[str]:
    """Every path under `roots`, and every archmatrix-* entry of the temporary directory."""
    found = {str(path) for root in roots if root.exists() for path in root.rglob("*")}
    found |= {str(path) for path in Path(tempfile.gettempdir()).glob("archmatrix-*")}
    return found
