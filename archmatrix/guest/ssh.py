"""SSH into a guest (paramiko): as root with the run's key, its host key pinned, commands and file copies.

Each run makes its own ed25519 key pair in its private directory (archmatrix/ssh/keys.py); the public half
reaches the guest on its kernel command line. The guest prints its host key on its console, which the harness
trusts, and SSH accepts exactly that key for exactly that guest: nothing is learned on first use, nothing is
written to a known_hosts file.
"""

from __future__ import annotations

import shlex
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from archmatrix.ssh.keys import RunKey, pinned_policy

CONNECT_ATTEMPT_S = 10  # one TCP+SSH handshake; an emulated guest's key exchange takes a while
RETRY_PAUSE_S = 0.5


class GuestSshError(RuntimeError):
    """A guest could not be reached, trusted or used over SSH; the message names guest, host and port."""


@dataclass(frozen=True)
class GuestAddress:
    """Where a guest's SSH port is reached: its forwarded port on the libvirt host's loopback."""

    guest: str  # the domain's name
    host_label: str
    port: int
    # Opens a socket-like stream to the forwarded port: a plain TCP socket on this machine,
    # a direct-tcpip channel through the host's SSH connection on a remote one.
    open_stream: Callable[[], object]

    def where(self) -> str:
        return f"guest {self.guest} (host {self.host_label}, 127.0.0.1:{self.port})"


def local_stream(port: int) -> Callable[[], object]:
    return lambda: socket.create_connection(("127.0.0.1", port), timeout=CONNECT_ATTEMPT_S)


class GuestSsh:
    """One SSH connection to one guest, as root with the run's key, its host key pinned."""

    def __init__(self, address: GuestAddress, key: RunKey, host_key, console_tail: Callable[[], str]):
        self.address = address
        self.key = key
        self.host_key = host_key
        self.console_tail = console_tail  # what the guest last printed, for error messages
        self._client = None

    def _error(self, what: str) -> GuestSshError:
        tail = [line for line in self.console_tail().splitlines() if line.strip()][-5:]
        seen = "; ".join(line.strip() for line in tail) or "nothing"
        return GuestSshError(f"SSH to {self.address.where()}: {what}; last on its console: {seen}")

    def connect(self, deadline: float, alive: Callable[[], bool]) -> float:
        """Connect, retrying until the guest answers or `deadline` (monotonic) passes; the seconds it took."""
        import paramiko

        started = time.monotonic()
        last = "no attempt made"
        while True:
            if not alive():
                raise self._error(f"the guest stopped before SSH answered (last attempt: {last})")
            client = paramiko.SSHClient()
            client.set_missing_host_key_policy(pinned_policy(self.address.where(), key=self.host_key,
                                                                error=GuestSshError))
            try:
                client.connect("127.0.0.1", port=self.address.port, username="root", pkey=self.key.paramiko_key(),
                               sock=self.address.open_stream(), timeout=CONNECT_ATTEMPT_S,
                               banner_timeout=CONNECT_ATTEMPT_S, auth_timeout=CONNECT_ATTEMPT_S,
                               allow_agent=False, look_for_keys=False)
                self._client = client
                return time.monotonic() - started
            except GuestSshError:
                client.close()
                raise
            except (paramiko.SSHException, OSError, EOFError) as error:
                client.close()
                last = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
            if time.monotonic() + RETRY_PAUSE_S >= deadline:
                raise self._error(f"no answer within {deadline - started:.0f} s (last attempt: {last})")
            time.sleep(RETRY_PAUSE_S)

    def _exec(self, command: str, timeout_s: float, stdin: bytes = b"") -> tuple[int, bytes, bytes]:
        """Run a shell command in the guest: exit status and its output as bytes."""
        if self._client is None:
            raise self._error("not connected")
        try:
            channel = self._client.get_transport().open_session(timeout=timeout_s)
            channel.settimeout(timeout_s)
            channel.exec_command(command)
            if stdin:
                channel.sendall(stdin)
            channel.shutdown_write()
            # All stdout, then stderr: paramiko buffers stderr meanwhile, and outputs here are small.
            out, err = channel.makefile("rb").read(), channel.makefile_stderr("rb").read()
            return channel.recv_exit_status(), out, err
        except Exception as error:  # paramiko.SSHException, OSError, a timeout: the connection is gone
            raise self._error(f"{command!r} failed: {type(error).__name__}: {error}") from None

    def run(self, command: str, timeout_s: float = 60, stdin: bytes = b"") -> tuple[int, str, str]:
        """Run a shell command in the guest: exit status, stdout, stderr."""
        status, out, err = self._exec(command, timeout_s, stdin)
        return status, out.decode(errors="replace"), err.decode(errors="replace")

    def put(self, local: Path, remote: str) -> None:
        """Copy a file into the guest (over `cat`: dropbear has no SFTP server)."""
        status, _, err = self._exec(f"cat > {shlex.quote(remote)}", 60, Path(local).read_bytes())
        if status != 0:
            said = err.decode(errors="replace").strip()
            raise self._error(f"copying {local} to {remote} failed (exit {status}): {said}")

    def get(self, remote: str, local: Path) -> None:
        """Copy a file out of the guest."""
        status, out, err = self._exec(f"cat {shlex.quote(remote)}", 60)
        if status != 0:
            raise self._error(f"copying {remote} out failed (exit {status}): {err.decode(errors='replace').strip()}")
        Path(local).write_bytes(out)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
