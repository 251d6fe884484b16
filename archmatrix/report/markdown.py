"""matrix.md: archs as rows, accelerators as columns, reasons as footnotes.

Every value from a run or a guest passes through markdown_text (`_m`): a pipe, a newline or markup in it
cannot break a table or add to the page.
"""

from __future__ import annotations

import re
from pathlib import Path

from archmatrix.core.arches import ACCELERATORS
from archmatrix.core.text import markdown_text as _m
from archmatrix.files import write_atomically
from archmatrix.report.json_report import column_name, host_key, overview_grid, speed_said

WHITESPACE = re.compile(r"[ \t\r\n]+")
MARKS = {"pass": "✅ pass", "fail": "❌ fail", "inconclusive": "⏳ inconclusive", "unsupported": "➖ unsupported",
         "error": "⚠️ error"}


def _cell_text(cell: dict, footnotes: list[str]) -> str:
    text = MARKS.get(cell["status"], _m(cell["status"]))
    boot = cell["facts"].get("login_s")
    if cell["status"] == "pass" and boot is not None:
        text += f" {boot:.1f} s"
    if cell["reason"]:
        footnotes.append(cell["reason"])
        text += f" [{len(footnotes)}]"
    return text


def matrix_markdown(document: dict) -> str:
    """One table per host: a single run has one, a merged matrix one per host."""
    footnotes: list[str] = []
    lines: list[str] = []
    if len(document["hosts"]) > 1:
        lines += _overview(document, footnotes)
    for host in document["hosts"]:
        cells = [c for c in document["cells"] if c["host"] == host_key(host)]
        lines += _host_section(host, cells, footnotes)
    if not document["complete"]:
        lines.insert(0, "**Incomplete run**: interrupted before every cell finished.\n")
    if footnotes:
        # Whitespace runs (newlines among them) as one space: a footnote is one line. Other controls are shown.
        lines += [f"[{number}]: {_m(WHITESPACE.sub(' ', note).strip())}"
                  for number, note in enumerate(footnotes, start=1)]
    return "\n".join(lines) + "\n"


def _overview(document: dict, footnotes: list[str]) -> list[str]:
    """Every host side by side: arches as rows, (host, accelerator) as columns."""
    columns, by_arch = overview_grid(document)
    lines = ["## All hosts", ""]
    for host in document["hosts"]:
        kvm = (host.get("kvm") or {}).get("status", "not probed")
        lines.append(f"- **{_m(host_key(host))}**: {_m(host.get('distribution') or host['hostname'])}, "
                     f"{_m(host['arch'])}, libvirt {_m(host.get('libvirt_version', '?'))}, "
                     f"QEMU {_m(host.get('hypervisor_version', '?'))}, KVM: {_m(kvm)}")
    lines += ["", "| guest arch | " + " | ".join(f"{_m(h)} {_m(column_name(a, n))}" for h, a, n in columns) + " |",
              "|---|" + "---|" * len(columns)]
    for arch, row in by_arch.items():
        marks = []
        for column in columns:
            cell = row.get(column)
            if cell is None:
                marks.append("")
                continue
            machine = cell["facts"].get("machine_canonical")
            marks.append(_cell_text(cell, footnotes) + (f" {_code(machine)}" if machine else ""))
        lines.append(f"| {_m(arch)} | " + " | ".join(marks) + " |")
    return lines + [""] + _traits_side_by_side(document["hosts"])


def _traits_side_by_side(hosts: list[dict]) -> list[str]:
    """Per trait, how each host proved it: with KVM, with TCG only, or not at all."""
    rows: dict[str, dict[str, str]] = {}
    for host in hosts:
        for trait in host.get("traits", []):
            if trait.get("trait"):
                rows.setdefault(trait["trait"], {})[host_key(host)] = trait["runs_with"]
    if not rows:
        return []
    labels = [host_key(host) for host in hosts]
    lines = ["| trait | " + " | ".join(_m(label) for label in labels) + " |", "|---|" + "---|" * len(labels)]
    for trait, by_host in sorted(rows.items()):
        lines.append(f"| {_m(trait)} | " + " | ".join(_m(by_host.get(label, "")) for label in labels) + " |")
    return lines + [""]


