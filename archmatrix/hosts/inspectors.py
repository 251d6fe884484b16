"""Looking at the libvirt host itself: real paths and the running QEMU process.

Here, through /proc; on a remote host, through SSH where the user gave a
way in; otherwise not at all, and the binary check says only the domain
XML was checked.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

LIBVIRT_QEMU_PID_DIR = "/run/libvirt/qemu"  # libvirt's <domain name>.pid files, on the libvirt host
SCRIPT_HEAD_BYTES = 4096


def wrapped_binary(real_path: str, head: bytes) -> str | None:
    """The binary a shell-script emulator runs in its own name, or None when `head` is not such a script.

    Debian's /usr/bin/qemu-system-i386 is a script that execs /usr/libexec/qemu-system-i386 (its Xen
    redirect): the QEMU process of an i686 guest is that binary, and the binary check must know it.
    Only an absolute path whose last component is the script's own name counts.
    """
    if not head.startswith(b"#!"):
        return None
    name = re.escape(os.path.basename(real_path))
    for match in re.finditer(rb"(/[\w./+-]*/" + name.encode() + rb")(?![\w.+-])", head):
        target = match.group(1).decode()
        if target != real_path:
            return target
    return None


class LocalInspector:
    can_resolve = True

    def __init__(self):
        self._pids: dict[str, int] = {}  # domain name -> QEMU pid, as process_exe found it

    def resolve(self, path: str) -> str | None:
        """The real path of the binary that runs when `path` is executed (through a wrapper script, too)."""
        real = os.path.realpath(path)
        try:
            with open(real, "rb") as stream:
                target = wrapped_binary(real, stream.read(SCRIPT_HEAD_BYTES))
        except OSError:
            return real
        return os.path.realpath(target) if target and os.path.isfile(target) else real

    def process_exe(self, domain_name: str) -> tuple[str | None, str]:
        pid_file = Path(LIBVIRT_QEMU_PID_DIR) / f"{domain_name}.pid"
        try:
            pid = self._pids[domain_name] = int(pid_file.read_text().strip())
            return os.path.realpath(f"/proc/{pid}/exe"), f"pid {pid} from {pid_file}"
        except (OSError, ValueError) as error:
            return None, f"could not read the QEMU process of {domain_name}: {error}"

    def peak_rss_kib(self, domain_name: str) -> int | None:
        pid = self._pids.pop(domain_name, None)
        try:
            return peak_rss_from_status(Path(f"/proc/{pid}/status").read_text()) if pid else None
        except OSError:
            return None


def peak_rss_from_status(status: str) -> int | None:
    """VmHWM (the peak resident set) from /proc/PID/status, in KiB."""
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return None


class XmlOnlyInspector:
    """A remote host with no SSH way in: nothing on it can be looked at."""

    can_resolve = False

    def resolve(self, path: str) -> str | None:
        return None

    def process_exe(self, domain_name: str) -> tuple[str | None, str]:
        return None, ("libvirt host is remote and no SSH way in was given: "
                      "only the domain XML's <emulator> was checked")

    def peak_rss_kib(self, domain_name: str) -> int | None:
        return None
