"""matrix.html: one self-contained page (no scripts, no network) to publish the matrix.

Every value is escaped (`_e`: guest text's control characters shown, as in every report); the boot-time chart
is inline SVG.
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape
from pathlib import Path
from urllib.parse import quote

from archmatrix.core.arches import ACCELERATORS
from archmatrix.core.text import xml_text
from archmatrix.files import write_atomically
from archmatrix.report.console_logs import ConsoleLogRefused, excerpt
from archmatrix.report.json_report import column_name, host_key, overview_grid, speed_said

EXCERPT_LINES = 40
COLORS = {"pass": "#1a7f37", "fail": "#cf222e", "inconclusive": "#bc4c00", "unsupported": "#6e7781",
          "error": "#9a6700"}
STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#1f2328;max-width:80rem}
table{border-collapse:collapse;margin:1rem 0}td,th{border:1px solid #d0d7de;padding:.35rem .6rem;text-align:left;
vertical-align:top}th{background:#f6f8fa}.cell{font-weight:600}.reason{font-size:.8rem;color:#57606a;max-width:28rem}
pre{background:#f6f8fa;padding:.6rem;overflow:auto;font-size:.75rem;max-height:24rem}
.refused{font-size:.8rem;color:#9a6700}.pass{color:#1a7f37}.fail{color:#cf222e}.unsupported{color:#6e7781}.error{color:#9a6700}
.inconclusive{color:#bc4c00}
"""


def _e(value) -> str:
    """Any value as HTML text or an attribute's value (quotes escaped too), controls shown, never raw."""
    return escape(xml_text("" if value is None else value), quote=True)


def _lab_line(host: dict) -> str | None:
    if "lab_arch" not in host:
        return None
    return (f"{host['lab_arch']} under this machine's TCG: {host.get('lab_machine')}, CPU {host.get('lab_cpu')}, "
            f"{host.get('lab_vcpus')} vCPUs, {host.get('lab_memory_mib')} MiB, /dev/kvm {host.get('lab_dev_kvm')}, "
            f"libvirtd ready {host.get('lab_ready_s')} s after start; image {host.get('lab_image')}")


def _facts_table(host: dict) -> str:
    kvm = host.get("kvm") or {}
    rows = [
        ("host", f"{host['hostname']} ({host['arch']}), {host.get('kind') or 'libvirt'} host"),
        ("CPU", host.get("cpu_model")),
        ("kernel", host.get("kernel")), ("distribution", host.get("distribution")),
        ("libvirt", f"{host.get('libvirt_version')} at {host.get('libvirt_uri')}"),
        ("QEMU (libvirt's view)", host.get("hypervisor_version")),
        ("container", host.get("container_image")),
        ("lab host", _lab_line(host)),
        ("emulators", "; ".join(f"{path}: {version}" for path, version in host.get("emulator_versions", {}).items())),
        ("KVM", f"{kvm.get('status', 'not probed')}: {kvm.get('reason', '')}"),
        ("TCG speed", speed_said(host) if host.get("tcg_speed") else None),
        ("run", f"{host['started_at']}, {host['duration_s']} s" + ("" if host["complete"] else " (incomplete)")),
        ("traits it can honestly claim", ", ".join(host.get("honest_traits", [])) or "none"),
        ("also listed, not run", ", ".join(host.get("arches_not_run", [])) or None),
        ("listed, unknown to the catalog", ", ".join(host.get("arches_unknown", [])) or None),
    ]
    body = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows if v is not None)
    return f'<table class="host">{body}</table>'


def _matrix_table(cells: list[dict]) -> str:
    by_arch: dict[str, dict[tuple[str, bool], dict]] = {}
    for cell in cells:
        by_arch.setdefault(cell["arch"], {})[(cell["accel"], cell.get("nova", False))] = cell
    columns = [(a, n) for n in (False, True) for a in ACCELERATORS
               if not n or any((a, n) in row for row in by_arch.values())]
    head = "".join(f"<th>{_e(column_name(a, n))}</th>" for a, n in columns)

    def td(cell: dict) -> str:
        checks = " ".join(f'<span class="{_e(v["outcome"])}">{_e(k)}</span>' for k, v in cell["checks"].items())
        return (f'<td id="cell-{_e(cell["host"])}-{_e(cell["id"])}" data-status="{_e(cell["status"])}">'
                f'{_status(cell)}<br><small>{checks}</small><div class="reason">{_e(cell["reason"])}</div></td>')

    return f'<table class="matrix"><tr><th>guest arch</th>{head}</tr>{_grid_rows(by_arch, columns, td)}</table>'


