"""The wheel carries everything: built from the checkout, installed with its dependencies into a fresh virtual
environment outside it, and run from an empty directory with nothing of the checkout on the path, it boots a cell
(`archmatrix cell`, and the packaged scenarios under `pytest --pyargs`) and writes the reports.

The virtual environment is kept in the cache root (<cache root>/wheel-test/venv-<key>), keyed by the wheel's
content: a warm run installs nothing. The images come from the shared image cache, so nothing is built. Each run
goes through a small wrapper whose audit hook records every file or directory of the checkout the process opens
or lists: there must be none.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from archmatrix.paths import cache_root
from archmatrix.report.json_report import load_matrix, schema_problems
from scenarios.runs import assert_nothing_left, run_id_of

ROOT = Path(__file__).resolve().parent.parent
CELL = "x86_64-tcg"  # the host's own arch: the shortest boot, and an image every cache that ran the matrix has
WHEEL_TEST_DIR = cache_root() / "wheel-test"
PIP_TIMEOUT_S = 900
RUN_TIMEOUT_S = 600
REPORT_FILES = ("matrix.json", "junit.xml", "matrix.md", "matrix.html", f"consoles/{CELL}.log")

pytestmark = pytest.mark.xdist_group("wheel")  # one worker builds and installs it once

# Runs the installed console script (or `-m module`) after adding an audit hook that records what of the checkout
# the process opens or lists; the record is written at exit, whatever the exit.
WRAPPER = '''
import atexit, json, os, runpy, sys

CHECKOUT = os.environ.pop("WHEEL_TEST_CHECKOUT")
RECORD = os.environ.pop("WHEEL_TEST_RECORD")
SEEN = []

def _hook(event, args):
    if event in ("open", "os.listdir", "os.scandir") and args and isinstance(args[0], (str, bytes, os.PathLike)):
        path = os.path.abspath(os.fsdecode(args[0]))
        if path == CHECKOUT or path.startswith(CHECKOUT + os.sep):
            SEEN.append(f"{event} {path}")

@atexit.register
def _write():
    with open(RECORD, "w") as record:
        json.dump({"checkout_paths": SEEN, "archmatrix": sys.modules["archmatrix"].__file__
                   if "archmatrix" in sys.modules else None}, record)

sys.addaudithook(_hook)
if sys.argv[1] == "-m":
    sys.argv = [sys.argv[2], *sys.argv[3:]]
    runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
else:
    sys.argv = sys.argv[1:]
    runpy.run_path(sys.argv[0], run_name="__main__")
'''


@dataclass(frozen=True)
class Installed:
    venv: Path
    made_now: bool
    install_s: float

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"


def wheel_key(wheel: Path) -> str:
    """The wheel's content (each member's name and bytes, not the zip's timestamps) and the Python it is for."""
    digest = hashlib.sha256(f"{sys.version_info[:3]} {os.path.realpath(sys._base_executable)}\n".encode())
    with zipfile.ZipFile(wheel) as archive:
        for member in sorted(archive.namelist()):
            digest.update(member.encode() + b"\0" + hashlib.sha256(archive.read(member)).digest())
    return digest.hexdigest()[:16]


def outside_environment(venv: Path | None = None) -> dict[str, str]:
    """The environment of a person's shell: nothing that points Python at the checkout or at the suite's run."""
    environment = {key: value for key, value in os.environ.items()
                   if key not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV", "PYTHONSAFEPATH")
                   and not key.startswith(("PYTEST_", "ARCHMATRIX_INNER"))}
    if venv is not None:
        environment["PATH"] = f"{venv / 'bin'}{os.pathsep}{environment.get('PATH', '')}"
        environment["VIRTUAL_ENV"] = str(venv)
    return environment


def run(command: list, timeout: float, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(word) for word in command], capture_output=True, text=True, timeout=timeout,
                          **kwargs)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """`pip wheel` of a copy of the checkout's package files (a build writes build/ and *.egg-info beside them)."""
    work = tmp_path_factory.mktemp("wheel")
    source, out = work / "source", work / "dist"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    shutil.copytree(ROOT / "archmatrix", source / "archmatrix",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"))
    built = run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check", "-w", out, source],
                PIP_TIMEOUT_S, env=outside_environment(), cwd=work)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    shutil.rmtree(source)
    wheels = list(out.glob("archmatrix-*.whl"))
    assert len(wheels) == 1, f"pip wheel made {wheels}"
    return wheels[0]


