"""The sweeps and the audit, over every kind of resource (kinds.py): one API for the whole run.

- at a run's start: what crashed runs of this machine left (`abandoned_on_host`, `abandoned_here`);
- after a lost libvirtd: the domains this process had in flight (`of_process`);
- at a run's end: everything of the run still there (`of_run`);
- after a suite: anything of any run (`audit`).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from archmatrix.cleanup.kinds import (
    BuildScratch,
    Containers,
    Directories,
    Domains,
    Found,
    Listeners,
    Pools,
    QemuProcesses,
)
from archmatrix.cleanup.names import HOST_DIR_PREFIX, RUN_DIR_PREFIX

VERBS = {"domain": "destroyed", "storage pool": "deleted"}


@dataclass(frozen=True)
class Leftover:
    found: Found
    why: str

    @property
    def run(self) -> str:
        return self.found.run

    @property
    def name(self) -> str:
        return self.found.name

    def describe(self, host: str = "") -> str:
        return f"{VERBS.get(self.found.what, 'removed')} leftover {self.found.describe(self.why, host)}"


def _owner_gone(found: Found) -> str | None:
    if found.owner is None or not found.owner.gone:
        return None
    if found.owner.boot and found.owner.boot != _boot():
        return "its owner's boot of this machine is over"
    return f"its owner process {found.owner.pid or '?'} is gone"


def _boot() -> str:
    from archmatrix.cleanup.owner import this_boot

    return this_boot()


def _remove_all(kind, candidates: list[tuple[Found, str]]) -> list[Leftover]:
    return [Leftover(found, why) for found, why in candidates if kind.remove(found)]


def run_directories(parent: Path | None = None) -> Directories:
    return Directories(Path(parent or tempfile.gettempdir()), RUN_DIR_PREFIX, "run directory")


def host_directories(parent: Path | None = None) -> Directories:
    return Directories(Path(parent or tempfile.gettempdir()), HOST_DIR_PREFIX, "container host directory")


def suite_scratch() -> Directories:
    """What the project's own suite stages outside the run directory (planted faults' files)."""
    return Directories(Path("/var/tmp"), "archmatrix-", "scratch directory")


def abandoned_on_host(conn) -> list[Leftover]:
    """Domains and pools on a libvirt host that runs of this machine left when they crashed.

    Another machine's never: a run on machine B verifying this host must keep its guests.
    """
    swept = []
    for kind in (Domains(conn), Pools(conn)):
        swept += _remove_all(kind, [(found, why) for found in kind.found() if (why := _owner_gone(found))])
    return swept


def abandoned_here(with_containers: bool = False, parent: Path | None = None) -> list[Leftover]:
    """Run directories and container hosts' directories of this machine whose owner is gone; their containers."""
    swept = []
    kinds = [run_directories(parent), host_directories(parent)] + ([Containers()] if with_containers else [])
    for kind in kinds:
        swept += _remove_all(kind, [(found, why) for found in kind.found() if (why := _owner_gone(found))])
    return swept


def of_process(conn, run_id: str, pid: int) -> list[Leftover]:
    """The domains of `run_id` that process `pid` started: after a lost connection, they are orphans."""
    kind = Domains(conn)
    return _remove_all(kind, [(found, "it was in flight when libvirtd went away") for found in kind.found()
                              if found.run == run_id and found.owner and found.owner.pid == str(pid)
                              and found.owner.of_this_machine])


def of_run(conn, run_id: str, why: str = "still running when its run ended") -> list[Leftover]:
    """Every domain and pool of `run_id` still on the host."""
    domains, pools = Domains(conn), Pools(conn)
    return (_remove_all(domains, [(found, why) for found in domains.found() if found.run == run_id])
            + _remove_all(pools, [(found, why) for found in pools.found() if found.run == run_id]))


def audit(uri: str, cache_root: Path | None) -> list[str]:
    """Anything any run left on this machine: domains, pools, QEMU processes and their ports, containers,
    run and host directories, and killed builds' scratch in the image cache."""
    import libvirt

    conn = libvirt.open(uri)
    try:
        found = list(Domains(conn).found(active_only=False)) + list(Pools(conn).found())
    finally:
        conn.close()
    found += list(QemuProcesses().found()) + list(Listeners().found())
    found += list(run_directories().found()) + list(host_directories().found()) + list(suite_scratch().found())
    try:
        found += list(Containers().found())
    except ImportError:
        pass  # the docker library is not installed: this machine never ran a container host
    if cache_root is not None and cache_root.is_dir():
        found += list(BuildScratch(cache_root).found())
    return [f"{item.what} {item.name}" + (f" (run {item.run})" if item.run not in ("?", "-") else "")
            for item in found]
