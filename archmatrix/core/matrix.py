"""Cells and verdicts: pure aggregation of what each check's test reported."""

from __future__ import annotations

from dataclasses import dataclass, field

from archmatrix.core.arches import ACCELERATORS, ARCHES

# A cell's status is its worst check: a harness fault outranks a guest failure, which outranks a guest still
# booting when its bound ran out (inconclusive: neither shown to run nor shown not to), which outranks "this host
# cannot run it". But a cell whose every judged check passed is a pass even if some checks could not be judged
# there (no SSH server in its image): its reason names them.
STATUS_ORDER = ("error", "fail", "inconclusive", "pass", "unsupported")


@dataclass(frozen=True)
class CheckRecord:
    """One check of one cell, as its test ended."""

    host: str  # the host's label
    arch: str
    accel: str
    check: str
    outcome: str  # "pass", "fail", "inconclusive", "unsupported", "error"
    detail: str = ""  # the verdict or skip reason
    facts: dict = field(default_factory=dict)  # what the cell's boot observed
    nova: bool = False  # a Nova cell: its domain is Nova's own driver's


@dataclass(frozen=True)
class Cell:
    host: str
    arch: str
    accel: str
    status: str
    reason: str
    checks: dict[str, dict]
    facts: dict
    nova: bool = False

    @property
    def id(self) -> str:
        return f"{self.arch}-{self.accel}" + ("-nova" if self.nova else "")


def cell_status(outcomes: list[str]) -> str:
    for status in STATUS_ORDER:
        if status in outcomes:
            return status
    return "unsupported"


def aggregate(records: list[CheckRecord], host_order: list[str] | None = None) -> list[Cell]:
    grouped: dict[tuple[str, str, str, bool], list[CheckRecord]] = {}
    for record in records:
        grouped.setdefault((record.host, record.arch, record.accel, record.nova), []).append(record)
    hosts = host_order or sorted({record.host for record in records})
    cells = []
    for (host, arch, accel, nova), group in sorted(grouped.items(), key=lambda item: _order(hosts, *item[0])):
        status = cell_status([r.outcome for r in group])
        reason = next((r.detail for r in group if r.outcome == status and status != "pass"), "")
        not_judged = [r for r in group if r.outcome == "unsupported"]
        if status == "pass" and not_judged:
            reason = f"{', '.join(r.check for r in not_judged)} not judged: {not_judged[0].detail}"
        facts: dict = {}
        for record in group:
            facts.update(record.facts)
        checks = {r.check: {"outcome": r.outcome, "detail": r.detail} for r in group}
        cells.append(Cell(host, arch, accel, status, reason, checks, facts, nova))
    return cells


def _order(hosts: list[str], host: str, arch: str, accel: str, nova: bool) -> tuple[int, int, int, bool]:
    arches = list(ARCHES)
    return (
        hosts.index(host) if host in hosts else len(hosts),
        arches.index(arch) if arch in arches else len(arches),
        ACCELERATORS.index(accel) if accel in ACCELERATORS else len(ACCELERATORS),
        nova,
    )


def arches_beyond_run(guest_arches: list[str], cells: list[dict]) -> tuple[list[str], list[str]]:
    """What the host's libvirt lists that this run did not judge: (in the catalog, not in the catalog).

    So that a report accounts for every arch the host offers: the first were not selected (--arch all runs
    them), the second the harness knows nothing of (a newer QEMU's arch).
    """
    judged = {cell["arch"] for cell in cells}
    rest = [arch for arch in guest_arches if arch not in judged]
    return [a for a in rest if a in ARCHES], [a for a in rest if a not in ARCHES]
