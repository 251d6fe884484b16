"""What harness runs left on this machine: domains, pools, QEMU processes, containers, run and scratch directories,
and image build scratch no live build owns.

`archmatrix audit` lists them and exits non-zero when there is any; `./run test`
runs it after the suite, so a leak fails CI.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from archmatrix.guest.domain import harness_tag

# Run directories, container hosts' private directories (socket, SSH keys), scratch of the suite.
SCRATCH_GLOBS = ((Path(tempfile.gettempdir()), "archmatrix-run-*"), (Path(tempfile.gettempdir()), "archmatrix-host-*"),
                 (Path("/var/tmp"), "archmatrix-*"))


def leftover_domains(uri: str) -> list[str]:
    import libvirt

    conn = libvirt.open(uri)
    try:
        return [f"domain {domain.name()} (run {tag.get('run')})" for domain in conn.listAllDomains()
                if (tag := harness_tag(domain.XMLDesc(0))) is not None]
    finally:
        conn.close()


def leftover_processes() -> list[str]:
    found = subprocess.run(["pgrep", "-af", "guest=archmatrix-"], capture_output=True, text=True).stdout
    return [f"process {line}"[:200] for line in found.splitlines()]


def leftover_paths() -> list[str]:
    return [f"path {path}" for parent, pattern in SCRATCH_GLOBS for path in sorted(parent.glob(pattern))]


def leftover_pools(uri: str) -> list[str]:
    import libvirt

    from archmatrix.guest.volumes import harness_pools

    conn = libvirt.open(uri)
    try:
        return [f"storage pool {pool.name()} (run {owner['run']})" for pool, owner in harness_pools(conn)]
    finally:
        conn.close()


def leftover_containers() -> list[str]:
    try:
        from archmatrix.hosts.container import leftover_containers as containers
    except ImportError:
        return []  # testcontainers not installed: this machine never ran a container host
    return containers()


def leftover_image_builds(cache_root: Path | None = None) -> list[str]:
    """Scratch of a kernel build, source unpack or lab host image build that was killed (the next build removes it)."""
    from archmatrix.images.cache import ImageCache
    from archmatrix.paths import default_cache_dir

    root = cache_root or default_cache_dir()
    if not root.is_dir():
        return []
    from archmatrix.hosts.lab_image import abandoned_lab_builds

    return [f"image build scratch {path}" for path in ImageCache(root).abandoned_scratch()
            + abandoned_lab_builds(root)]


def audit(uri: str) -> list[str]:
    return (leftover_domains(uri) + leftover_pools(uri) + leftover_processes() + leftover_paths()
            + leftover_containers() + leftover_image_builds())
