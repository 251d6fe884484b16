"""matrix.json: the support matrix as data, the source every other format follows.

The schema is archmatrix/report/matrix.schema.json (documented in README.md).
A single run has one entry in `hosts`; `archmatrix report merge` combines runs
of several hosts, and every cell names the host it ran on.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from archmatrix.core.arches import ACCELERATORS
from archmatrix.core.matrix import Cell, arches_beyond_run
from archmatrix.core.traits import honest_traits, trait_rows
from archmatrix.files import write_atomically
from archmatrix.inputs import InputError
from archmatrix.inputs.files import read_input_text

SCHEMA_VERSION = 1
SCHEMA_FILE = Path(__file__).with_name("matrix.schema.json")


class SchemaError(InputError):
    """A matrix.json this version of the harness cannot read."""


def host_key(host: dict) -> str:
    """What cells name their host by: its label (older files: its host name)."""
    return host.get("label") or host["hostname"]


Column = tuple[str, str, bool]  # (host, accelerator, the domain is Nova's driver's)


def column_name(accel: str, nova: bool) -> str:
    return f"{accel}, Nova's domain" if nova else accel


def overview_grid(document: dict) -> tuple[list[Column], dict[str, dict[Column, dict]]]:
    """Every host side by side: the (host, accelerator, Nova's or not) columns that have cells, and each arch's
    cells by column."""
    by_arch: dict[str, dict[Column, dict]] = {}
    for cell in document["cells"]:
        by_arch.setdefault(cell["arch"], {})[(cell["host"], cell["accel"], cell.get("nova", False))] = cell
    columns = [(host_key(host), accel, nova) for host in document["hosts"] for nova in (False, True)
               for accel in ACCELERATORS if any((host_key(host), accel, nova) in row for row in by_arch.values())]
    return columns, by_arch


def matrix_document(cells: list[Cell], hosts: list[dict], started_at: str, duration_s: float, complete: bool) -> dict:
    """One run's matrix: one entry per host (in run order), every cell naming its host's label."""
    rows = [asdict(cell) | {"id": cell.id} for cell in cells]
    documented = []
    for host in hosts:
        host = dict(host, started_at=started_at, duration_s=round(duration_s, 2), complete=complete)
        own = [row for row in rows if row["host"] == host_key(host)]
        # Each emulator's own version, as the running QEMU reported it (QMP query-version).
        host["emulator_versions"] = {
            row["facts"]["emulator_resolved"] or row["facts"]["emulator"]: row["facts"]["qemu_version"]
            for row in own if row["facts"].get("qemu_version") and row["facts"].get("emulator")
        }
        host["traits"] = trait_rows(host.get("guest_arches", []), own, (host.get("nova") or {}).get("traits"))
        host["honest_traits"] = honest_traits(host["traits"])
        host["arches_not_run"], host["arches_unknown"] = arches_beyond_run(host.get("guest_arches", []), own)
        documented.append(host)
    return {"schema_version": SCHEMA_VERSION, "complete": complete, "hosts": documented, "cells": rows}


def write_json(document: dict, path: Path) -> Path:
    write_atomically(path, json.dumps(document, indent=2, sort_keys=True) + "\n")
    return path


def schema_problems(document: dict) -> list[str]:
    """Where `document` breaks the documented schema (empty when it is valid)."""
    import jsonschema

    schema = json.loads(SCHEMA_FILE.read_text())
    validator = jsonschema.Draft202012Validator(schema)
    return [f"{'/'.join(map(str, error.absolute_path)) or '(top)'}: {error.message}"
            for error in validator.iter_errors(document)]


MATRIX_LARGEST = 256 * 1024 * 1024  # bytes: every arch of many hosts, with long details, is far smaller


def load_valid_matrix(path: Path) -> dict:
    """A matrix.json that also holds to the schema: what diff and merge read fields of without asking."""
    document = load_matrix(path)
    problems = schema_problems(document)
    if problems:
        raise SchemaError(f"{path} does not hold to the matrix.json schema ({len(problems)} problems; the first: "
                          f"{problems[0]}); valid: a matrix.json as a run writes it "
                          f"(archmatrix report validate lists every problem)")
    return document


def load_matrix(path: Path) -> dict:
    """Read a matrix.json, refusing one of a schema version this harness does not know."""
    try:
        document = json.loads(read_input_text(path, "", MATRIX_LARGEST))
    except (InputError, json.JSONDecodeError) as error:
        raise SchemaError(f"{path} is not a readable matrix.json: {error}") from None
    version = document.get("schema_version") if isinstance(document, dict) else None
    if version != SCHEMA_VERSION:
        raise SchemaError(
            f"{path} has schema_version {version!r}; this harness reads schema_version {SCHEMA_VERSION} only"
        )
    return document


def speed_said(host: dict) -> str:
    """The host's TCG speed probe, one line: its factor on the TCG bounds and what it measured."""
    speed = host.get("tcg_speed") or {}
    factor = speed.get("factor")
    return (f"TCG bounds x{factor:g}; " if factor is not None else "") + str(speed.get("detail", ""))
