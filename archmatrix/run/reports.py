"""A run's check records become its matrix files: matrix.json first (the source of truth), then JUnit, Markdown
and HTML, with each cell's console log copied beside them. Used by the pytest reporter and by `archmatrix cell`.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import platform
import time
from datetime import UTC, datetime
from pathlib import Path

from archmatrix.cleanup import sweep
from archmatrix.cleanup.names import run_prefix
from archmatrix.core.matrix import Cell, CheckRecord, aggregate
from archmatrix.guest.domain import LIBVIRT_QEMU_LOG_DIR
from archmatrix.hosts.host import FACT_DETAILS
from archmatrix.hosts.spec import HostSpec, redact_uri
from archmatrix.report.console_logs import copy_capped
from archmatrix.report.html import write_html
from archmatrix.report.json_report import matrix_document, write_json
from archmatrix.report.junit import write_junit
from archmatrix.report.markdown import write_markdown
from archmatrix.run.rundir import USES_LIBVIRT, RunDir

QEMU_LOG_CAP_BYTES = 16 * 1024 * 1024  # libvirt's QEMU log of one domain: its command line and QEMU's complaints


class MatrixRecords:
    """The checks' outcomes as they arrive, and the host facts the cells reported."""

    def __init__(self, host_specs: list[HostSpec]):
        self.host_specs = host_specs
        self.records: dict[str, CheckRecord] = {}
        self.hosts: dict[str, dict] = {}  # label -> facts, as the cells reported them
        self.started = time.monotonic()
        self.started_at = datetime.now(UTC).isoformat(timespec="seconds")

    def add(self, key: str, record: CheckRecord, host_facts: dict | None = None) -> None:
        if host_facts is not None:
            known = self.hosts.get(record.host, {})
            # Only KVM cells ask for the probe, only Nova cells for Nova's traits: keep what any cell said.
            self.hosts[record.host] = known | host_facts | {"kvm": host_facts.get("kvm") or known.get("kvm")}
        self.records[key] = record

    def host_facts(self, spec: HostSpec) -> dict:
        """What the cells reported of a host; for a host no cell reached, what the run knows of it."""
        if spec.label in self.hosts:
            return self.hosts[spec.label]
        known = {"label": spec.label, "kind": spec.kind, "hostname": platform.node() if spec.is_local else spec.label,
                 "arch": platform.machine() if spec.is_local else "unknown", "cpu_model": None,
                 "libvirt_uri": redact_uri(spec.uri), "kvm": None, "guest_arches": []}
        return known | {key: value for key, value in spec.details.items() if key in FACT_DETAILS}

    def write(self, report_dir: Path, console_cap_mib: float, complete: bool) -> tuple[list[Cell], list[Path]]:
        """The cells, and the files written (none without records)."""
        if not self.records:
            return [], []
        labels = [spec.label for spec in self.host_specs]
        cells = aggregate(list(self.records.values()), labels)
        # The harness's own log is bounded already (head, note, tail): the slack keeps its note from being cut.
        cap = int(console_cap_mib * 1024 * 1024) + 4096
        several = len({cell.host for cell in cells}) > 1
        cells = [_with_copied_console(cell, report_dir, cap, several) for cell in cells]
        hosts = [self.host_facts(spec) for spec in self.host_specs if any(c.host == spec.label for c in cells)]
        document = matrix_document(cells, hosts, self.started_at, time.monotonic() - self.started, complete)
        written = [write_json(document, report_dir / "matrix.json")]  # first: the one that must survive
        for writer, name in ((write_junit, "junit.xml"), (write_markdown, "matrix.md"), (write_html, "matrix.html")):
            written.append(writer(document, report_dir / name))
        return cells, written


def sweep_run(run: RunDir, host_specs: list[HostSpec]) -> list:
    """Destroy any domain and pool of this run still on a host: a killed worker's, or a leak (the domains)."""
    if not (run.path / USES_LIBVIRT).exists():
        return []
    import libvirt

    from archmatrix.hosts.host import open_libvirt

    leaks = []
    for spec in host_specs:
        if spec.kind == "lab":
            continue  # stopped already: its guests went with it (and its domain is this machine's, swept here)
        try:
            conn = open_libvirt(spec.uri)
        except libvirt.libvirtError:
            continue  # the host is gone; the next run's sweep (or the container's removal) takes them
        try:
            leaks += [leftover for leftover in sweep.of_run(conn, run.run_id)
                      if leftover.found.what == "domain"]  # a pool of the run is expected: not a leak
        finally:
            conn.close()
    return leaks


def collect_qemu_logs(run_id: str, report_dir: Path) -> None:
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


def _with_copied_console(cell: Cell, report_dir: Path, cap_bytes: int, several_hosts: bool) -> Cell:
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
