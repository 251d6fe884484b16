"""Finding and destroying what harness runs left behind, and nothing else.

Every domain the harness starts carries a metadata tag with its run id and
the pid and start time of the process that started it. A domain whose owner
process is gone was abandoned by a crashed or killed run; a domain without
the tag is never touched.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from archmatrix.guest.domain import harness_tag

if TYPE_CHECKING:
    import libvirt

RUN_DIR_PREFIX = "archmatrix-run-"
OWNER_FILE = "owner"


@dataclass(frozen=True)
class Leftover:
    what: str  # "domain" or "run directory"
    name: str
    run: str
    why: str

    def describe(self) -> str:
        return f"destroyed leftover {self.what} {self.name} of run {self.run}: {self.why}"


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


def owner_token(pid: int) -> dict[str, str]:
    return {"pid": str(pid), "pidstart": process_start(pid) or ""}


def owner_alive(tag: dict[str, str]) -> bool:
    try:
        pid = int(tag.get("pid", ""))
    except ValueError:
        return False
    return process_start(pid) == tag.get("pidstart")


def _tagged_domains(conn: "libvirt.virConnect"):
    import libvirt

    for domain in conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE):
        try:
            tag = harness_tag(domain.XMLDesc(0))
        except libvirt.libvirtError:
            continue  # it went away while we looked
        if tag is not None:
            yield domain, tag


def _destroy(domain) -> bool:
    import libvirt

    try:
        domain.destroy()
        return True
    except libvirt.libvirtError:
        return False


def sweep_abandoned_domains(conn: "libvirt.virConnect") -> list[Leftover]:
    """Destroy harness domains whose owning process is gone (this machine's libvirt only)."""
    found = []
    for domain, tag in _tagged_domains(conn):
        if not owner_alive(tag) and _destroy(domain):
            found.append(Leftover("domain", domain.name(), tag.get("run", "?"),
                                  f"its owner process {tag.get('pid', '?')} is gone"))
    return found


def sweep_run_domains(conn: "libvirt.virConnect", run_id: str, why: str) -> list[Leftover]:
    """Destroy every domain of run `run_id` still running."""
    found = []
    for domain, tag in _tagged_domains(conn):
        if tag.get("run") == run_id and _destroy(domain):
            found.append(Leftover("domain", domain.name(), run_id, why))
    return found


def sweep_abandoned_dirs(parent: Path, prefix: str, what: str) -> list[Leftover]:
    """Remove directories named `<prefix><run>-...` whose owner process (their OWNER_FILE) is gone."""
    found = []
    for directory in Path(parent).glob(f"{prefix}*"):
        try:
            pid, pidstart = (directory / OWNER_FILE).read_text().split()
        except (OSError, ValueError):
            continue  # not fully created, or not ours: leave it
        if not owner_alive({"pid": pid, "pidstart": pidstart}):
            shutil.rmtree(directory, ignore_errors=True)
            run = directory.name.removeprefix(prefix).split("-")[0]
            found.append(Leftover(what, str(directory), run, f"its owner process {pid} is gone"))
    return found


def sweep_abandoned_run_dirs(parent: Path | None = None) -> list[Leftover]:
    """Remove run directories whose owner process is gone."""
    return sweep_abandoned_dirs(Path(parent or tempfile.gettempdir()), RUN_DIR_PREFIX, "run directory")


def sweep_own_domains(conn: "libvirt.virConnect", run_id: str, pid: int) -> list[Leftover]:
    """Destroy the domains of `run_id` that process `pid` started: after a lost connection, they are orphans."""
    found = []
    for domain, tag in _tagged_domains(conn):
        if tag.get("run") == run_id and tag.get("pid") == str(pid) and _destroy(domain):
            found.append(Leftover("domain", domain.name(), run_id, "it was in flight when libvirtd went away"))
    return found
