"""The controller-only reporter: check reports in, matrix files out at session end.

Registered on the pytest controller only (never on xdist workers); fed by
plain values the workers put in `report.user_properties`.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import platform
import re
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from archmatrix.core.matrix import CheckRecord, aggregate
from archmatrix.core.text import terminal_text
from archmatrix.guest.console import copy_capped
from archmatrix.guest.domain import LIBVIRT_QEMU_LOG_DIR, run_prefix
from archmatrix.guest.volumes import delete_run_pools
from archmatrix.hosts.host import FACT_DETAILS, USES_LIBVIRT, RunDir
from archmatrix.hosts.leftovers import sweep_run_domains
from archmatrix.hosts.spec import HostSpec, redact_uri
from archmatrix.options import Settings
from archmatrix.report.html import write_html
from archmatrix.report.json_report import matrix_document, write_json
from archmatrix.report.junit import write_junit
from archmatrix.report.markdown import write_markdown

CELL_PROPERTY = "archmatrix_cell"
FACTS_PROPERTY = "archmatrix_facts"
HOST_PROPERTY = "archmatrix_host"
VERDICT_PROPERTY = "archmatrix_verdict"
WHITESPACE = re.compile(r"[ \t\r\n]+")  # a reason as one line; other control characters are shown
QEMU_LOG_CAP_BYTES = 16 * 1024 * 1024  # libvirt's QEMU log of one domain: its command line and QEMU's complaints


class MatrixReporter:
    """Controller-only: turns the check reports into the matrix files at session end."""

    def __init__(self, settings: Settings, run: RunDir, host_specs: list[HostSpec]):
        self.settings = settings
        self.run = run
        self.host_specs = host_specs
        self.records: dict[str, CheckRecord] = {}
        self.hosts: dict[str, dict] = {}  # label -> facts, as the cells reported them
        self.started = time.monotonic()
        self.started_at = datetime.now(UTC).isoformat(timespec="seconds")
        self.written: list[Path] = []
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
        if HOST_PROPERTY in properties:
            host = json.loads(properties[HOST_PROPERTY])
            known = self.hosts.get(cell["host"], {})
            # Only KVM cells ask for the probe: keep its verdict whatever arrives later.
            self.hosts[cell["host"]] = host | {"kvm": host["kvm"] or known.get("kvm")}
        facts = json.loads(properties.get(FACTS_PROPERTY, "{}"))
        verdict = json.loads(properties.get(VERDICT_PROPERTY, "null"))
        detail = verdict["seen"] if verdict else _reason(report)
        self.records[report.nodeid] = CheckRecord(cell["host"], cell["arch"], cell["accel"], cell["check"],
                                                  outcome, detail, facts)

    def pytest_sessionfinish(self, session, exitstatus) -> None:
        self.leaks = self._sweep_this_run()
        if self.leaks and exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED  # a domain outlived its test: a harness bug
        report_dir = self.settings.report_dir
        _collect_qemu_logs(self.run.run_id, report_dir)  # planted faults boot outside the matrix too
        if not self.records:
            return
        labels = [spec.label for spec in self.host_specs]
        cells = aggregate(list(self.records.values()), labels)
        # The harness's own log is bounded already (head, note, tail): the slack keeps its note from being cut.
        cap = int(self.settings.console_cap_mib * 1024 * 1024) + 4096
        several = len({cell.host for cell in cells}) > 1
        cells = [_with_copied_console(cell, report_dir, cap, several) for cell in cells]
        complete = exitstatus not in (pytest.ExitCode.INTERRUPTED, pytest.ExitCode.INTERNAL_ERROR)
        hosts = [self._host_facts(spec) for spec in self.host_specs if any(c.host == spec.label for c in cells)]
        document = matrix_document(cells, hosts, self.started_at, time.monotonic() - self.started, complete)
        self.cells = cells
        # matrix.json first: it is the source of truth, and the one that must survive.
        self.written = [write_json(document, report_dir / "matrix.json")]
        for writer, name in ((write_junit, "junit.xml"), (write_markdown, "matrix.md"), (write_html, "matrix.html")):
            self.written.append(writer(document, report_dir / name))

    def _host_facts(self, spec: HostSpec) -> dict:
        """What the cells reported of a host; for a host no cell reached, what the run knows of it."""
        if spec.label in self.hosts:
            return self.hosts[spec.label]
        known = {"label": spec.label, "kind": spec.kind, "hostname": platform.node() if spec.is_local else spec.label,
                 "arch": platform.machine() if spec.is_local else "unknown", "cpu_model": None,
                 "libvirt_uri": redact_uri(spec.uri), "kvm": None, "guest_arches": []}
        return known | {key: value for key, value in spec.details.items() if key in FACT_DETAILS}

    def _sweep_this_run(self) -> list:
        """Destroy any domain and pool of this run still on a host: a killed worker's, or a leak."""
        if not (self.run.path / USES_LIBVIRT).exists():
            return []
        import libvirt

        found = []
        for spec in self.host_specs:
            if spec.kind == "lab":
                continue  # stopped already: its guests went with it (and its domain is this machine's, swept here)
            try:
                conn = libvirt.open(spec.uri)
            except libvirt.libvirtError:
                continue  # the host is gone; the next run's sweep (or the container's removal) takes them
            try:
                found += sweep_run_domains(conn, self.run.run_id, "still running when its run ended")
                delete_run_pools(conn, self.run.run_id)
            finally:
                conn.close()
        return found

    def pytest_terminal_summary(self, terminalreporter) -> None:
        for leak in self.leaks:
            terminalreporter.write_line(f"archmatrix: {leak.describe()}", red=True)
        if not self.cells:
            return
        terminalreporter.section("support matrix")
        for cell in self.cells:  # what a guest printed is in the reasons: shown, never sent to the terminal raw
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


def _collect_qemu_logs(run_id: str, report_dir: Path) -> None:
    """Move libvirt's per-domain QEMU logs of this run next to the console logs.

    They hold QEMU's own complaints (the KVM probe's internal errors), and left in
    /var/log they would pile up, one file per cell and run.
    """
    prefix = run_prefix(run_id)
    for log in LIBVIRT_QEMU_LOG_DIR.glob(f"{prefix}*.log"):
        target = report_dir / "qemu-logs" / log.name.removeprefix(prefix)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            try:
                os.replace(log, target)  # a rename replaces a symlink planted at the target, never follows it
            except OSError as error:
                if error.errno != errno.EXDEV:
                    raise
                copy_capped(log, target, QEMU_LOG_CAP_BYTES)  # another file system: copied, also by a rename
                log.unlink()
        except OSError:
            return  # not ours to move (libvirt host of another user): leave them


def _with_copied_console(cell, report_dir: Path, cap_bytes: int, several_hosts: bool):
    """Keep the cell's console log with the reports; the run directory is removed at the end.

    The report directory may be shared: the copy replaces what is at its name, never writes through a symlink.
    """
    source = cell.facts.get("console_log")
    if not source or not Path(source).is_file():
        return cell
    consoles = report_dir / "consoles" / cell.host if several_hosts else report_dir / "consoles"
    target = consoles / f"{cell.id}.log"
    copy_capped(Path(source), target, cap_bytes)
    return dataclasses.replace(cell, facts=dict(cell.facts, console_log=str(target.relative_to(report_dir))))
