"""The fixtures: each one step of the pytest-free run (archmatrix/run/pipeline.py), its outcome turned into
pytest's (a skip with the reason, a failure with the evidence) and into the reporter's properties."""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest

from archmatrix.core.plan import CellKey, CellUnsupported, Plan
from archmatrix.plugin.cells import cell_of
from archmatrix.plugin.reporter import FACTS_PROPERTY, HOST_PROPERTY, VERDICT_PROPERTY
from archmatrix.plugin.state import state_of
from archmatrix.run.facts import cell_facts
from archmatrix.run.pipeline import Run

LIVE_GUESTS = pytest.StashKey[dict]()  # CellKey -> LiveGuest: the `guest` fixture's running guests in this process


@pytest.fixture(scope="session")
def archmatrix_run(pytestconfig) -> Run:
    """The run: made on first use (its directory, its hosts' connections), closed at the session's end."""
    return state_of(pytestconfig).the_run()


@pytest.fixture(scope="session")
def archmatrix_host(archmatrix_run: Run):
    """The run's first host (this machine unless told otherwise): for tests that boot outside the matrix."""
    return archmatrix_run.first_host()


@pytest.fixture
def cell_host(cell: CellKey, archmatrix_run: Run):
    return archmatrix_run.host(cell.host)


@pytest.fixture
def plan(cell: CellKey, archmatrix_run: Run, request) -> Plan:
    request.node.user_properties.append((HOST_PROPERTY, json.dumps(archmatrix_run.host_facts(cell))))
    try:
        return archmatrix_run.plan(cell)
    except CellUnsupported as reason:
        pytest.skip(str(reason))


@pytest.fixture
def image(cell: CellKey, plan: Plan, archmatrix_run: Run):
    try:
        return archmatrix_run.image(cell, plan)
    except CellUnsupported as reason:
        pytest.skip(str(reason))


@pytest.fixture
def observation(cell: CellKey, plan: Plan, image, archmatrix_run: Run, request):
    seen = archmatrix_run.observe(cell, plan, image, with_ssh=state_of(request.config).wants_ssh)
    request.node.user_properties.append((FACTS_PROPERTY, json.dumps(cell_facts(plan, seen))))
    return seen


@pytest.fixture
def verify(cell: CellKey, plan: Plan, observation, archmatrix_run: Run, request):
    """verify("binary") judges one check of this cell and fails the test with the evidence."""

    def run_check(check: str):
        try:
            verdict = archmatrix_run.verdict(cell, check, plan, observation)
        except CellUnsupported as reason:
            pytest.skip(str(reason))
        request.node.user_properties.append((VERDICT_PROPERTY, json.dumps(asdict(verdict))))
        if not verdict.passed:
            pytest.fail(verdict.explain(plan, observation), pytrace=False)
        return verdict

    return run_check


@pytest.fixture
def guest(cell: CellKey, plan: Plan, image, archmatrix_run: Run, request):
    """A running guest of this cell, reached over SSH: `guest.run("cat /proc/cpuinfo")`, `guest.put(path, to)`.

    Booted on first use and kept while the next test is of the same cell and uses it too; a test that
    needs a clean guest boots its own with the plan and image fixtures.
    """
    from archmatrix.guest.live import GuestBootError

    running = request.config.stash.setdefault(LIVE_GUESTS, {})
    if cell not in running:
        try:
            running[cell] = archmatrix_run.live_guest(cell, plan, image)
        except CellUnsupported as reason:
            pytest.skip(str(reason))
        except GuestBootError as error:
            pytest.fail(f"the {cell.id} guest for this scenario did not come up: {error}", pytrace=False)
    return running[cell]


def _uses_guest_of(item, cell: CellKey) -> bool:
    return item is not None and "guest" in getattr(item, "fixturenames", ()) and cell_of(item) == cell


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_teardown(item, nextitem) -> None:
    """A scenario's guest is destroyed once the next test does not want the same one (before the fixtures
    it was booted with, its host's connection among them, are torn down)."""
    running = item.config.stash.get(LIVE_GUESTS, {})
    for cell in [cell for cell in running if not _uses_guest_of(nextitem, cell)]:
        running.pop(cell).close()


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session) -> None:
    for live in session.config.stash.get(LIVE_GUESTS, {}).values():  # interrupted runs
        live.close()
    session.config.stash[LIVE_GUESTS] = {}
    # The lab hosts are domains of this machine's libvirt: stopped before the reporter's sweep of this run's
    # domains, which would count them as leaks. Their guests go with them.
    state = state_of(session.config)
    for failure in state.labs_cleanup.run():
        print(f"archmatrix: cleanup: {failure}")
