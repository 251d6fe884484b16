"""matrix.json: the support matrix as data, the source every other format follows.

The schema is harness/report/matrix.schema.json (documented in README.md).
A single run has one entry in `hosts`; `harness report merge` combines runs
of several hosts, and every cell names the host it ran on.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from harness.files import write_atomically
from harness.matrix import Cell
from harness.traits import honest_traits, trait_rows

SCHEMA_VERSION = 1
SCHEMA_FILE = Path(__file__).with_name("matrix.schema.json")


class SchemaError(ValueError):
    """A matrix.json this version of the harness cannot read."""


def matrix_document(cells: list[Cell], host: dict, started_at: str, duration_s: float, complete: bool) -> dict:
    hostname = host.get("hostname", "")
    host = dict(host, started_at=started_at, duration_s=round(duration_s, 2), complete=complete)
    rows = [asdict(cell) | {"id": cell.id, "host": hostname} for cell in cells]
    # Each emulator's own version, as the running QEMU reported it (QMP query-version).
    host["emulator_versions"] = {
        cell.facts["emulator_resolved"] or cell.facts["emulator"]: cell.facts["qemu_version"]
        for cell in cells if cell.facts.get("qemu_version") and cell.facts.get("emulator")
    }
    host["traits"] = trait_rows(host.get("guest_arches", []), rows)
    host["honest_traits"] = honest_traits(host["traits"])
    return {"schema_version": SCHEMA_VERSION, "complete": complete, "hosts": [host], "cells": rows}


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


def load_matrix(path: Path) -> dict:
    """Read a matrix.json, refusing one of a schema version this harness does not know."""
    try:
        document = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise SchemaError(f"{path} is not a readable matrix.json: {error}") from None
    version = document.get("schema_version") if isinstance(document, dict) else None
    if version != SCHEMA_VERSION:
        raise SchemaError(
            f"{path} has schema_version {version!r}; this harness reads schema_version {SCHEMA_VERSION} only"
        )
    return document
