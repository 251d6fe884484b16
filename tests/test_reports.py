"""Report formats, diff and merge, on a matrix.json recorded from a real run on this machine."""

import copy
import json
import os
import re
import resource
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest
from junit2htmlreport import parser as junit2html
from junitparser import JUnitXml

from archmatrix.cli import main as cli
from archmatrix.core.matrix import Cell
from archmatrix.report import compare
from archmatrix.report.html import matrix_html
from archmatrix.report.json_report import SchemaError, load_matrix, schema_problems, write_json
from archmatrix.report.junit import junit_xml, merge_junit, write_junit
from archmatrix.report.markdown import matrix_markdown
from archmatrix.run.reports import _with_copied_console
from tests.helpers import FIXTURES

RECORDED = FIXTURES / "reports" / "matrix-x86_64-debian12.json"


@pytest.fixture
def recorded():
    return json.loads(RECORDED.read_text())


def cell(document, cell_id):
    return next(c for c in document["cells"] if c["id"] == cell_id)


def test_recorded_real_run_validates_against_the_schema(recorded):
    assert schema_problems(recorded) == []


def test_schema_catches_a_broken_document(recorded):
    cell(recorded, "aarch64-tcg")["status"] = "passed"
    recorded["hosts"][0]["libvirt_uri"] = "qemu+tcp://alice:pw@10.0.0.1/system"
    problems = "\n".join(schema_problems(recorded))
    assert "'passed' is not one of" in problems and "libvirt_uri" in problems


def test_traits_separate_advertised_from_proved(recorded):
    traits = {row["arch"]: row for row in recorded["hosts"][0]["traits"]}
    assert traits["aarch64"]["trait"] == "COMPUTE_ARCH_AARCH64" and traits["aarch64"]["proved"]
    assert traits["aarch64"]["runs_with"] == "tcg only" and traits["x86_64"]["runs_with"] == "tcg only"
    # libvirt offers riscv64 here, so Nova would advertise it; nothing proved it boots.
    assert traits["riscv64"]["advertised_by_nova_tcg"] and traits["riscv64"]["flagged"]
    assert "COMPUTE_ARCH_RISCV64" not in recorded["hosts"][0]["honest_traits"]


def test_junit_parses_with_junitparser_and_junit2html(recorded, tmp_path):
    path = write_junit(recorded, tmp_path / "junit.xml")
    parsed = JUnitXml.fromfile(str(path))
    suites = {suite.name: suite for suite in parsed}
    aarch64 = suites[f"{recorded['hosts'][0]['hostname']}/aarch64"]
    assert aarch64.tests == 10 and aarch64.skipped == 5 and aarch64.failures == 0
    case = next(c for c in aarch64 if c.name == "binary[aarch64-tcg]")
    assert case.is_passed
    props = {p.get("name"): p.get("value") for p in ET.fromstring(case.tostring()).iter("property")}
    assert props["emulator"] == "/usr/bin/qemu-system-aarch64" and props["machine_canonical"] == "virt-7.2"
    # A second consumer, the one CI jobs use to render JUnit as a page.
    report = junit2html.Junit(str(path))
    assert sum(len(suite.all()) for suite in report.suites) == sum(len(c["checks"]) for c in recorded["cells"])
    assert sum(len(suite.skipped()) for suite in report.suites) == len(
        [1 for c in recorded["cells"] for v in c["checks"].values() if v["outcome"] == "unsupported"])
    assert "binary[aarch64-tcg]" in report.html()


def test_junit_marks_failures(recorded):
    cell(recorded, "s390x-tcg")["checks"]["console"] = {"outcome": "fail", "detail": "consoles: none seen"}
    suite = next(s for s in junit_xml(recorded) if s.name.endswith("/s390x"))
    assert suite.failures == 1


def test_merge_junit_of_two_runs(recorded, tmp_path):
    other = copy.deepcopy(recorded)
    for host in other["hosts"]:
        host["hostname"] = "second-host"
    for c in other["cells"]:
        c["host"] = "second-host"
    merged = merge_junit([write_junit(recorded, tmp_path / "a.xml"), write_junit(other, tmp_path / "b.xml")],
                         tmp_path / "merged.xml")
    assert JUnitXml.fromfile(str(merged)).tests == 2 * sum(len(c["checks"]) for c in recorded["cells"])


def test_markdown_table(recorded):
    text = matrix_markdown(recorded)
    assert "| guest arch | tcg | kvm | trait |" in text
    assert "| aarch64 | ✅ pass" in text and "COMPUTE_ARCH_AARCH64 |" in text
    assert "⚠ advertised, not proven" not in text.split("| aarch64 |")[1].splitlines()[0]
    assert "Traits this host can honestly claim: COMPUTE_ARCH_AARCH64" in text


