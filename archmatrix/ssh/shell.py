"""A connection to a libvirt host over SSH (paramiko): commands, a tunnel to its loopback, a forward back.

The host key is accepted only as the user's known_hosts file or a pinned SHA256 fingerprint says; never on
first use. Hosts' facts and QEMU processes (archmatrix/hosts/) and guests' forwarded ports (archmatrix/guest/)
go through it.
"""

from __future__ import annotations

import os
import shlex
import threading
from dataclasses import dataclass
from pathlib import Path

from archmatrix.ssh.keys import pinned_policy

CONNECT_TIMEOUT_S = 30


@dataclass(frozen=True)
class SshAccess:
    """How to reach the libvirt host itself, for its facts and its QEMU processes."""

    user: str
    host: str
    port: int = 22
    key: str | None = None  # private key file; None: the user's agent and default keys
    fingerprint: str | None = None  # pinned host key, "SHA256:..."; None: known_hosts decides
    known_hosts: str | None = None  # None: ~/.ssh/known_hosts
    proxy_command: tuple[str, ...] = ()  # a command whose stdin/stdout is the SSH connection

    def where(self) -> str:
        if self.proxy_command:
            return f"{self.user}@{self.host} (through {' '.join(self.proxy_command[:2])})"
        return f"{self.user}@{self.host}:{self.port}"


class HostSshError(RuntimeError):
    """The host could not be reached or trusted over SSH; the message names it."""


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
            client.set_missing_host_key_policy(pinned_policy(access.where(), fingerprint_pin=access.fingerprint,
                                                                error=HostSshError))
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
            # No idle limit: a guest's file forward is opened when the guest starts and first used when it has
            # booted, minutes later on a slow host. It ends when either side closes (the guest's QEMU exits, the
            # connection to the host goes).
            ready, _, _ = select.select([channel, local], [], [], 60)
            if not ready:
                if channel.get_transport() is None or not channel.get_transport().is_active():
                    break
                continue
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
