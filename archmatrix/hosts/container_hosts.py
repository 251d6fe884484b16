"""The container hosts of a run: started by the pytest controller before any cell, always stopped.

A container host that cannot be built or started becomes a host whose cells
are errors with the reason; the other hosts go on.
"""

from __future__ import annotations

import sys
import warnings

from archmatrix.cleanup import sweep
from archmatrix.cleanup.owner import Owner
from archmatrix.hosts.spec import HostSpec

UNAVAILABLE = "unavailable"  # key in HostSpec.details: why the host could not be started


class ContainerHostWarning(UserWarning):
    """A container host left by a crashed run was removed."""


def _say(message: str) -> None:
    # The controller's own progress line: building an image can take a minute.
    print(f"archmatrix: {message}", file=sys.stderr, flush=True)


def start_container_hosts(releases: tuple[str, ...], run_id: str, owner: Owner, cache_root) -> tuple[
        list[HostSpec], list]:
    """Start one container host per release; return their host specs and the handles to stop."""
    if not releases:
        return [], []
    from archmatrix.hosts import container, container_image
    from archmatrix.hosts.docker_daemon import ensure_docker_daemon

    for leftover in sweep.abandoned_here(with_containers=True):
        warnings.warn(ContainerHostWarning(leftover.describe()), stacklevel=1)
    specs, handles = [], []
    for release in releases:
        try:
            ensure_docker_daemon(_say)
            handle = container.start_container_host(release, run_id, owner, cache_root, _say)
        except container_image.ContainerHostError as error:
            specs.append(HostSpec(release, f"container://{release}", "container",
                                  details={UNAVAILABLE: f"container host {release} could not be started: {error}"}))
            continue
        handles.append(handle)
        specs.append(HostSpec(release, handle.uri, "container", handle.ssh, details={
            "container_release": release,
            "container_image": handle.image_tag,
            "container_qemu_package": handle.qemu_version,
            "container_libvirt_package": handle.libvirt_version,
        }))
    return specs, handles


def stop_container_hosts(handles: list) -> None:
    for handle in handles:
        handle.stop()