def _grid_rows(by_arch: dict[str, dict], columns: list, td: Callable[[dict], str]) -> str:
    """A row per arch: each column's cell as `td` writes it, an empty <td> where the column has none."""
    return "".join(f"<tr><th>{_e(arch)}</th>"
                   + "".join("<td></td>" if row.get(column) is None else td(row[column]) for column in columns)
                   + "</tr>" for arch, row in by_arch.items())


def _status(cell: dict) -> str:
    """The cell's status, with its boot's time when it passed."""
    boot = cell["facts"].get("login_s")
    timing = f" {boot:.1f} s" if cell["status"] == "pass" and boot is not None else ""
    return f'<span class="cell {_e(cell["status"])}">{_e(cell["status"])}{timing}</span>'


def _traits_table(host: dict) -> str:
    rows = []
    for row in host.get("traits", []):
        flag = "advertised by Nova (TCG), but no guest booted here" if row["flagged"] else ""
        rows.append(
            f"<tr><td>{_e(row['arch'])}</td><td>{_e(row['trait'] or 'none in os-traits')}</td>"
            f"<td>{'yes' if row['advertised_by_nova_tcg'] else 'no'}</td><td>{'yes' if row['proved'] else 'no'}</td>"
            f"<td>{_e(row['runs_with'])}</td><td class=\"{'fail' if row['flagged'] else ''}\">{_e(flag)}</td></tr>"
        )
    head = ("<tr><th>guest arch</th><th>trait</th><th>Nova would advertise</th><th>proved here</th>"
            "<th>runs with</th><th>flag</th></tr>")
    return f'<table class="traits">{head}{"".join(rows)}</table>'


def _nova_table(host: dict, cells: list[dict]) -> str:
    """The Nova cells: where each ended, what Nova's domain chose, the trait the scheduler would require."""
    nova_cells = [cell for cell in cells if cell.get("nova") and cell["facts"].get("nova")]
    if not nova_cells:
        return ""
    nova = host.get("nova") or {}
    traits = nova.get("traits", {})
    rows = "".join(
        f'<tr><td>{_e(cell["id"])}</td><td>{_e(facts.get("ended", ""))}: {_e(facts.get("detail", ""))}'
        f'{_e(" (" + facts["remedy"] + ")" if facts.get("remedy") else "")}</td>'
        f'<td>{_e(facts.get("choices") or "none: Nova refused")}</td>'
        f'<td>{_e(", ".join(facts.get("required_traits", [])) or "no trait")}</td></tr>'
        for cell in nova_cells for facts in [cell["facts"]["nova"]])
    return (f'<h3>Nova\'s own domains</h3><p>Nova {_e(nova.get("version", "?"))}; its traits here: virt_type qemu '
            f'{_e(", ".join(traits.get("qemu", [])) or "none")}, kvm {_e(", ".join(traits.get("kvm", [])) or "none")}'
            f'</p><table class="nova"><tr><th>cell</th><th>ended</th><th>Nova\'s choices</th>'
            f'<th>the prefilter requires</th></tr>{rows}</table>')


