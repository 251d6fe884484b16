"""An SSH way into a libvirt host (paramiko): its facts and its running QEMU processes.

The host key is accepted only as the user's known_hosts file or a pinned
SHA256 fingerprint says; never on first use.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shlex
import threading
from pathlib import Path

from archmatrix.hosts.inspectors import LIBVIRT_QEMU_PID_DIR, SCRIPT_HEAD_BYTES, peak_rss_from_status, wrapped_binary
from archmatrix.hosts.spec import SshAccess

CONNECT_TIMEOUT_S = 30


class HostSshError(RuntimeError):
    """The host could not be reached or trusted over SSH; the message names it."""


def fingerprint_of(key) -> str:
    """OpenSSH's SHA256 fingerprint of a paramiko key, as `ssh-keygen -lf` prints it."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def _pinned_policy(expected: str, where: str):
    import paramiko

    class PinnedFingerprint(paramiko.MissingHostKeyPolicy):
        def missing_host_key(self, client, hostname, key):
            seen = fingerprint_of(key)
            if seen != expected:
                raise HostSshError(f"SSH to {where}: the host key is {seen}, not the pinned {expected}; "
                                   f"refusing to connect")

    return PinnedFingerprint()


class HostShell:
    """Commands on the libvirt host over one SSH connection, opened on first use."""

    def __init__(self, access: SshAccess):
        self.access = access
        self._client = None
        self._lock = threading.Lock()

    def _connect(self):
        import paramiko

        access = self.access
        client = paramiko.SSHClient()
        if access.fingerprint:
            client.set_missing_host_key_policy(_pinned_policy(access.fingerprint, access.where()))
        else:
            known = Path(os.path.expanduser(access.known_hosts or "~/.ssh/known_hosts"))
            if known.is_file():
                client.load_host_keys(str(known))
            client.set_missing_host_key_policy(paramiko.RejectPolicy())
        sock = paramiko.ProxyCommand(shlex.join(access.proxy_command)) if access.proxy_command else None
        try:
            client.connect(access.host, port=access.port, username=access.user, key_filename=access.key,
                           sock=sock, timeout=CONNECT_TIMEOUT_S, banner_timeout=CONNECT_TIMEOUT_S,
                           auth_timeout=CONNECT_TIMEOUT_S, allow_agent=access.key is None,
                           look_for_keys=access.key is None)
        except HostSshError:
            client.close()
            raise
        except (paramiko.SSHException, OSError) as error:
            client.close()
            raise HostSshError(f"SSH to {access.where()} failed: {error}") from None
        return client

    def run(self, argv: list[str], timeout_s: float = 30) -> tuple[int, str]:
        """Run a command (an argument list, quoted for the remote shell); exit status and output."""
        with self._lock:
            if self._client is None:
                self._client = self._connect()
            try:
                _stdin, stdout, stderr = self._client.exec_command(shlex.join(argv), timeout=timeout_s)
                output = stdout.read().decode(errors="replace")
                status = stdout.channel.recv_exit_status()
            except Exception as error:  # paramiko raises several kinds; all mean the host went away
                self.close_locked()
                raise HostSshError(f"SSH to {self.access.where()}: {' '.join(argv)} failed: {error}") from None
            if status != 0:
                output += stderr.read().decode(errors="replace")
            return status, output

    def _transport(self):
        with self._lock:
            if self._client is None:
                self._client = self._connect()
            return self._client.get_transport()

    def open_loopback_channel(self, port: int):
        """A stream to 127.0.0.1:`port` on the host (a direct-tcpip channel): a guest's forwarded SSH port."""
        try:
            return self._transport().open_channel("direct-tcpip", ("127.0.0.1", port), ("127.0.0.1", 0),
                                                  timeout=CONNECT_TIMEOUT_S)
        except Exception as error:  # paramiko.ChannelException, SSHException: the host refused or went away
            raise HostSshError(f"SSH to {self.access.where()}: no tunnel to its 127.0.0.1:{port}: {error}") from None

    def forward_to_local(self, local_port: int) -> int:
        """Have the host's sshd listen on its own loopback and carry each connection to our 127.0.0.1:`local_port`.

        The port the host listens on is returned; it goes away with this connection.
        """
        import socket

        def carry(channel, _origin, _server) -> None:
            try:
                local = socket.create_connection(("127.0.0.1", local_port), timeout=CONNECT_TIMEOUT_S)
            except OSError:
                channel.close()
                return
            threading.Thread(target=_pump, args=(channel, local), daemon=True).start()

        try:
            return self._transport().request_port_forward("127.0.0.1", 0, handler=carry)
        except Exception as error:  # paramiko.SSHException: the sshd does not allow it
            raise HostSshError(f"SSH to {self.access.where()}: it refused to forward a port on its loopback: "
                               f"{error}") from None

    def close_locked(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def close(self) -> None:
        with self._lock:
            self.close_locked()


def _pump(channel, local) -> None:
    """Copy bytes both ways between an SSH channel and a local socket until either side closes."""
    import select

    try:
        while True:
            ready, _, _ = select.select([channel, local], [], [], 60)
            if not ready:
                break
            if channel in ready:
                data = channel.recv(65536)
                if not data:
                    break
                local.sendall(data)
            if local in ready:
                data = local.recv(65536)
                if not data:
                    break
                channel.sendall(data)
    except OSError:
        pass
    finally:
        channel.close()
        local.close()


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
