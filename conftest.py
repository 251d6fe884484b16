"""The checkout's suite lock: tests that kill or restart the shared libvirtd run alone.

Every test that boots (scenarios/ and the product's archmatrix/scenarios/) holds the lock shared; a test marked
`exclusive_host` holds it exclusively, so under `-n` no other guest is booting while it breaks the daemon. Runs
the suite starts itself (scenarios/runs.py) take no lock. The offline tests (tests/) take none either.
"""

import fcntl
import os
import tempfile
from pathlib import Path

import pytest

INNER_RUN = "ARCHMATRIX_INNER_RUN"  # scenarios/runs.py sets it for the runs the suite starts
LOCK = Path(tempfile.gettempdir()) / "archmatrix-suite-host.lock"
OFFLINE = Path(__file__).parent / "tests"


def pytest_configure(config):
    config.addinivalue_line("markers", "exclusive_host: the test disturbs libvirtd, or needs its leftovers to "
                                       "itself; no other scenario may run")
    config.addinivalue_line("markers", "lab_host: the test boots a lab host (a virtual aarch64 host with KVM); "
                                       "-m 'not lab_host' leaves those out")


@pytest.fixture(autouse=True)
def suite_lock(request):
    if os.environ.get(INNER_RUN) or OFFLINE in Path(str(request.node.path)).parents:
        yield
        return
    mode = fcntl.LOCK_EX if request.node.get_closest_marker("exclusive_host") else fcntl.LOCK_SH
    with open(LOCK, "a") as handle:
        fcntl.flock(handle, mode)
        yield


def pytest_report_header(config):
    if not config.invocation_params.args:  # a bare `pytest` in the checkout
        return ["archmatrix checkout: a bare pytest runs the offline tests (tests/) only; the boots: ./run matrix "
                "(the default matrix), ./run test (everything, as CI), or .venv/bin/pytest scenarios "
                "--pyargs archmatrix.scenarios"]
    return []