@pytest.fixture(scope="module")
def installed(wheel) -> Installed:
    """A virtual environment outside the checkout with the wheel and its dependencies, made once per wheel content."""
    WHEEL_TEST_DIR.mkdir(parents=True, exist_ok=True)
    venv = WHEEL_TEST_DIR / f"venv-{wheel_key(wheel)}"
    with open(WHEEL_TEST_DIR / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        started = time.monotonic()
        made_now = not (venv / ".installed").is_file()
        if made_now:  # made where it stays (a venv records its path), marked done last; a half-made one is redone
            shutil.rmtree(venv, ignore_errors=True)
            for step in ([sys.executable, "-m", "venv", venv],
                         [venv / "bin" / "pip", "install", "--disable-pip-version-check", "-q", wheel]):
                done = run(step, PIP_TIMEOUT_S, env=outside_environment(), cwd=WHEEL_TEST_DIR)
                if done.returncode != 0:
                    shutil.rmtree(venv, ignore_errors=True)
                    pytest.fail(f"{' '.join(map(str, step[:3]))} failed: {done.stdout[-2000:]}{done.stderr[-2000:]}")
            (venv / ".installed").write_text(f"{wheel.name} in {time.monotonic() - started:.1f} s\n")
        for older in WHEEL_TEST_DIR.glob("venv-*"):  # the environments of older wheels: one is enough
            if older != venv:
                shutil.rmtree(older, ignore_errors=True)
    return Installed(venv, made_now, time.monotonic() - started)


def run_installed(installed: Installed, tmp_path: Path, *command: str) -> tuple[subprocess.CompletedProcess, dict]:
    """Run the installed `archmatrix` (or `-m MODULE`) from an empty directory; its output and what it opened."""
    empty, record, wrapper = tmp_path / "empty", tmp_path / "opened.json", tmp_path / "wrapper" / "run.py"
    empty.mkdir()
    wrapper.parent.mkdir()
    wrapper.write_text(WRAPPER)
    target = list(command) if command[0] == "-m" else [str(installed.venv / "bin" / command[0]), *command[1:]]
    environment = outside_environment(installed.venv) | {"WHEEL_TEST_CHECKOUT": str(ROOT),
                                                        "WHEEL_TEST_RECORD": str(record)}
    done = run([installed.python, wrapper, *target], RUN_TIMEOUT_S, cwd=empty, env=environment)
    assert list(empty.iterdir()) == [], f"the run wrote into its working directory: {list(empty.iterdir())}"
    return done, json.loads(record.read_text())


def assert_read_nothing_of_the_checkout(installed: Installed, opened: dict) -> None:
    assert opened["archmatrix"] and Path(opened["archmatrix"]).is_relative_to(installed.venv), (
        f"archmatrix was imported from {opened['archmatrix']}, not from {installed.venv}")
    assert opened["checkout_paths"] == [], f"the installed run read the checkout: {opened['checkout_paths'][:10]}"


def assert_reports(report_dir: Path) -> dict:
    for name in REPORT_FILES:
        assert (report_dir / name).is_file(), f"no {name} in {report_dir}: {sorted(report_dir.rglob('*'))}"
    document = load_matrix(report_dir / "matrix.json")
    assert schema_problems(document) == [] and document["complete"]
    cells = {cell["id"]: cell for cell in document["cells"]}
    assert list(cells) == [CELL] and cells[CELL]["status"] == "pass", cells
    return cells[CELL]


def assert_audit_finds_nothing_of(installed: Installed, run_id: str) -> None:
    audit = run([installed.venv / "bin" / "archmatrix", "audit"], 120, env=outside_environment(installed.venv))
    assert audit.returncode in (0, 1), audit.stderr  # 1: leftovers of any run on this shared machine
    assert f"(run {run_id})" not in audit.stdout, audit.stdout


def test_the_wheel_carries_the_recipes_the_scenarios_and_the_schema(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for member in ("archmatrix/recipes/cirros-like.toml", "archmatrix/recipes/init.sh", "archmatrix/recipes/init.c",
                   "archmatrix/recipes/kernels/ppc64.config", "archmatrix/recipes/host-containers/recipe.toml",
                   "archmatrix/recipes/lab/init", "archmatrix/scenarios/test_guest.py",
                   "archmatrix/report/matrix.schema.json", "archmatrix/nova/bridge/__main__.py"):
        assert member in names, f"{wheel.name} lacks {member}"
    assert not [name for name in names if name.startswith(("scenarios/", "tests/", "benchmarks/"))]


def test_an_installed_wheel_runs_a_cell_from_an_empty_directory(installed, tmp_path, record_property):
    record_property("install_s", round(installed.install_s, 1))
    record_property("venv_made_now", installed.made_now)
    report_dir = tmp_path / "reports"
    done, opened = run_installed(installed, tmp_path, "archmatrix", "cell", CELL, "--report-dir", str(report_dir))
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert_read_nothing_of_the_checkout(installed, opened)
    for check in ("binary", "machine", "accelerator", "console", "boot", "ssh", "guest-arch", "network"):
        assert re.search(rf"/{CELL} {check} +pass ", output), f"{check} did not pass:\n{output}"
    cell = assert_reports(report_dir)
    assert cell["facts"]["image"]["origin"] == "built-in"
    run_id = next(filter(None, map(run_id_of, output.splitlines())), None)
    assert_nothing_left(run_id)
    assert_audit_finds_nothing_of(installed, run_id)


def test_the_installed_scenarios_run_under_pytest_from_an_empty_directory(installed, tmp_path):
    report_dir = tmp_path / "reports"
    done, opened = run_installed(installed, tmp_path, "-m", "pytest", "--pyargs", "archmatrix.scenarios",
                                 "-k", "x86_64", "--accel", "tcg", "-p", "no:cacheprovider",
                                 "--report-dir", str(report_dir))
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert_read_nothing_of_the_checkout(installed, opened)
    assert re.search(r"\b8 passed\b", output), output
    assert_reports(report_dir)
    run_id = next(filter(None, map(run_id_of, output.splitlines())), None)
    assert_nothing_left(run_id)
    assert_audit_finds_nothing_of(installed, run_id)
