"""The reports of real runs: files, schema, a real browser, diff between runs, interruption."""

import os
import signal
from pathlib import Path

import pytest

from archmatrix.cli import main as cli
from archmatrix.report.json_report import load_matrix, schema_problems
from scenarios.runs import domains_of, interrupt_mid_run, real_run

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def good_run(tmp_path_factory) -> Path:
    report_dir = tmp_path_factory.mktemp("good-run")
    process = real_run(report_dir, "--arch", "aarch64", "--accel", "tcg,kvm")
    output, _ = process.communicate(timeout=600)
    assert process.returncode == 0, output
    return report_dir


def test_a_real_run_writes_all_four_files_and_valid_json(good_run):
    for name in ("matrix.json", "junit.xml", "matrix.md", "matrix.html", "consoles/aarch64-tcg.log"):
        assert (good_run / name).is_file(), name
    document = load_matrix(good_run / "matrix.json")
    assert schema_problems(document) == [] and document["complete"]
    cells = {c["id"]: c for c in document["cells"]}
    assert cells["aarch64-tcg"]["status"] == "pass" and cells["aarch64-kvm"]["status"] == "unsupported"
    assert cells["aarch64-tcg"]["facts"]["qemu_version"].startswith(document["hosts"][0]["hypervisor_version"])


def test_html_renders_in_headless_chromium_without_console_errors(good_run):
    playwright = pytest.importorskip("playwright.sync_api")
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: ./run test installs Debian's chromium for this check")
    host = load_matrix(good_run / "matrix.json")["hosts"][0]["label"]
    messages, errors = [], []
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"],
        )
        page = browser.new_page()
        page.on("console", lambda message: messages.append(f"{message.type}: {message.text}"))
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto((good_run / "matrix.html").as_uri())
        assert page.locator(f'[id="cell-{host}-aarch64-tcg"]').get_attribute("data-status") == "pass"
        assert page.locator(f'[id="cell-{host}-aarch64-kvm"]').get_attribute("data-status") == "unsupported"
        assert page.locator("svg.chart rect").count() == 1
        assert "ARCHMATRIX-BANNER arch=aarch64" in page.locator("details pre").first.text_content()
        page.screenshot(path=str(good_run / "matrix.png"), full_page=True)
        browser.close()
    assert [m for m in messages if m.startswith("error")] == [] and errors == []


def test_diff_catches_a_regression_planted_in_a_second_real_run(good_run, tmp_path, capsys):
    # The planted fault: a guest whose init hangs (a bound far below what aarch64 needs would leave it still
    # booting: inconclusive, not failed).
    process = real_run(tmp_path, "--arch", "aarch64", "--accel", "tcg", "--boot-timeout", "aarch64=4",
                       "--kernel-args", "aarch64=rdinit=/bin/busybox -- sleep 100000")
    output, _ = process.communicate(timeout=600)
    assert process.returncode == 1, output  # the boot check failed
    assert cli.main(["report", "diff", str(good_run / "matrix.json"), str(tmp_path / "matrix.json")]) == 1
    printed = capsys.readouterr().out
    assert "regression" in printed and "aarch64-tcg" in printed and "pass -> fail" in printed


def test_interrupted_run_leaves_a_valid_incomplete_matrix_and_no_domain(tmp_path):
    process, run_id = interrupt_mid_run(tmp_path, signal.SIGINT)
    output, _ = process.communicate(timeout=300)
    assert process.returncode == pytest.ExitCode.INTERRUPTED, output
    document = load_matrix(tmp_path / "matrix.json")
    assert schema_problems(document) == [] and document["complete"] is False
    assert "s390x-tcg" in {c["id"] for c in document["cells"]}
    assert run_id and domains_of(run_id) == []