def _chart(cells: list[dict]) -> str:
    timed = [c for c in cells if c["facts"].get("login_s") is not None and c["status"] == "pass"]
    if not timed:
        return "<p>No cell booted, so there are no boot times to chart.</p>"
    longest = max(c["facts"]["login_s"] for c in timed)
    bar_height, label_width, width = 22, 150, 460
    bars = []
    for index, cell in enumerate(timed):
        seconds = cell["facts"]["login_s"]
        y = index * bar_height
        length = max(2, int(width * seconds / longest))
        bars.append(
            f'<text x="0" y="{y + 15}" font-size="12">{_e(cell["id"])}</text>'
            f'<rect x="{label_width}" y="{y + 3}" width="{length}" height="{bar_height - 6}" '
            f'fill="{COLORS["pass"] if cell["accel"] == "tcg" else "#0969da"}"><title>{_e(cell["id"])}: '
            f'{seconds:.2f} s</title></rect>'
            f'<text x="{label_width + length + 6}" y="{y + 15}" font-size="12">{seconds:.2f} s</text>'
        )
    height = bar_height * len(timed)
    return (f'<svg role="img" aria-label="boot time to login prompt per cell" class="chart" '
            f'width="{label_width + width + 70}" height="{height}" xmlns="http://www.w3.org/2000/svg">'
            f'{"".join(bars)}</svg>')


def _excerpts(cells: list[dict], report_dir: Path) -> str:
    """Each cell's console log, its last lines, read from inside the report's directory only."""
    parts = []
    for cell in cells:
        log = cell["facts"].get("console_log")
        refused = cell["facts"].get("console_log_refused")
        if log is not None:
            try:
                lines = excerpt(report_dir, log, EXCERPT_LINES)
            except ConsoleLogRefused as error:
                refused = str(error)
            else:
                # A relative link, whatever the name: "javascript:..." is a file name here, not a scheme.
                parts.append(f'<details><summary>{_e(cell["host"])} {_e(cell["id"])}: last {len(lines)} console '
                             f'lines (<a href="./{_e(quote(log))}">{_e(log)}</a>)</summary>'
                             f'<pre>{_e(chr(10).join(lines))}</pre></details>')
                continue
        if refused:
            parts.append(f'<p class="refused">{_e(cell["host"])} {_e(cell["id"])}: console log not shown: '
                         f'{_e(refused)}</p>')
    return "".join(parts) or "<p>No console logs.</p>"


def _overview(document: dict) -> str:
    """Every host side by side: arches as rows, (host, accelerator, Nova's domain or not) as columns."""
    columns, by_arch = overview_grid(document)
    versions = {host_key(h): f"libvirt {h.get('libvirt_version', '?')}, QEMU {h.get('hypervisor_version', '?')}"
                for h in document["hosts"]}
    head = "".join(f"<th>{_e(h)} {_e(column_name(a, n))}<br><small>{_e(versions[h])}</small></th>"
                   for h, a, n in columns)

    def td(cell: dict) -> str:
        machine = cell["facts"].get("machine_canonical") or ""
        return (f'<td data-overview="{_e(cell["host"])}-{_e(cell["id"])}" data-status="{_e(cell["status"])}">'
                f'{_status(cell)}<br><small>{_e(machine)}</small></td>')

    return (f'<h2>All hosts</h2><table class="overview"><tr><th>guest arch</th>{head}</tr>'
            f'{_grid_rows(by_arch, columns, td)}</table>')


def matrix_html(document: dict, report_dir: Path) -> str:
    sections = [_overview(document)] if len(document["hosts"]) > 1 else []
    for host in document["hosts"]:
        cells = [c for c in document["cells"] if c["host"] == host_key(host)]
        sections.append(
            f"<h2>{_e(host_key(host))}: {_e(host['hostname'])}</h2>{_facts_table(host)}"
            f"<h3>Support matrix</h3>{_matrix_table(cells)}"
            f"<h3>Boot time to the login prompt</h3>{_chart(cells)}"
            f"<h3>COMPUTE_ARCH traits</h3>{_traits_table(host)}{_nova_table(host, cells)}"
            f"<h3>Console logs</h3>{_excerpts(cells, report_dir)}"
        )
    banner = "" if document["complete"] else (
        "<p><strong>Incomplete run</strong>: interrupted before every cell finished.</p>")
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Support matrix</title>'
            f'<style>{STYLE}</style></head><body><h1>archmatrix: support matrix</h1>{banner}'
            f'{"".join(sections)}</body></html>\n')


def write_html(document: dict, path: Path) -> Path:
    write_atomically(path, matrix_html(document, path.parent))
    return path
