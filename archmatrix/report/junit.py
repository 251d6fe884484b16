"""junit.xml: one suite per (host, arch), one testcase per check, the cell's facts as properties.

Built from matrix.json with junitparser, which also merges the files of
several runs or hosts into one (`archmatrix report merge-junit`).
"""

from __future__ import annotations

from pathlib import Path

from junitparser import Error, Failure, JUnitXml, JUnitXmlError, Properties, Property, Skipped, TestCase, TestSuite

from archmatrix.files import write_atomically
from archmatrix.inputs import InputError
from archmatrix.inputs.files import read_input
from archmatrix.report.json_report import host_key

CELL_FACTS = ("emulator", "emulator_resolved", "machine", "machine_canonical", "cpu_model", "kernel_console",
              "login_s", "qemu_version", "console_log")


def _case(cell: dict, check: str, verdict: dict) -> TestCase:
    case = TestCase(name=f"{check}[{cell['id']}]", classname=f"{cell['host']}.{cell['id']}")
    outcome, detail = verdict["outcome"], verdict["detail"]
    if outcome == "fail":
        case.result = [Failure(message=detail[:300])]
    elif outcome == "error":
        case.result = [Error(message=detail[:300])]
    elif outcome == "unsupported":
        case.result = [Skipped(message=detail[:300])]
    if outcome != "pass":
        case.system_out = detail
    properties = Properties()
    for key in CELL_FACTS:
        value = cell["facts"].get(key)
        if value is not None:
            properties.add_property(Property(key, str(value)))
    image = cell["facts"].get("image") or {}
    if image.get("kernel_sha256"):
        properties.add_property(Property("image_kernel_sha256", image["kernel_sha256"]))
    properties.add_property(Property("cell_status", cell["status"]))
    case.append(properties)
    return case


def junit_xml(document: dict) -> JUnitXml:
    xml = JUnitXml(name="archmatrix")
    hosts = {host_key(host): host for host in document["hosts"]}
    suites: dict[tuple[str, str], TestSuite] = {}
    for cell in document["cells"]:
        key = (cell["host"], cell["arch"])
        if key not in suites:
            suite = TestSuite(f"{cell['host']}/{cell['arch']}")
            host = hosts.get(cell["host"], {})
            suite.hostname = host.get("hostname", cell["host"])
            suite.timestamp = host.get("started_at")
            for name in ("arch", "libvirt_version", "libvirt_uri", "kernel", "distribution"):
                if host.get(name):
                    suite.add_property(f"host_{name}", str(host[name]))
            suite.add_property("kvm", str((host.get("kvm") or {}).get("status", "not probed")))
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
        except (SyntaxError, JUnitXmlError) as error:  # lxml's and ElementTree's parse errors are SyntaxErrors
            raise InputError(f"{path} is not JUnit XML ({error}); valid: a JUnit XML file, <testsuites> or "
                             f"<testsuite>") from None
        for suite in suites:
            merged.add_testsuite(suite)
    merged.update_statistics()
    write_atomically(output, _serialize(merged))
    return output
