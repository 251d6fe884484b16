"""The controller-only reporter: check reports in, matrix files out at the session's end.

Registered on the pytest controller only (never on xdist workers); fed by plain values the workers put in
`report.user_properties`. What it writes, and how, is archmatrix/run/reports.py's.
"""

from __future__ import annotations

import json
import re

import pytest

from archmatrix.core.matrix import CheckRecord
from archmatrix.core.text import terminal_text
from archmatrix.run.reports import MatrixRecords, collect_qemu_logs, sweep_run

CELL_PROPERTY = "archmatrix_cell"
FACTS_PROPERTY = "archmatrix_facts"
HOST_PROPERTY = "archmatrix_host"
VERDICT_PROPERTY = "archmatrix_verdict"
WHITESPACE = re.compile(r"[ \t\r\n]+")  # a reason as one line; other control characters are shown


class MatrixReporter:
    def __init__(self, state):
        self.state = state
        self.records = MatrixRecords(state.specs)
        self.written: list = []
        self.cells: list = []
        self.leaks: list = []

    def pytest_runtest_logreport(self, report) -> None:
        properties = dict(report.user_properties)
        if CELL_PROPERTY not in properties:
            return
        outcome = _outcome(report)
        if outcome is None:
            return
        cell = json.loads(properties[CELL_PROPERTY])
        host = json.loads(properties[HOST_PROPERTY]) if HOST_PROPERTY in properties else None
        facts = json.loads(properties.get(FACTS_PROPERTY, "{}"))
        verdict = json.loads(properties.get(VERDICT_PROPERTY, "null"))
        detail = verdict["seen"] if verdict else _reason(report)
        if outcome == "fail" and verdict and verdict.get("inconclusive"):
            outcome = "inconclusive"  # the test failed (nothing was proven), the guest did not: it was still booting
        self.records.add(report.nodeid, CheckRecord(cell["host"], cell["arch"], cell["accel"], cell["check"],
                                                    outcome, detail, facts, cell.get("nova", False)), host)

    def pytest_sessionfinish(self, session, exitstatus) -> None:
        run_dir, settings = self.state.run_dir, self.state.settings
        if not run_dir.exists:
            return  # no cell ran: nothing was made, nothing is written
        self.leaks = sweep_run(run_dir, self.records.host_specs)
        if self.leaks and exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED  # a domain outlived its test: a harness bug
        collect_qemu_logs(run_dir.run_id, settings.report_dir)  # planted faults boot outside the matrix too
        complete = exitstatus not in (pytest.ExitCode.INTERRUPTED, pytest.ExitCode.INTERNAL_ERROR)
        self.cells, self.written = self.records.write(settings.report_dir, settings.console_cap_mib, complete)

    def pytest_terminal_summary(self, terminalreporter) -> None:
        for leak in self.leaks:
            terminalreporter.write_line(f"archmatrix: {leak.describe()}", red=True)
        if not self.cells:
            return
        terminalreporter.section("support matrix")
        for cell in self.cells:
            boot = cell.facts.get("login_s")
            timing = f"{boot:6.2f} s" if cell.status == "pass" and boot is not None else " " * 8
            terminalreporter.write_line(terminal_text(f"{cell.host + '/' + cell.id:30} {cell.status:12} {timing}"))
            if cell.reason:
                terminalreporter.write_line(f"    {terminal_text(WHITESPACE.sub(' ', cell.reason).strip())}")
        for path in self.written:
            terminalreporter.write_line(f"wrote {path}")


def _outcome(report) -> str | None:
    if report.when == "call":
        return {"passed": "pass", "failed": "fail", "skipped": "unsupported"}[report.outcome]
    if report.skipped:
        return "unsupported"
    if report.failed:
        return "error"  # setup or teardown broke: a fault of the harness or host, not of the guest
    return None


def _reason(report) -> str:
    if report.skipped and isinstance(report.longrepr, tuple):
        return report.longrepr[2].removeprefix("Skipped: ")
    crash = getattr(report.longrepr, "reprcrash", None)
    return crash.message if crash else str(report.longrepr)[-500:]