def test_html_escapes_what_it_shows(recorded, tmp_path):
    cell(recorded, "aarch64-tcg")["reason"] = "<script>alert(1)</script>"
    page = matrix_html(recorded, tmp_path)
    assert "<script>" not in page and "&lt;script&gt;" in page


def test_diff_finds_a_planted_regression(recorded, tmp_path):
    regressed = copy.deepcopy(recorded)
    cell(regressed, "mipsel-tcg")["status"] = "fail"
    cell(regressed, "mipsel-tcg")["reason"] = "no banner: timeout after 120 s"
    cell(regressed, "aarch64-tcg")["facts"]["login_s"] *= 3
    cell(regressed, "s390x-tcg")["facts"]["qemu_version"] = "8.0.0"
    kinds = {(c.cell.split("/")[1], c.kind) for c in compare.diff(recorded, regressed)}
    assert {("mipsel-tcg", "regression"), ("aarch64-tcg", "slower"), ("s390x-tcg", "changed")} <= kinds
    old, new = write_json(recorded, tmp_path / "old.json"), write_json(regressed, tmp_path / "new.json")
    assert cli.main(["report", "diff", str(old), str(new)]) == 1
    assert cli.main(["report", "diff", str(old), str(old)]) == 0


def test_diff_refuses_an_unknown_schema_version(recorded, tmp_path, capsys):
    recorded["schema_version"] = 99
    path = write_json(recorded, tmp_path / "future.json")
    with pytest.raises(SchemaError, match="schema_version 99; this harness reads schema_version 1 only"):
        load_matrix(path)
    assert cli.main(["report", "diff", str(path), str(RECORDED)]) == 2
    assert "schema_version 99" in capsys.readouterr().err


def test_merge_gives_one_matrix_with_a_host_column(recorded, tmp_path):
    other = copy.deepcopy(recorded)
    other["hosts"][0]["hostname"] = "second-host"
    for c in other["cells"]:
        c["host"] = "second-host"
    a, b = write_json(recorded, tmp_path / "a.json"), write_json(other, tmp_path / "b.json")
    assert cli.main(["report", "merge", str(a), str(b), "--output-dir", str(tmp_path / "out")]) == 0
    merged = load_matrix(tmp_path / "out" / "matrix.json")
    assert schema_problems(merged) == []
    assert {c["host"] for c in merged["cells"]} == {recorded["hosts"][0]["hostname"], "second-host"}
    assert len(merged["cells"]) == 2 * len(recorded["cells"])
    assert (tmp_path / "out" / "matrix.html").is_file() and (tmp_path / "out" / "junit.xml").is_file()
    assert "## second-host" in (tmp_path / "out" / "matrix.md").read_text()


def test_a_lab_host_stands_next_to_this_machine_with_its_kvm_and_traits(tmp_path):
    # Recorded from a real run: this machine (KVM claimed but broken) and an x86_64 lab host (KVM works).
    document = load_matrix(FIXTURES / "reports" / "matrix-x86_64-with-x86_64-lab.json")
    assert schema_problems(document) == []
    here, lab = document["hosts"]
    assert here["kvm"]["status"] == "claimed-but-broken" and lab["kvm"]["status"] == "works"
    markdown = matrix_markdown(document)
    assert f"| trait | {here['label']} | lab_x86_64 |" in markdown
    assert "| COMPUTE_ARCH_X86_64 | tcg only | kvm |" in markdown
    html = matrix_html(document, tmp_path)
    assert "TCG: q35, CPU qemu64+svm, 2 vCPUs, 1536 MiB, /dev/kvm present" in html


def run_directory(directory, document, host, note=""):
    """A run's report directory as `archmatrix report merge` finds it: matrix.json, and console logs beside it."""
    document = copy.deepcopy(document)
    document["hosts"][0]["hostname"] = host
    for c in document["cells"]:
        c["host"] = host
        log = c["facts"].get("console_log")
        if log:
            (directory / log).parent.mkdir(parents=True, exist_ok=True)
            recorded_log = (FIXTURES / log).read_bytes()  # tests/fixtures/consoles/<cell>.log, from real boots
            (directory / log).write_bytes(recorded_log + note.encode())
    return write_json(document, directory / "matrix.json")


def excerpt_of(page, host, cell_id):
    """The console excerpt matrix.html shows for a cell, or None."""
    found = re.search(rf"<summary>{re.escape(host)} {cell_id}: last \d+ console lines.*?<pre>(.*?)</pre>", page, re.S)
    return found.group(1) if found else None


