"""matrix.md: archs as rows, accelerators as columns, reasons as footnotes."""

from __future__ import annotations

from pathlib import Path

from harness.arches import ACCELERATORS
from harness.files import write_atomically

MARKS = {"pass": "✅ pass", "fail": "❌ fail", "unsupported": "➖ unsupported", "error": "⚠️ error"}


def _cell_text(cell: dict, footnotes: list[str]) -> str:
    text = MARKS.get(cell["status"], cell["status"])
    boot = cell["facts"].get("login_s")
    if cell["status"] == "pass" and boot is not None:
        text += f" {boot:.1f} s"
    if cell["reason"]:
        footnotes.append(cell["reason"])
        text += f" [{len(footnotes)}]"
    return text


def matrix_markdown(document: dict) -> str:
    by_arch: dict[str, dict[str, dict]] = {}
    for cell in document["cells"]:
        by_arch.setdefault(cell["arch"], {})[cell["accel"]] = cell
    accels = [a for a in ACCELERATORS if any(a in row for row in by_arch.values())]
    footnotes: list[str] = []
    host = document["host"]
    lines = [
        f"# Support matrix: {host.get('hostname', 'host')} ({host.get('arch', '?')})",
        "",
        f"Run started {document['started_at']}, {document['duration_s']} s"
        + ("" if document["complete"] else " — **incomplete run**"),
        f"KVM: {(host.get('kvm') or {}).get('status', 'not probed')}",
        "",
        "| guest arch | " + " | ".join(accels) + " |",
        "|---|" + "---|" * len(accels),
    ]
    for arch, row in by_arch.items():
        cells = [_cell_text(row[a], footnotes) if a in row else "" for a in accels]
        lines.append(f"| {arch} | " + " | ".join(cells) + " |")
    if footnotes:
        lines.append("")
        lines += [f"[{number}]: {' '.join(note.split())}" for number, note in enumerate(footnotes, start=1)]
    return "\n".join(lines) + "\n"


def write_markdown(document: dict, path: Path) -> Path:
    write_atomically(path, matrix_markdown(document))
    return path
