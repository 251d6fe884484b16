"""The suite lock: tests that kill or restart the shared libvirtd run alone.

Every scenario holds the lock shared; a test marked `exclusive_host` holds it
exclusively, so under `-n` no other guest is booting while it breaks the daemon.
Runs the suite starts itself (scenarios/runs.py) take no lock.
"""

import fcntl
import os
import tempfile
from pathlib import Path

import pytest

from scenarios.runs import INNER_RUN

LOCK = Path(tempfile.gettempdir()) / "emuv-suite-host.lock"


def pytest_configure(config):
    config.addinivalue_line("markers", "exclusive_host: the test disturbs libvirtd; no other scenario may run")
    config.addinivalue_line("markers", "lab_host: the test boots a lab host (a virtual aarch64 host with KVM); "
                                       "-m 'not lab_host' leaves those out")


@pytest.fixture(autouse=True)
def suite_lock(request):
    if os.environ.get(INNER_RUN):
        yield
        return
    mode = fcntl.LOCK_EX if request.node.get_closest_marker("exclusive_host") else fcntl.LOCK_SH
    with open(LOCK, "a") as handle:
        fcntl.flock(handle, mode)
        yield
