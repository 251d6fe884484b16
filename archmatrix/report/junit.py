"""junit.xml: one suite per (host, arch), one testcase per check, the cell's facts as properties.

Built from matrix.json with junitparser, which also merges the files of
several runs or hosts into one (`archmatrix report merge-junit`). Every string
passes through xml_text: a guest's ESC or NUL would make the file unparseable.
"""

from __future__ import annotations

from pathlib import Path

from junitparser import Error, Failure, JUnitXml, JUnitXmlError, Properties, Property, Skipped, TestCase, TestSuite

from archmatrix.core.text import xml_text as _x
from archmatrix.files import write_atomically
from archmatrix.inputs import InputError
from archmatrix.inputs.files import read_input
from archmatrix.report.json_report import host_key


class JUnitError(InputError):
    """A JUnit file that cannot be read; the message names it."""


CELL_FACTS = ("emulator", "emulator_resolved", "machine", "machine_canonical", "cpu_model", "kernel_console",
              "login_s", "qemu_version", "console_log")


def _case(cell: dict, check: str, verdict: dict) -> TestCase:
    case = TestCase(name=_x(f"{check}[{cell['id']}]"), classname=_x(f"{cell['host']}.{cell['id']}"))
    outcome, detail = verdict["outcome"], verdict["detail"]
    if outcome == "fail":
        case.result = [Failure(message=_x(detail[:300]))]
    elif outcome == "error":
        case.result = [Error(message=_x(detail[:300]))]
    elif outcome == "unsupported":
        case.result = [Skipped(message=_x(detail[:300]))]
    elif outcome == "inconclusive":  # neither shown to run nor shown not to: the guest was still booting at its bound
        case.result = [Skipped(message=_x(detail[:300]), type_="inconclusive")]
    if outcome != "pass":
        case.system_out = _x(detail)
    properties = Properties()
    for key in CELL_FACTS:
        value = cell["facts"].get(key)
        if value is not None:
            properties.add_property(Property(key, _x(value)))
    image = cell["facts"].get("image") or {}
    if image.get("kernel_sha256"):
        properties.add_property(Property("image_kernel_sha256", _x(image["kernel_sha256"])))
    properties.add_property(Property("cell_status", _x(cell["status"])))
    case.append(properties)
    return case


def junit_xml(document: dict) -> JUnitXml:
    xml = JUnitXml(name="archmatrix")
    hosts = {host_key(host): host for host in document["hosts"]}
    suites: dict[tuple[str, str], TestSuite] = {}
    for cell in document["cells"]:
        key = (cell["host"], cell["arch"])
        if key not in suites:
            suite = TestSuite(_x(f"{cell['host']}/{cell['arch']}"))
            host = hosts.get(cell["host"], {})
            suite.hostname = _x(host.get("hostname", cell["host"]))
            if host.get("started_at"):
                suite.timestamp = _x(host["started_at"])
            for name in ("arch", "libvirt_version", "libvirt_uri", "kernel", "distribution"):
                if host.get(name):
                    suite.add_property(f"host_{name}", _x(host[name]))
            suite.add_property("kvm", _x((host.get("kvm") or {}).get("status", "not probed")))
            suites[key] = suite
        for check, verdict in cell["checks"].items():
            suites[key].add_testcase(_case(cell, check, verdict))
    for suite in suites.values():
        suite.update_statistics()
        xml.add_testsuite(suite)
    xml.update_statistics()
    return xml


def _serialize(xml: JUnitXml) -> bytes:
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + xml.tostring()


def write_junit(document: dict, path: Path) -> Path:
    write_atomically(path, _serialize(junit_xml(document)))
    return path


JUNIT_LARGEST = 256 * 1024 * 1024  # bytes


def merge_junit(paths: list[Path], output: Path) -> Path:
    merged = JUnitXml(name="archmatrix")
    for path in paths:
        try:
            suites = JUnitXml.fromstring(read_input(path, "", JUNIT_LARGEST))
        except (SyntaxError, JUnitXmlError) as error:  # SyntaxError: xml.etree's and lxml's parse errors
            # Guest text written raw (an ESC, a NUL) by an older archmatrix makes a file no XML parser reads.
            raise JUnitError(f"{path} is not a JUnit XML file merge-junit can read: {error}; `archmatrix report "
                             f"merge` rewrites a run's junit.xml from its matrix.json") from None
        for suite in suites:
            merged.add_testsuite(suite)
    merged.update_statistics()
    write_atomically(output, _serialize(merged))
    return output
