"""Reaching a running guest over its user-mode network: ports, tunnels, and the SSH phase of a boot.

The guest's SSH port is forwarded by QEMU to a port on the libvirt host's
loopback. On this machine the harness connects to it directly; on a remote
host through a direct-tcpip channel of the host's SSH connection (nothing is
opened on any network interface). The file the `network` check fetches is
served on this machine's loopback; a remote host's sshd carries the guest's
request to it (a reverse forward on the remote loopback). QEMU forwards the
file's address to that port and nothing else of the host is reachable
(archmatrix/guest/user_network.py): the port is known before the guest starts.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable
from dataclasses import replace

from archmatrix.core.observation import GuestArchFacts, NetworkFacts, SshFacts
from archmatrix.guest.boot import free_local_port
from archmatrix.guest.console import Console
from archmatrix.guest.console_log import log_tail
from archmatrix.guest.file_server import LoopbackFile
from archmatrix.guest.ssh import GuestAddress, GuestSsh, GuestSshError, local_stream
from archmatrix.ssh.keys import RunKey, fingerprint_of, key_from_line
from archmatrix.ssh.shell import HostShell, HostSshError

# What init.sh prints once the network is up (or is not), and the guest's host key.
# A whole key: an ed25519 public key blob is 51 bytes, 68 base64 characters. A slow console (a guest inside a lab
# host) was once read between two pieces of the line, and the half key made SSH refuse the guest's real one.
HOST_KEY_LINE = re.compile(r"ARCHMATRIX-HOSTKEY (ssh-ed25519 [A-Za-z0-9+/]{68})(?![A-Za-z0-9+/=])")
# A kernel message the console shows in the middle of a line of init's ("...Zj[   27.455641] IPv6: ...\n"),
# seen on a KVM guest inside a lab host: taken out before the key is read, so the line is whole again.
KERNEL_MESSAGE = re.compile(r"\[\s*\d+\.\d+\] [^\r\n]*\r?\n")


def host_key_line(console_text: str) -> str | None:
    """The `ssh-ed25519 <base64>` the guest printed on its console, whole, or None (not yet, or never)."""
    found = HOST_KEY_LINE.search(KERNEL_MESSAGE.sub("", console_text))
    return found.group(1) if found else None
# init.sh's last word on SSH: its server listens, or why there is none. A whole line, so that a reason is whole.
SSH_SERVER_SAID = re.compile(r"ARCHMATRIX-SSH listening|ARCHMATRIX-(?:NET (?:failed|off)|SSH off)[^\r\n]*\r?\n")
# Everything up to the last line end the console has: one wake for all the lines that arrived together.
NEW_LINES = re.compile(rb"[\s\S]*\n")
LOOK_BACK_BYTES = 256 * 1024  # how much of the log's end each look reads: a flood cannot make a look costly
REMOTE_PORTS = (20000, 60000)  # a remote host's free ports cannot be asked for: drawn, and retried if taken


class GuestNetwork:
    """How this process reaches guests' forwarded ports on one libvirt host, and serves them the test file."""

    def __init__(self, host_label: str, key: RunKey, shell: HostShell | None = None):
        self.host_label = host_label
        self.key = key
        self.shell = shell  # None: this machine
        self._file: LoopbackFile | None = None
        self._file_port: int | None = None  # where the libvirt host serves it, on its loopback
        self._file_error: HostSshError | None = None  # why it cannot be offered on this host: said once, kept

    def free_port(self) -> int:
        if self.shell is not None:
            return random.randint(*REMOTE_PORTS)
        return free_local_port()

    def address(self, guest: str, port: int) -> GuestAddress:
        if self.shell is None:
            return GuestAddress(guest, self.host_label, port, local_stream(port))
        shell = self.shell
        return GuestAddress(guest, self.host_label, port, lambda: shell.open_loopback_channel(port))

    def client(self, guest: str, port: int, console: Console, deadline: float,
               alive: Callable[[], bool]) -> GuestSsh:
        """A client for the guest, not yet connected, pinned to the host key the guest printed on its console.

        Waits until the guest says its SSH server listens (or why it has none), at the latest until `deadline`.
        """
        host_key, why = wait_for_ssh_server(console, deadline, alive)
        if host_key is None:
            raise GuestSshError(f"SSH to guest {guest} (host {self.host_label}, 127.0.0.1:{port}) not tried: {why}")
        log = console.log_path
        return GuestSsh(self.address(guest, port), self.key, host_key, lambda: log_tail(log))

    def served_file(self) -> tuple[LoopbackFile, int]:
        """The test file and the port of the libvirt host's loopback it is served on; HostSshError if a remote
        host refuses to carry it (kept: every guest of the host is told the same)."""
        if self._file_error is not None:
            raise self._file_error
        if self._file is None:
            served = LoopbackFile()
            try:
                self._file_port = served.port if self.shell is None else self.shell.forward_to_local(served.port)
            except HostSshError as error:
                served.close()
                self._file_error = error
                raise
            self._file = served
        assert self._file_port is not None
        return self._file, self._file_port

    def guest_file_port(self) -> int | None:
        """For a guest's domain: the port its file forward goes to, or None when the host cannot serve the file
        (its network check then says why)."""
        try:
            return self.served_file()[1]
        except HostSshError:
            return None

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def wait_for_ssh_server(console: Console, deadline: float, alive: Callable[[], bool]) -> tuple[object | None, str]:
    """The host key the guest printed, once it says its SSH server listens; or None and why not.

    Woken by new lines as the console's bytes arrive: the guest is tried the moment it says it listens. Its
    lines are read from the log (a line may have come before the login prompt the boot waited for) with the
    kernel's messages taken out: on a hypervisor console (ppc64's hvc writes 16 bytes at a time) a kernel
    message can land in the middle of "ARCHMATRIX-SSH listening".
    """
    waiting_since = time.monotonic()
    key = None  # kept once seen: later output may push it out of the look-back
    ended = None  # the wait that ended without a new line; one more look follows it (its last bytes came with it)
    while True:
        text = KERNEL_MESSAGE.sub("", _log_end(console))
        # The key comes early: a flood since then may have pushed it out of the log's end, not out of its head.
        key = host_key_line(text) or key or host_key_line(KERNEL_MESSAGE.sub("", _log_head(console)))
        said = SSH_SERVER_SAID.search(text)
        if said:
            if not said.group(0).startswith("ARCHMATRIX-SSH listening"):
                return None, f"the guest said: {said.group(0).strip()}"
            return (key_from_line(key), "") if key else (
                None, "the guest said its SSH server listens but printed no host key (ARCHMATRIX-HOSTKEY) on its "
                      "console")
        if ended is not None:
            timed_out = ended.reason.startswith("timeout")
            why = f"timeout after {deadline - waiting_since:.0f} s" if timed_out else ended.reason
            if key:
                return None, f"the guest printed its host key but never said its SSH server listens ({why})"
            return None, f"the guest printed no host key (ARCHMATRIX-HOSTKEY) on its console ({why})"
        now = time.monotonic()
        line = console.wait_for(NEW_LINES, max(deadline - now, 0), now, alive)
        if not line.matched:
            ended = line