def test_an_honest_merge_of_runs_in_two_directories_keeps_every_hosts_console_excerpts(recorded, tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = run_directory(tmp_path / "a", recorded, "vm", "run a ended here\n")
    b = run_directory(tmp_path / "b", recorded, "second-host", "run b ended here\n")
    assert cli.main(["report", "merge", str(a), str(b), "--output-dir", str(tmp_path / "out")]) == 0
    page = (tmp_path / "out" / "matrix.html").read_text()
    for host, last in (("vm", "run a ended here"), ("second-host", "run b ended here")):
        for c in recorded["cells"]:
            if c["facts"].get("console_log"):
                excerpt = excerpt_of(page, host, c["id"])
                assert excerpt is not None, f"{host} {c['id']}: no console excerpt"
                assert excerpt.endswith(last)
    merged = load_matrix(tmp_path / "out" / "matrix.json")
    assert schema_problems(merged) == []
    for c in merged["cells"]:  # the merged report carries its own copies, named by host
        if "console_log" in c["facts"]:
            assert c["facts"]["console_log"] == f"consoles/{c['host']}/{c['id']}.log"
            assert (tmp_path / "out" / c["facts"]["console_log"]).is_file()


SECRET = "SECRET-OUTSIDE-THE-REPORT"


@pytest.fixture
def hostile_run(recorded, tmp_path):
    """A run directory whose matrix.json names console logs outside it, through it, and that never end."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.log").write_text(f"{SECRET}\n")
    run = tmp_path / "run"
    (run / "consoles").mkdir(parents=True)
    (run / "consoles" / "link.log").symlink_to(outside / "secret.log")
    (run / "consoles" / "zero.log").symlink_to("/dev/zero")
    os.symlink(outside, run / "consoles" / "through")
    os.mkfifo(run / "consoles" / "fifo.log")
    names = {"aarch64-tcg": str(outside / "secret.log"), "ppc64le-tcg": "../outside/secret.log",
             "s390x-tcg": "consoles/link.log", "mips64el-tcg": "consoles/through/secret.log",
             "mipsel-tcg": "consoles/zero.log", "x86_64-tcg": "/dev/zero", "aarch64-kvm": "consoles/fifo.log",
             "ppc64le-kvm": "consoles/../../outside/secret.log"}
    for c in recorded["cells"]:
        if c["id"] in names:
            c["facts"]["console_log"] = names[c["id"]]
    write_json(recorded, run / "matrix.json")
    return run, names


def bounded_merge(*arguments):
    """`archmatrix report merge` in its own process, bounded: a merge that reads without end fails, never hangs."""
    limit = 1 << 30
    return subprocess.run([sys.executable, "-m", "archmatrix.cli.main", "report", "merge", *map(str, arguments)],
                          capture_output=True, text=True, timeout=60,
                          preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (limit, limit)))


def test_a_hostile_matrix_json_makes_the_merge_read_nothing_outside_its_directory(hostile_run, tmp_path):
    run, names = hostile_run
    merged = bounded_merge(run / "matrix.json", "--output-dir", tmp_path / "out")
    assert merged.returncode == 0, merged.stdout + merged.stderr
    for path in (tmp_path / "out").rglob("*"):
        assert path.is_dir() or SECRET not in path.read_text(errors="replace"), path
    page = (tmp_path / "out" / "matrix.html").read_text()
    for cell_id, name in names.items():
        assert excerpt_of(page, "vm", cell_id) is None
        note = re.search(rf'<p class="refused">vm {cell_id}: console log not shown: (.*?)</p>', page)
        assert note, f"{cell_id}: no visible note for {name!r}"
    for c in load_matrix(tmp_path / "out" / "matrix.json")["cells"]:
        assert "console_log" not in c["facts"] or c["id"] not in names


def test_the_console_copy_replaces_a_symlink_planted_at_its_target(recorded, tmp_path):
    (tmp_path / "a").mkdir()
    a = run_directory(tmp_path / "a", recorded, "vm")
    victim = tmp_path / "victim"
    victim.write_text("untouched\n")
    (tmp_path / "out" / "consoles" / "vm").mkdir(parents=True)
    (tmp_path / "out" / "consoles" / "vm" / "aarch64-tcg.log").symlink_to(victim)
    assert cli.main(["report", "merge", str(a), "--output-dir", str(tmp_path / "out")]) == 0
    assert victim.read_text() == "untouched\n"
    copied = tmp_path / "out" / "consoles" / "vm" / "aarch64-tcg.log"
    assert not copied.is_symlink()
    assert copied.read_bytes() == (tmp_path / "a" / "consoles" / "aarch64-tcg.log").read_bytes()


def test_a_runs_console_copy_replaces_a_symlink_planted_in_a_shared_report_directory(tmp_path):
    source = tmp_path / "run" / "aarch64-tcg" / "console.log"
    source.parent.mkdir(parents=True)
    source.write_bytes((FIXTURES / "consoles" / "aarch64-tcg.log").read_bytes())
    victim = tmp_path / "victim"
    victim.write_text("untouched\n")
    (tmp_path / "reports" / "consoles").mkdir(parents=True)
    (tmp_path / "reports" / "consoles" / "aarch64-tcg.log").symlink_to(victim)
    cell = Cell("vm", "aarch64", "tcg", "pass", "", {}, {"console_log": str(source)})
    copied = _with_copied_console(cell, tmp_path / "reports", 1 << 20, several_hosts=False)
    assert copied.facts["console_log"] == "consoles/aarch64-tcg.log"
    assert victim.read_text() == "untouched\n"
    target = tmp_path / "reports" / "consoles" / "aarch64-tcg.log"
    assert not target.is_symlink() and target.read_bytes() == source.read_bytes()


def test_matrix_html_shows_no_console_log_from_outside_its_directory(recorded, tmp_path):
    (tmp_path / "outside.log").write_text(f"{SECRET}\n")
    (tmp_path / "report").mkdir()
    cell(recorded, "aarch64-tcg")["facts"]["console_log"] = str(tmp_path / "outside.log")
    cell(recorded, "s390x-tcg")["facts"]["console_log"] = "../outside.log"
    page = matrix_html(recorded, tmp_path / "report")
    assert SECRET not in page
    assert "vm aarch64-tcg: console log not shown: " in page and "vm s390x-tcg: console log not shown: " in page


def _inconclusive(document):
    """The recorded aarch64 TCG cell as if its boot's bound had run out while the guest was still printing."""
    aarch64 = cell(document, "aarch64-tcg")
    detail = "inconclusive: no banner: timeout after 480 s; the guest was still printing when its 480 s bound ran out"
    for check in ("console", "boot", "ssh", "guest-arch", "network"):
        if check in aarch64["checks"]:
            aarch64["checks"][check] = {"outcome": "inconclusive", "detail": detail}
    aarch64.update(status="inconclusive", reason=detail)
    aarch64["facts"].update(login_s=None, last_output_s=479.5, boot_progress={
        "bound_s": 480.0, "window_s": 60.0, "console_bytes": 40000, "bytes_in_window": 900, "last_output_s": 479.5,
        "quiet_s": 0.5, "kernel_time_s": 166.2})
    document["hosts"][0]["tcg_speed"] = {"factor": 4.0, "payload": "x86_64", "seconds": 1.2, "reference_s": 0.3,
                                         "detail": "the x86_64 payload's loop ran 1.20 s under TCG"}
    return document


def test_an_inconclusive_cell_validates_and_every_report_shows_it_as_such(recorded, tmp_path):
    document = _inconclusive(recorded)
    assert schema_problems(document) == []
    suite = next(s for s in junit_xml(document) if s.name.endswith("/aarch64"))
    boot = next(case for case in suite if case.name == "boot[aarch64-tcg]")
    assert suite.failures == 0 and boot.result[0].type == "inconclusive"
    assert boot.result[0].message.startswith("inconclusive: no banner: timeout after 480 s")
    page = matrix_html(document, tmp_path)
    assert '<span class="cell inconclusive">inconclusive</span>' in page and ".inconclusive{color:" in page
    assert "TCG bounds x4; the x86_64 payload" in page
    assert "| aarch64 | ⏳ inconclusive [" in matrix_markdown(document)


def test_the_schema_holds_boot_progress_and_tcg_speed_to_their_types(recorded):
    document = _inconclusive(recorded)
    cell(document, "aarch64-tcg")["facts"]["boot_progress"]["bytes_in_window"] = "many"
    document["hosts"][0]["tcg_speed"]["factor"] = 0.5
    problems = "\n".join(schema_problems(document))
    assert "'many' is not of type 'integer'" in problems and "0.5 is less than the minimum of 1" in problems


def test_diff_counts_a_pass_that_became_inconclusive_as_a_regression_and_says_so(recorded):
    # No longer proven: a nightly diff must catch it, without calling it a failure.
    later = _inconclusive(copy.deepcopy(recorded))
    changes = {change.cell.split("/")[1]: change for change in compare.diff(recorded, later)}
    assert changes["aarch64-tcg"].kind == "regression" and changes["aarch64-tcg"].is_regression
    assert changes["aarch64-tcg"].detail.startswith("pass -> inconclusive: inconclusive: no banner: timeout after")
    assert compare.diff(later, recorded)[0].kind == "fixed"
