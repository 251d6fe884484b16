"""What guests print reaches the reports and the terminal: every report stays parseable, every table whole.

The observation is a real recorded boot (tests/fixtures/observations/aarch64-tcg.json) with what a hostile or
broken guest prints put where a guest's words go: its banner, its console tail, `uname -m` and /proc/cpuinfo
over SSH, wget's error output, and an SSH failure that quotes the console.
"""

import copy
import dataclasses
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import pytest
from junitparser import JUnitXml

from archmatrix.cli import main as cli
from archmatrix.core.checks import CHECKS, judge
from archmatrix.core.matrix import CheckRecord, aggregate
from archmatrix.plugin.reporter import MatrixReporter
from archmatrix.report.html import write_html
from archmatrix.report.json_report import matrix_document, schema_problems, write_json
from archmatrix.report.junit import write_junit
from archmatrix.report.markdown import write_markdown
from tests.helpers import recorded_observation
from tests.test_checks import changed, plan_for

# An ANSI colour and a screen clear, a terminal title (OSC ... BEL), NUL, other C0 controls, the C1 CSI, a lone
# surrogate (bytes decoded with errors="surrogateescape"), table pipes and newlines.
HOSTILE = ("\x1b[31mred\x1b[0m \x1b]0;pwned\x07 nul\x00 bs\x08 vt\x0b del\x7f csi\x9b2J surrogate\udcff <b>\"q' "
           "| a | b |\nnext")
CONTROLS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
SHOWN = ("\\x1b[31mred", "\\x1b]0;pwned\\x07", "nul\\x00", "\\x08", "\\x7f", "\\x9b2J", "surrogate\\udcff")


def hostile_observation():
    recorded = recorded_observation("aarch64-tcg")
    return changed(
        recorded,
        banner=dataclasses.replace(recorded.banner, arch="aarch64" + HOSTILE),
        console_tail=f"login: {HOSTILE}\n{HOSTILE}",
        guest_arch=dataclasses.replace(recorded.guest_arch, uname_m="aarch64" + HOSTILE, cpuinfo=HOSTILE),
        network=dataclasses.replace(recorded.network, status=1, seen_sha256="", stderr="wget: " + HOSTILE),
    )


def hostile_document():
    plan, seen = plan_for("aarch64"), hostile_observation()
    verdicts = {check: judge(check, plan, seen) for check in CHECKS}
    said = f"SSH to the guest failed; its console said:\n{HOSTILE}"
    ssh_failed = changed(seen, ssh=dataclasses.replace(seen.ssh, error=said))
    records = [CheckRecord(f"host{HOSTILE}", "aarch64", "tcg", check, "pass" if verdict.passed else "fail",
                           verdict.seen, {"machine_canonical": "virt|7.2", "login_s": 1.6})
               for check, verdict in verdicts.items()]
    records += [CheckRecord(f"host{HOSTILE}", "s390x", "tcg", check, "fail", judge(check, plan, ssh_failed).seen, {})
                for check in ("ssh", "network")]
    records += [dataclasses.replace(record, host="vm") for record in records]  # two hosts: an overview table too
    hosts = [{"label": label, "hostname": "vm", "arch": "x86_64", "guest_arches": ["aarch64", "s390x"],
              "libvirt_uri": "qemu:///system", "kvm": None} for label in (f"host{HOSTILE}", "vm")]
    return matrix_document(aggregate(records, [h["label"] for h in hosts]), hosts, "2026-12-06T10:00:00+00:00", 9.0,
                           True)


def test_the_hostile_text_reaches_the_verdicts_as_the_guest_printed_it():
    document = hostile_document()
    details = {c["id"]: {k: v["detail"] for k, v in c["checks"].items()} for c in document["cells"]}
    assert HOSTILE in details["aarch64-tcg"]["boot"] and HOSTILE in details["aarch64-tcg"]["network"]
    assert HOSTILE in details["s390x-tcg"]["ssh"]
    assert "\x1b[31mred" in details["aarch64-tcg"]["guest-arch"]  # /proc/cpuinfo's first lines, as printed
    assert schema_problems(document) == []


def test_junit_of_guest_text_parses_shows_the_escapes_and_merges(tmp_path):
    path = write_junit(hostile_document(), tmp_path / "junit.xml")
    root = ET.parse(path).getroot()
    text = ET.tostring(root, encoding="unicode")
    for shown in SHOWN:
        assert shown in text
    assert not CONTROLS.search(text)
    failures = [case for suite in JUnitXml.fromfile(str(path)) for case in suite if not case.is_passed]
    assert {case.name for case in failures} == {"boot[aarch64-tcg]", "guest-arch[aarch64-tcg]",
                                                "network[aarch64-tcg]", "ssh[s390x-tcg]", "network[s390x-tcg]"}
    assert all("\\x1b[31mred" in case.system_out for case in failures)
    assert cli.main(["report", "merge-junit", str(tmp_path / "all.xml"), str(path), str(path)]) == 0
    assert JUnitXml.fromfile(str(tmp_path / "all.xml")).tests == 2 * JUnitXml.fromfile(str(path)).tests