def _host_section(host: dict, cells: list[dict], footnotes: list[str]) -> list[str]:
    by_arch: dict[str, dict[tuple[str, bool], dict]] = {}
    for cell in cells:
        by_arch.setdefault(cell["arch"], {})[(cell["accel"], cell.get("nova", False))] = cell
    columns = [(a, n) for n in (False, True) for a in ACCELERATORS if any((a, n) in row for row in by_arch.values())]
    kvm = host.get("kvm") or {}
    lines = [
        f"## {_m(host_key(host))}: {_m(host['hostname'])} ({_m(host['arch'])})",
        "",
        f"{_m(host.get('distribution') or '')} · libvirt {_m(host.get('libvirt_version', '?'))} · "
        f"run {_m(host['started_at'])}, {_m(host['duration_s'])} s · KVM: {_m(kvm.get('status', 'not probed'))}"
        + (f" · TCG speed: {_m(speed_said(host))}" if host.get("tcg_speed") else ""),
        "",
        "| guest arch | " + " | ".join(_m(column_name(a, n)) for a, n in columns) + " | trait |",
        "|---|" + "---|" * len(columns) + "---|",
    ]
    traits = {row["arch"]: row for row in host.get("traits", [])}
    for arch, row in by_arch.items():
        marks = [_cell_text(row[column], footnotes) if column in row else "" for column in columns]
        trait = traits.get(arch, {})
        name = _m(trait.get("trait") or "none")
        if trait.get("flagged"):
            name += " ⚠ advertised, not proven"
        lines.append(f"| {_m(arch)} | " + " | ".join(marks) + f" | {name} |")
    honest = ", ".join(_m(trait) for trait in host.get("honest_traits", [])) or "none"
    lines += ["", f"Traits this host can honestly claim: {honest}"]
    lines += _nova_table(host, cells)
    lines += _checks_table(cells)
    lines += beyond_run_lines(host)
    return lines + [""]


def _nova_table(host: dict, cells: list[dict]) -> list[str]:
    """The Nova cells: where each ended, what Nova's domain chose, the trait the scheduler would require."""
    nova_cells = [cell for cell in cells if cell.get("nova") and cell["facts"].get("nova")]
    if not nova_cells:
        return []
    nova = host.get("nova") or {}
    lines = ["", f"Nova's own domains (Nova {_m(nova.get('version', '?'))}; its traits here: virt_type qemu "
                 f"{_m(', '.join(nova.get('traits', {}).get('qemu', [])) or 'none')}, kvm "
                 f"{_m(', '.join(nova.get('traits', {}).get('kvm', [])) or 'none')}):", "",
             "| cell | ended | Nova's choices | the prefilter requires |", "|---|---|---|---|"]
    for cell in nova_cells:
        facts = cell["facts"]["nova"]
        ended = facts.get("detail", "")[:200] + (f" ({facts['remedy']})" if facts.get("remedy") else "")
        lines.append(f"| {_m(cell['id'])} | {_m(facts.get('ended', ''))}: {_m(ended)} | "
                     f"{_m(facts.get('choices') or 'none: Nova refused')} | "
                     f"{_m(', '.join(facts.get('required_traits', [])) or 'no trait')} |")
    return lines


CHECK_MARKS = {"pass": "✅", "fail": "❌", "inconclusive": "⏳", "unsupported": "➖", "error": "⚠️"}


def _checks_table(cells: list[dict]) -> list[str]:
    """Every check of every cell, one column each: the built-in ones and any a user's scenario added."""
    names: list[str] = []
    for cell in cells:
        names += [name for name in cell["checks"] if name not in names]
    if not names:
        return []
    lines = ["", "| cell | " + " | ".join(_m(name) for name in names) + " |", "|---|" + "---|" * len(names)]
    for cell in cells:
        marks = [CHECK_MARKS.get(cell["checks"].get(name, {}).get("outcome", ""), "") for name in names]
        lines.append(f"| {_m(cell['id'])} | " + " | ".join(marks) + " |")
    return lines


def beyond_run_lines(host: dict) -> list[str]:
    """Every arch the host's libvirt lists is accounted for: judged above, not selected, or unknown."""
    lines = []
    if host.get("arches_not_run"):
        lines.append(f"Also listed by this host's libvirt, not run: {', '.join(map(_m, host['arches_not_run']))} "
                     f"(`--arch all` runs every one)")
    if host.get("arches_unknown"):
        lines.append(f"Listed by this host's libvirt, unknown to the harness's catalog: "
                     f"{', '.join(map(_m, host['arches_unknown']))}")
    return [""] + lines if lines else []


def _code(value: str) -> str:
    """A code span, where its text allows one (a backtick or a control character would end or break it)."""
    text, piped = _m(value), value.replace("|", "\\|")  # GitHub's tables take an escaped pipe in a code span too
    return f"`{piped}`" if text == piped else text


def write_markdown(document: dict, path: Path) -> Path:
    write_atomically(path, matrix_markdown(document))
    return path
