"""matrix.json: the support matrix as data (schema documented in README.md)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from harness.files import write_atomically
from harness.matrix import Cell

SCHEMA_VERSION = 1


def matrix_document(cells: list[Cell], host: dict, started_at: str, duration_s: float, complete: bool) -> dict:
    return {
        "schema_version": SCHEMA_VERSION,
        "complete": complete,
        "started_at": started_at,
        "duration_s": round(duration_s, 2),
        "host": host,
        "cells": [asdict(cell) | {"id": cell.id} for cell in cells],
    }


def write_json(document: dict, path: Path) -> Path:
    write_atomically(path, json.dumps(document, indent=2, sort_keys=True) + "\n")
    return path