def test_merge_junit_names_a_file_it_cannot_parse(tmp_path, capsys):
    good = write_junit(hostile_document(), tmp_path / "good.xml")
    broken = tmp_path / "broken.xml"
    broken.write_text('<?xml version="1.0" encoding="utf-8"?>\n<testsuites><testsuite name="x">'
                      '<testcase name="boot"><failure message="\x1b[31m" /></testcase></testsuite></testsuites>\n')
    assert cli.main(["report", "merge-junit", str(tmp_path / "all.xml"), str(good), str(broken)]) == 2
    error = capsys.readouterr().err
    assert f"archmatrix: {broken} is not a JUnit XML file merge-junit can read: not well-formed" in error
    assert not (tmp_path / "all.xml").exists()


def cells_of_row(line):
    return re.split(r"(?<!\\)\|", line)


def test_markdown_tables_keep_their_columns_and_show_the_escapes(tmp_path):
    text = write_markdown(hostile_document(), tmp_path / "matrix.md").read_text()
    assert not CONTROLS.search(text)
    lines = text.splitlines()
    tables = [[line for line in block.splitlines() if line.startswith("|")] for block in text.split("\n\n")]
    for table in (t for t in tables if t):
        assert len({len(cells_of_row(line)) for line in table}) == 1, table
    footnotes = [line for line in lines if re.match(r"\[\d+\]: ", line)]
    assert any("\\\\x1b\\[31mred" in line and "\\| a \\| b \\|" in line for line in footnotes), footnotes
    assert "virt\\|7.2" in text
    assert not any(line.startswith("next") for line in lines)  # no guest line on a line of its own
    assert "<br>" not in text.replace("<br>next", "")  # a newline in a cell is a line break in it, nothing more


class CellIds(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids = []

    def handle_starttag(self, tag, attrs):
        self.ids += [value for name, value in attrs if tag == "td" and name == "id"]


def test_html_shows_the_escapes_and_carries_no_control_character(tmp_path):
    document = hostile_document()
    write_json(document, tmp_path / "matrix.json")
    page = write_html(document, tmp_path / "matrix.html").read_text()
    assert not CONTROLS.search(page)
    assert "\\x1b[31mred" in page and "surrogate\\udcff" in page and "<b>" not in page
    parser = CellIds()
    parser.feed(page)
    from archmatrix.core.text import xml_text  # here: the offline tests of the code before it still run

    assert f"cell-host{xml_text(HOSTILE)}-aarch64-tcg" in parser.ids  # the attribute holds the whole label


def test_the_failure_explanation_pytest_prints_shows_the_escapes():
    plan, seen = plan_for("aarch64"), hostile_observation()
    explained = judge("boot", plan, seen).explain(plan, seen)
    assert not CONTROLS.search(explained)
    assert "\\x1b[31mred" in explained and "nul\\x00" in explained
    assert "    | login: \\x1b[31mred" in explained and "    | next" in explained


class Terminal:
    def __init__(self):
        self.lines = []

    def section(self, title):
        self.lines.append(f"== {title}")

    def write_line(self, line, **markup):
        self.lines.append(line)


def test_the_terminal_summary_shows_the_escapes(tmp_path):
    from archmatrix.core.matrix import Cell

    reporter = MatrixReporter.__new__(MatrixReporter)
    reporter.leaks, reporter.written = [], []
    reporter.cells = [Cell(**{k: v for k, v in cell.items() if k != "id"}) for cell in hostile_document()["cells"]]
    terminal = Terminal()
    reporter.pytest_terminal_summary(terminal)
    shown = "\n".join(terminal.lines)
    assert not CONTROLS.search(shown)
    assert "host\\x1b[31mred" in shown and "nul\\x00" in shown


@pytest.mark.parametrize("check", ["boot", "guest-arch", "network"])
def test_a_verdicts_own_record_keeps_the_guest_text_as_printed(check):
    # The matrix.json keeps what the guest printed (JSON escapes it): only what a reader sees is made safe.
    verdict = judge(check, plan_for("aarch64"), hostile_observation())
    assert "\x1b[31mred\x1b[0m" in dataclasses.asdict(verdict)["seen"]


def test_report_diff_and_validate_print_the_escapes(tmp_path, capsys):
    old = hostile_document()
    new = copy.deepcopy(old)
    for c in old["cells"]:
        c["status"], c["reason"] = "pass", ""
    new["cells"][0]["facts"]["qemu_version"] = "9.0" + HOSTILE
    old["cells"][0]["facts"]["qemu_version"] = "7.2"
    assert cli.main(["report", "diff", str(write_json(old, tmp_path / "old.json")),
                     str(write_json(new, tmp_path / "new.json"))]) == 1
    new["cells"][1]["status"] = HOSTILE  # not in the schema: diff refuses the file, validate quotes it
    assert cli.main(["report", "validate", str(write_json(new, tmp_path / "new.json"))]) == 1
    printed = capsys.readouterr()
    shown = printed.out + printed.err
    assert not CONTROLS.search(shown)
    assert "pass -> fail: arch=aarch64\\x1b[31mred" in shown and "-> 9.0\\x1b[31mred" in shown
