"""A libvirt host's facts and its running QEMU processes, read over its SSH connection (archmatrix/ssh/shell.py)."""

from __future__ import annotations

from archmatrix.hosts.inspectors import LIBVIRT_QEMU_PID_DIR, SCRIPT_HEAD_BYTES, peak_rss_from_status, wrapped_binary
from archmatrix.ssh.shell import HostShell, HostSshError


class SshInspector:
    """Real paths and QEMU processes on a remote libvirt host, read over SSH."""

    can_resolve = True

    def __init__(self, shell: HostShell):
        self.shell = shell
        self._pids: dict[str, int] = {}  # domain name -> QEMU pid, as process_exe found it

    def resolve(self, path: str) -> str | None:
        """As LocalInspector.resolve, in one round trip: the real path, then the head of that file."""
        try:
            status, output = self.shell.run(["sh", "-c", f'p=$(readlink -f "$1") && echo "$p" && '
                                             f'head -c {SCRIPT_HEAD_BYTES} "$p"', "sh", path])
        except HostSshError:
            return None
        if status != 0:
            return None
        real, _, head = output.partition("\n")
        target = wrapped_binary(real, head.encode(errors="replace"))
        return target or real

    def process_exe(self, domain_name: str) -> tuple[str | None, str]:
        pid_file = f"{LIBVIRT_QEMU_PID_DIR}/{domain_name}.pid"
        try:
            status, output = self.shell.run(["cat", pid_file])
            if status != 0:
                return None, f"could not read {pid_file} over SSH: {output.strip()}"
            pid = self._pids[domain_name] = int(output.strip())
            status, exe = self.shell.run(["readlink", "-f", f"/proc/{pid}/exe"])
        except (HostSshError, ValueError) as error:
            return None, f"could not read the QEMU process of {domain_name} over SSH: {error}"
        if status != 0:
            return None, f"could not read /proc/{pid}/exe over SSH: {exe.strip()}"
        return exe.strip(), f"pid {pid} from {pid_file}, over SSH to {self.shell.access.where()}"

    def peak_rss_kib(self, domain_name: str) -> int | None:
        pid = self._pids.pop(domain_name, None)
        if pid is None:
            return None
        try:
            status, text = self.shell.run(["cat", f"/proc/{pid}/status"])
        except HostSshError:
            return None
        return peak_rss_from_status(text) if status == 0 else None


def remote_facts(shell: HostShell) -> dict:
    """Kernel and distribution of the host, over SSH."""
    facts: dict = {}
    status, kernel = shell.run(["uname", "-r"])
    facts["kernel"] = kernel.strip() if status == 0 else None
    status, release = shell.run(["cat", "/etc/os-release"])
    facts["distribution"] = None
    for line in release.splitlines() if status == 0 else []:
        if line.startswith("PRETTY_NAME="):
            facts["distribution"] = line.partition("=")[2].strip('"')
    return facts
