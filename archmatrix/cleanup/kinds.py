"""The kinds of resource a run creates, each found by its name or tag and removed the same way.

Every kind answers `found()`: (what, name, run, owner) of each of ours it sees, and removes one with `remove()`.
libvirt and Docker are imported only when a kind of theirs is used.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from archmatrix.cleanup.names import (
    CONTAINER_DIR_LABEL,
    CONTAINER_LABEL,
    QEMU_PROCESS_MARK,
    container_owner,
    domain_tag,
    pool_tag,
    read_owner_file,
)
from archmatrix.cleanup.owner import Owner
from archmatrix.cleanup.scratch import ScratchArea


@dataclass(frozen=True)
class Found:
    what: str  # "domain", "storage pool", "container", "run directory", ...
    name: str
    run: str
    owner: Owner | None  # None: ours by name, with no owner to judge by (audit only)
    handle: Any = None  # what `remove` needs

    def describe(self, why: str, host: str = "") -> str:
        return f"{self.what} {self.name} of run {self.run}{f' on {host}' if host else ''}: {why}"


class Domains:
    def __init__(self, conn):
        self.conn = conn

    def found(self, active_only: bool = True) -> Iterator[Found]:
        import libvirt

        flags = libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE if active_only else 0
        for domain in self.conn.listAllDomains(flags):
            try:
                tag = domain_tag(domain.XMLDesc(0))
            except libvirt.libvirtError:
                continue  # it went away while we looked
            if tag is not None:
                yield Found("domain", domain.name(), tag.get("run", "?"), Owner.from_tag(tag), (domain, tag))

    @staticmethod
    def remove(found: Found) -> bool:
        import libvirt

        try:
            found.handle[0].destroy()
            return True
        except libvirt.libvirtError:
            return False  # already gone


class Pools:
    def __init__(self, conn):
        self.conn = conn

    def found(self) -> Iterator[Found]:
        for pool in self.conn.listAllStoragePools(0):
            tag = pool_tag(pool.name())
            if tag is not None:
                yield Found("storage pool", pool.name(), tag["run"], Owner.from_tag(tag), pool)

    @staticmethod
    def remove(found: Found) -> bool:
        """Volumes, directory and definition: nothing of the pool stays on the host."""
        import libvirt

        pool = found.handle
        try:
            if pool.isActive():
                pool.refresh(0)  # files libvirt made in it itself (a UEFI variable store) become volumes
                for volume in pool.listAllVolumes(0):
                    try:
                        volume.delete(0)
                    except libvirt.libvirtError:
                        pass  # already gone
                pool.destroy()
        except libvirt.libvirtError:
            return False
        for step in (lambda: pool.delete(0), pool.undefine):  # its directory, its definition
            try:
                step()
            except libvirt.libvirtError:
                pass  # never built, transient, or gone
        return True


class Containers:
    """Docker containers carrying our run label, running or not; none when no Docker daemon answers."""

    def found(self) -> Iterator[Found]:
        import docker

        try:
            client = docker.from_env(timeout=30)
        except docker.errors.DockerException:
            return
        try:
            listing = client.api.containers(all=True, filters={"label": CONTAINER_LABEL})
        except docker.errors.DockerException:
            listing = []
        finally:
            client.close()
        for entry in listing:
            yield container_found(entry)

    @staticmethod
    def remove(found: Found) -> bool:
        import docker

        try:
            client = docker.from_env(timeout=60)
        except docker.errors.DockerException:
            return False
        try:
            client.containers.get(found.handle[0]).remove(force=True)
        except docker.errors.NotFound:
            pass  # removed meanwhile
        except docker.errors.DockerException:
            return False  # not removed: the audit names it
        finally:
            client.close()
        private_dir = found.handle[1]
        # Only a directory of ours: an absolute path with our prefix.
        if private_dir and Path(private_dir).is_absolute() and Path(private_dir).name.startswith("archmatrix-host-"):
            shutil.rmtree(private_dir, ignore_errors=True)
        return True


def container_found(entry: dict) -> Found:
    """One entry of Docker's container list (`GET /containers/json`, as docker-py returns it)."""
    labels = entry.get("Labels") or {}
    name = (entry.get("Names") or [entry.get("Id", "?")[:12]])[0].lstrip("/")
    return Found("container", f"{name} ({entry.get('State', '?')})", labels.get(CONTAINER_LABEL, "?"),
                 container_owner(labels), (entry.get("Id", ""), labels.get(CONTAINER_DIR_LABEL)))


class Directories:
    """Directories named PREFIX<run>-... under `parent`, each with an owner file."""

    def __init__(self, parent: Path, prefix: str, what: str):
        self.parent, self.prefix, self.what = Path(parent), prefix, what

    def found(self) -> Iterator[Found]:
        for directory in sorted(self.parent.glob(f"{self.prefix}*")):
            run = directory.name.removeprefix(self.prefix).split("-")[0]
            yield Found(self.what, str(directory), run, read_owner_file(directory), directory)

    @staticmethod
    def remove(found: Found) -> bool:
        shutil.rmtree(found.handle, ignore_errors=True)
        return True


class BuildScratch:
    """Scratch of a build that was killed (its builder's lock is free), in an image cache."""

    def __init__(self, cache_root: Path):
        self.area = ScratchArea(cache_root)

    def found(self) -> Iterator[Found]:
        for path in self.area.abandoned():
            yield Found("image build scratch", str(path), "-", None, path)

    @staticmethod
    def remove(found: Found) -> bool:
        shutil.rmtree(found.handle, ignore_errors=True)
        return True


class QemuProcesses:
    """QEMU processes libvirt started for our domains (audit only: they go with their domains)."""

    def found(self) -> Iterator[Found]:
        listing = subprocess.run(["pgrep", "-af", QEMU_PROCESS_MARK], capture_output=True, text=True).stdout
        for line in listing.splitlines():
            pid = line.split()[0]
            yield Found("QEMU process", line[:160], "?", None, int(pid))


TCP_LISTEN = "0A"


class Listeners:
    """TCP ports our QEMU processes listen on (forwarded SSH ports; audit only: they go with the process)."""

    def found(self) -> Iterator[Found]:
        sockets = _listening_inodes()
        for process in QemuProcesses().found():
            for port in _ports_of(process.handle, sockets):
                yield Found("listening port", f"127.0.0.1:{port} of QEMU {process.handle}", "?", None, None)


def _listening_inodes() -> dict[str, int]:
    """inode -> port of every listening TCP socket (IPv4 and IPv6)."""
    found = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == TCP_LISTEN:
                found[fields[9]] = int(fields[1].rsplit(":", 1)[1], 16)
    return found


def _ports_of(pid: int, sockets: dict[str, int]) -> list[int]:
    ports = []
    try:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            target = re.fullmatch(r"socket:\[(\d+)\]", str(fd.readlink()) if fd.is_symlink() else "")
            if target and target.group(1) in sockets:
                ports.append(sockets[target.group(1)])
    except OSError:
        pass  # gone meanwhile, or not ours to read
    return sorted(ports)
