"""A booted guest handed to a scenario (the `guest` fixture): commands and file copies over SSH.

It boots like a cell's guest (the same plan, image, domain and console) but
stays up while consecutive tests of its cell use it; then it is destroyed
like every other domain of the run.
"""

from __future__ import annotations

import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from archmatrix.core.plan import Plan
from archmatrix.guest.boot import domain_alive
from archmatrix.guest.console import Console
from archmatrix.guest.observe import BANNER, LOGIN_PROMPT, guest_cmdline, watched_domain
from archmatrix.guest.ssh import GuestSsh, GuestSshError
from archmatrix.images.image import Image

if TYPE_CHECKING:
    from archmatrix.guest.site import GuestSite

LIVE_SUFFIX = "guest"  # the live guest's domain and directory: <cell>-guest, apart from the cell's own boot


class GuestBootError(RuntimeError):
    """The scenario's guest did not come up to an SSH answer; the message says where it stopped."""


@dataclass(frozen=True)
class CommandResult:
    status: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.status == 0


class LiveGuest:
    """A running guest of one cell: `run`, `put`, `get`; `close` destroys it."""

    def __init__(self, conn, plan: Plan, image: Image, site: GuestSite):
        self.plan = plan
        self.arch = plan.arch
        self._stack = ExitStack()
        self.cell_dir = site.run_dir / f"{plan.cell_id}-{LIVE_SUFFIX}"
        self.cell_dir.mkdir(parents=True, exist_ok=True)
        self.console_log = self.cell_dir / "console.log"
        try:
            self.ssh, self.ssh_answered_s = self._boot(conn, image, site)
        except BaseException:
            self._stack.close()
            raise

    def _boot(self, conn, image: Image, site: GuestSite) -> tuple[GuestSsh, float]:
        assert site.network is not None
        plan = self.plan
        console = Console(self.console_log, plan.console_cap_bytes)
        self._stack.callback(console.close)
        files = site.boot_files.place(image, f"{plan.cell_id}-{LIVE_SUFFIX}",
                                      guest_cmdline(plan, site.network.key.public_blob), {})
        self._stack.callback(site.boot_files.release, files)
        name = site.domain_name(f"{plan.cell_id}-{LIVE_SUFFIX}")
        domain, port, started = self._stack.enter_context(watched_domain(conn, plan, files, site, name, console))

        def alive() -> bool:
            return domain_alive(domain)

        for pattern, what in ((BANNER, "banner"), (LOGIN_PROMPT, "login prompt")):
            seen = console.wait_for(pattern, plan.timeout_s, started, alive)
            if not seen.matched:
                raise GuestBootError(f"{name}: no {what}: {seen.reason}; console log {self.console_log}; "
                                     f"last lines: {' | '.join(seen.tail.splitlines()[-5:])}")
        deadline = time.monotonic() + plan.ssh_timeout_s
        try:
            client = site.network.client(name, port, console, deadline, alive)
            self._stack.callback(client.close)
            client.connect(deadline, alive)
        except GuestSshError as error:
            raise GuestBootError(f"{error}; console log {self.console_log}") from None
        return client, time.monotonic() - started

    def run(self, command: str, timeout_s: float = 60, stdin: bytes = b"") -> CommandResult:
        """Run a shell command in the guest (busybox sh, as root)."""
        return CommandResult(*self.ssh.run(command, timeout_s, stdin))

    def put(self, local: Path | str, remote: str) -> None:
        self.ssh.put(Path(local), remote)

    def get(self, remote: str, local: Path | str) -> None:
        self.ssh.get(remote, Path(local))

    def close(self) -> None:
        """Destroy the guest, release its files; its console log stays in the run directory until the run ends."""
        self._stack.close()
