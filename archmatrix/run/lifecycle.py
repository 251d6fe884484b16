"""The hosts a run starts itself (container hosts, lab hosts) and everything else it must undo at its end.

Each resource is registered the moment it exists, and the end runs every undo step whatever the ones before it
did (a Docker error, a lab that will not die, a Ctrl-C): the run directory, which holds the private key, is
removed last, always.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable

from archmatrix.hosts.spec import UNAVAILABLE, HostSpec
from archmatrix.run.rundir import RunDir


class Cleanup:
    """Undo steps, run last-registered first; every one runs, and what failed is said."""

    def __init__(self):
        self._steps: list[tuple[str, Callable[[], object]]] = []

    def add(self, what: str, step: Callable[[], object]) -> None:
        self._steps.append((what, step))

    def run(self) -> list[str]:
        """Run every step (each once); the failures, as lines naming the step."""
        failures = []
        while self._steps:
            what, step = self._steps.pop()
            try:
                step()
            except BaseException as error:  # noqa: BLE001 - whatever one step raised, the next ones still run
                failures.append(f"{what}: {type(error).__name__}: {error}")
        return failures


def start_extra_hosts(settings, run_dir: RunDir, cleanup: Cleanup, labs_cleanup: Cleanup,
                      say: Callable[[str], None]) -> list[HostSpec]:
    """Start the run's container and lab hosts, each registered for stopping as soon as it runs.

    Lab hosts are domains of this machine's libvirt: they go in `labs_cleanup`, run before the end-of-run sweep
    of the run's domains (which would count them as leaks). A host that cannot be started is a host whose
    cells are errors with the reason; the others go on.
    """
    specs: list[HostSpec] = []
    if settings.container_releases:
        specs += _start_containers(settings, run_dir, cleanup, say)
    if settings.lab_hosts:
        run_dir.ensure()  # a lab boots from a copy of its image in the run directory
        specs += _start_labs(settings, run_dir, labs_cleanup, say)
    return specs


def _start_containers(settings, run_dir: RunDir, cleanup: Cleanup, say) -> list[HostSpec]:
    import warnings

    from archmatrix.cleanup import sweep
    from archmatrix.errors import HarnessWarning
    from archmatrix.hosts import container, container_recipe
    from archmatrix.hosts.docker_daemon import ensure_docker_daemon

    for leftover in sweep.abandoned_here(with_containers=True):
        warnings.warn(HarnessWarning(leftover.describe()), stacklevel=2)
    specs = []
    for release in settings.container_releases:
        try:
            ensure_docker_daemon(say)
            handle = container.start_container_host(release, run_dir.run_id, run_dir.owner, settings.image_cache,
                                                    say)
        except container_recipe.ContainerHostError as error:
            specs.append(HostSpec(release, f"container://{release}", "container",
                                  details={UNAVAILABLE: f"container host {release} could not be started: {error}"}))
            continue
        cleanup.add(f"stopping container host {release}", handle.stop)
        specs.append(HostSpec(release, handle.uri, "container", handle.ssh, details={
            "container_release": release,
            "container_image": handle.image_tag,
            "container_qemu_package": handle.qemu_version,
            "container_libvirt_package": handle.libvirt_version,
        }))
    return specs


def _start_labs(settings, run_dir: RunDir, cleanup: Cleanup, say) -> list[HostSpec]:
    from archmatrix.hosts.lab import LabHostError, start_lab_host
    from archmatrix.hosts.lab_catalog import lab_kind

    specs = []
    for arch in settings.lab_hosts:
        kind = lab_kind(arch)
        try:
            handle = start_lab_host(kind, run_dir.path, run_dir.run_id, run_dir.owner, settings.image_cache, say,
                                    virtualization=not settings.lab_without_kvm)
        except LabHostError as error:
            specs.append(HostSpec(kind.label, f"lab://{arch}", "lab", details={UNAVAILABLE: str(error)}))
            continue
        cleanup.add(f"stopping lab host {kind.label}", handle.stop)
        specs.append(handle.spec)
    return specs


def remove_run_dir(run_dir: RunDir) -> None:
    if os.path.lexists(run_dir.path):  # a run that made none touches nothing
        shutil.rmtree(run_dir.path, ignore_errors=True)
