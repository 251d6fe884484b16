"""`archmatrix report diff` and `merge`: what changed between runs, and several runs as one."""

from __future__ import annotations

from dataclasses import dataclass

from archmatrix.report.json_report import SCHEMA_VERSION, SchemaError, host_key

# What a cell that passed before must not become: failing, broken, or no longer proven (inconclusive: its guest was
# still booting when its bound ran out). Not "unsupported": the host says why it cannot run the cell.
BAD = ("fail", "error", "inconclusive")


@dataclass(frozen=True)
class Change:
    cell: str  # "<host>/<arch>-<accel>"
    kind: str  # "regression", "fixed", "changed", "slower", "faster", "new", "gone"
    detail: str

    @property
    def is_regression(self) -> bool:
        return self.kind in ("regression", "slower")


def _cells(document: dict) -> dict[str, dict]:
    return {f"{cell['host']}/{cell['id']}": cell for cell in document["cells"]}


def diff(old: dict, new: dict, slower_ratio: float = 1.5, slower_min_s: float = 1.0) -> list[Change]:
    """Changes from old to new. A boot counts as slower past both the ratio and the absolute margin."""
    before, after = _cells(old), _cells(new)
    changes = []
    for key in sorted(before.keys() | after.keys()):
        a, b = before.get(key), after.get(key)
        if a is None:
            changes.append(Change(key, "new", f"{b['status']}"))
            continue
        if b is None:
            changes.append(Change(key, "gone", f"was {a['status']}"))
            continue
        if a["status"] != b["status"]:
            if b["status"] in BAD and a["status"] not in BAD:
                kind = "regression"
            elif a["status"] in BAD and b["status"] == "pass":
                kind = "fixed"
            else:
                kind = "changed"
            reason = f": {b['reason']}" if b["reason"] else ""
            changes.append(Change(key, kind, f"{a['status']} -> {b['status']}{reason}"))
        for fact in ("emulator_resolved", "machine_canonical", "qemu_version", "cpu_model"):
            was, now = a["facts"].get(fact), b["facts"].get(fact)
            if was and now and was != now:
                changes.append(Change(key, "changed", f"{fact}: {was} -> {now}"))
        was_s, now_s = a["facts"].get("login_s"), b["facts"].get("login_s")
        if was_s and now_s:
            if now_s > was_s * slower_ratio and now_s - was_s > slower_min_s:
                changes.append(Change(key, "slower", f"boot {was_s:.2f} s -> {now_s:.2f} s"))
            elif was_s > now_s * slower_ratio and was_s - now_s > slower_min_s:
                changes.append(Change(key, "faster", f"boot {was_s:.2f} s -> {now_s:.2f} s"))
    return changes


def merge(documents: list[dict]) -> dict:
    """Several runs (typically of several hosts) as one matrix; a later run of a host replaces an earlier one."""
    hosts: dict[str, dict] = {}
    cells: dict[str, dict] = {}
    for document in documents:
        if document.get("schema_version") != SCHEMA_VERSION:
            raise SchemaError(f"cannot merge schema_version {document.get('schema_version')!r}")
        names = {host_key(host) for host in document["hosts"]}
        cells = {key: cell for key, cell in cells.items() if cell["host"] not in names}
        for host in document["hosts"]:
            hosts[host_key(host)] = host
        cells.update(_cells(document))
    return {
        "schema_version": SCHEMA_VERSION,
        "complete": all(document["complete"] for document in documents),
        "hosts": list(hosts.values()),
        "cells": list(cells.values()),
    }
