"""Who owns a resource: a process of one boot of one machine.

A pid means something only on the machine, and in the boot, that wrote it: a libvirt host verified by several
machines holds domains of all of them. A resource is abandoned only when it is this machine's and its owner
process is gone (or its boot is over); another machine's is never touched.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from functools import cache
from pathlib import Path


def process_start(pid: int) -> str | None:
    """The kernel's start time of `pid` (field 22 of /proc/PID/stat), or None if it is gone.

    A zombie is gone too: killed, it may wait seconds for its parent to reap it.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (OSError, ValueError):
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return None if fields[0] in ("Z", "X") else fields[19]


@cache
def this_boot() -> str:
    """This machine's boot, in short (the kernel's random boot id)."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip().replace("-", "")[:12]
    except OSError:
        return "0" * 12


@cache
def this_machine() -> str:
    """This machine, in short: its machine id, else its host name (containers sharing a kernel share a boot id)."""
    for path in ("/etc/machine-id", "/var/lib/dbus/machine-id"):
        try:
            machine = Path(path).read_text().strip()
        except OSError:
            continue
        if machine:
            return machine[:12]
    return "".join(c for c in socket.gethostname() if c.isalnum())[:12] or "unknown"


@dataclass(frozen=True)
class Owner:
    pid: str
    pidstart: str
    boot: str
    machine: str

    @classmethod
    def of(cls, pid: int) -> Owner:
        return cls(str(pid), process_start(pid) or "", this_boot(), this_machine())

    @classmethod
    def of_this_process(cls) -> Owner:
        return cls.of(os.getpid())

    def tag(self) -> dict[str, str]:
        return {"pid": self.pid, "pidstart": self.pidstart, "boot": self.boot, "machine": self.machine}

    @classmethod
    def from_tag(cls, tag: dict[str, str]) -> Owner:
        return cls(*(str(tag.get(key, "")) for key in ("pid", "pidstart", "boot", "machine")))

    def line(self) -> str:
        """As an owner file holds it."""
        return f"{self.pid} {self.pidstart} {self.boot} {self.machine}\n"

    @classmethod
    def from_line(cls, line: str) -> Owner:
        words = line.split()
        if len(words) != 4:
            raise ValueError(f"an owner line has pid, pid start, boot and machine, not {line!r}")
        return cls(*words)

    @property
    def of_this_machine(self) -> bool:
        return self.machine == this_machine()

    @property
    def gone(self) -> bool:
        """This machine's, and its process is gone or its boot is over; another machine's is never gone to us."""
        if not self.of_this_machine:
            return False
        if self.boot != this_boot():
            return True
        try:
            return process_start(int(self.pid)) != self.pidstart
        except ValueError:
            return True  # a tag of ours with no usable pid: nobody can own it
