"""The pytest plugin (entry point `archmatrix`): thin, over the pytest-free run of archmatrix/run/.

Inert until asked: loading it makes nothing and opens nothing. A session makes its run directory, SSH key and
reports only once a test takes a cell (or the run is given container or lab hosts to start).

- configure.py: options checked, the run planned, extra hosts started and stopped, the xdist hand-off
- cells.py: the cell parametrization and the order of cells
- fixtures.py: cell_host, plan, image, observation, verify, guest (and archmatrix_run, archmatrix_host)
- reporter.py: the controller's matrix files
"""

from archmatrix.plugin.cells import (
    pytest_collection_modifyitems,
    pytest_generate_tests,
    pytest_runtest_setup,
    pytest_xdist_node_collection_finished,
)
from archmatrix.plugin.configure import (
    checked_settings,
    pytest_addoption,
    pytest_configure,
    pytest_configure_node,
    pytest_report_header,
    pytest_unconfigure,
)
from archmatrix.plugin.fixtures import (
    archmatrix_host,
    archmatrix_run,
    cell_host,
    guest,
    image,
    observation,
    plan,
    pytest_runtest_teardown,
    pytest_sessionfinish,
    verify,
)

__all__ = [
    "archmatrix_host", "archmatrix_run", "cell_host", "checked_settings", "guest", "image", "observation", "plan",
    "pytest_addoption", "pytest_collection_modifyitems", "pytest_configure", "pytest_configure_node",
    "pytest_generate_tests", "pytest_report_header", "pytest_runtest_setup", "pytest_runtest_teardown",
    "pytest_sessionfinish", "pytest_unconfigure", "pytest_xdist_node_collection_finished", "verify",
]