def _log_head(console: Console) -> str:
    """The first LOOK_BACK_BYTES of the console log as text."""
    try:
        with open(console.log_path, "rb") as log:
            return log.read(LOOK_BACK_BYTES).decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""


def _log_end(console: Console) -> str:
    """The last LOOK_BACK_BYTES of the console log as text."""
    try:
        with open(console.log_path, "rb") as log:
            log.seek(max(log.seek(0, 2) - LOOK_BACK_BYTES, 0))
            return log.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""


def endian_command() -> str:
    # As init.sh: byte 5 of busybox's ELF header (EI_DATA) is 1 for little, 2 for big endian.
    return "dd if=/bin/busybox bs=1 skip=5 count=1 2>/dev/null | od -An -tu1 | tr -d ' \\n'"


def ssh_phase(network: GuestNetwork, guest: str, port: int, console: Console, started: float, timeout_s: float,
              alive: Callable[[], bool]) -> dict:
    """Reach the guest over SSH, ask it what it runs on, have it fetch the test file: facts for three checks.

    `started` is the domain's start (monotonic); `timeout_s` bounds the whole phase from now.
    """
    ssh = SshFacts(port=port, via="tunnel over the host's SSH" if network.shell else "loopback")
    deadline = time.monotonic() + timeout_s
    try:
        client = network.client(guest, port, console, deadline, alive)
    except GuestSshError as error:
        return {"ssh": replace(ssh, error=str(error))}
    ssh = replace(ssh, host_key=fingerprint_of(client.host_key))
    facts: dict = {}
    try:
        connect_s = client.connect(deadline, alive)
        ssh = replace(ssh, answered_s=round(time.monotonic() - started, 3), connect_s=round(connect_s, 3))
        facts["guest_arch"] = guest_arch_facts(client)
        facts["network"] = network_facts(client, network)
    except (GuestSshError, HostSshError) as error:
        ssh = replace(ssh, error=ssh.error or str(error))
    finally:
        client.close()
    return facts | {"ssh": ssh}


def guest_arch_command() -> str:
    """Three answers in one session (each session is a round trip and a process start in an emulated guest):

    a line with `uname -m`, a line with its exit status, a line with the byte order, then /proc/cpuinfo.
    """
    return f'machine=$(uname -m); status=$?; printf "%s\\n%s\\n" "$machine" "$status"; {endian_command()}; echo; ' \
           "cat /proc/cpuinfo"


def guest_arch_facts(client: GuestSsh) -> GuestArchFacts:
    _, out, err = client.run(guest_arch_command())
    return guest_arch_answers(out, err)


def guest_arch_answers(out: str, err: str) -> GuestArchFacts:
    """guest_arch_command's output as the guest-arch check's facts."""
    machine, status, endian, cpuinfo = (out.split("\n", 3) + ["", "", "", ""])[:4]
    return GuestArchFacts(uname_m=machine.strip(), uname_status=int(status) if status.strip().isdigit() else -1,
                          uname_error=err.strip(),
                          endian={"1": "little", "2": "big"}.get(endian.strip(), f"unknown ({endian.strip()!r})"),
                          cpuinfo=cpuinfo[:4000])


def network_facts(client: GuestSsh, network: GuestNetwork) -> NetworkFacts:
    try:
        served, host_port = network.served_file()
    except HostSshError as error:
        return NetworkFacts(error=f"the test file could not be offered to the guest: {error}")
    url = served.url
    before = served.requests
    fetching = time.monotonic()
    fetched = "/tmp/archmatrix-network-check"
    status, out, err = client.run(f"wget -q -O {fetched} {url} && sha256sum {fetched}; s=$?; rm -f {fetched}; exit $s",
                                  timeout_s=120)
    seconds = time.monotonic() - fetching
    digest = out.split()[0] if out.split() else ""
    return NetworkFacts(url=url.replace(served.path, "/<token>"), host_port=host_port, bytes=len(served.data),
                        expected_sha256=served.sha256, seen_sha256=digest, seconds=round(seconds, 3),
                        server_requests=served.requests - before, status=status, stderr=err.strip()[-500:])
