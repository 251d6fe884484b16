"""A Docker daemon for container hosts: one that answers, or dockerd started as root (there is no init system)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from archmatrix.files import log_tail
from archmatrix.hosts.container_recipe import ContainerHostError

DOCKERD_LOG = Path("/var/log/dockerd.log")
LOG_TAIL_LINES = 8  # of dockerd's log, in an error message
# dockerd processes this module started: kept referenced for as long as we run.
_STARTED_DAEMONS: list[subprocess.Popen] = []


def _daemon_answers() -> bool:
    import docker

    try:
        client = docker.from_env(timeout=5)
    except docker.errors.DockerException:
        return False
    try:
        return bool(client.ping())
    except docker.errors.DockerException:
        return False
    finally:
        client.close()


def ensure_docker_daemon(log: Callable[[str], None], timeout_s: float = 60.0) -> None:
    """Make sure a Docker daemon answers: as root, start dockerd (there is no init system to ask)."""
    if _daemon_answers():
        return
    dockerd = shutil.which("dockerd")
    if os.geteuid() != 0 or dockerd is None:
        raise ContainerHostError(
            "no Docker daemon answers; as root: apt-get install docker.io, then start dockerd "
            "(./run does both), or give this user access to a running daemon")
    log(f"starting dockerd (log: {DOCKERD_LOG})")
    with open(DOCKERD_LOG, "ab") as log_file:
        # Its own session: a Ctrl-C of this run must not reach the daemon.
        daemon = subprocess.Popen([dockerd], stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
                                  start_new_session=True)
    _STARTED_DAEMONS.append(daemon)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if _daemon_answers():
            return
        if daemon.poll() is not None:
            raise ContainerHostError(f"dockerd exited (status {daemon.returncode}): {_dockerd_said()}")
        time.sleep(0.5)
    raise ContainerHostError(f"dockerd did not answer within {timeout_s:.0f} s: {_dockerd_said()}")


def _dockerd_said() -> str:
    return log_tail(DOCKERD_LOG, LOG_TAIL_LINES, " / ")
