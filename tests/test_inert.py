"""Inert until asked: another project's pytest run, with archmatrix installed, is as if archmatrix were not.

The project is a temporary directory with one unrelated test. pytest runs it twice in a subprocess, with the
plugin (loaded by its entry point, as in any environment it is installed in) and with `-p no:archmatrix`. A probe
plugin, loaded before the entry points, records through Python's audit hooks every file opened for writing,
directory made or removed, rename, subprocess and socket connection; at the end it records which of libvirt,
docker and paramiko were imported. Both runs must do the same, pass the same, report the same. No libvirt module
means no libvirt connection and no domain: libvirt is reached only through it. The cache root and the temporary
directory are the run's own (XDG_CACHE_HOME, TMPDIR), so nothing another process does on this machine counts.

Also: a bare `pytest` in the checkout collects the offline tests only and says how to run the boots.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import archmatrix

CHECKOUT = Path(__file__).resolve().parent.parent
IMPORT_ROOT = Path(archmatrix.__file__).resolve().parent.parent  # the archmatrix these tests import, and pytest's
CONNECTING_MODULES = ("libvirt", "docker", "paramiko", "testcontainers")
BOGUS_URI = "qemu+tcp://archmatrix-inert.invalid/system"  # were a connection tried, it could only fail

PROBE = textwrap.dedent('''
    """Loaded with -p before pytest's entry point plugins: what this pytest process does to the world."""
    import atexit, json, os, signal, sys

    EVENTS = []
    WRITING = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
    ACTS = {"os.mkdir", "os.rmdir", "os.remove", "os.rename", "os.replace", "os.symlink", "os.link", "os.chmod",
            "os.chown", "os.truncate", "os.utime", "shutil.rmtree", "shutil.copyfile", "shutil.move",
            "subprocess.Popen", "os.system", "os.posix_spawn", "os.exec", "os.fork", "socket.connect",
            "socket.bind", "os.startfile"}
    OUT = os.environ["INERT_PROBE_OUT"]

    def _hook(event, args):
        if event == "open":
            path, mode, flags = (list(args) + [None, None, None])[:3]
            writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                mode is None and isinstance(flags, int) and flags & WRITING)
            if writes and str(path) != OUT:
                EVENTS.append(["open-for-writing", os.fsdecode(path) if isinstance(path, (str, bytes)) else repr(path)])
        elif event in ACTS:
            EVENTS.append([event, *(repr(arg) for arg in args[:2])])

    sys.addaudithook(_hook)
    SEEN = {}

    def pytest_configure(config):
        SEEN["archmatrix_loaded"] = config.pluginmanager.has_plugin("archmatrix")

    def pytest_unconfigure(config):
        SEEN["sigterm"] = repr(signal.getsignal(signal.SIGTERM))

    @atexit.register
    def _dump():
        SEEN["events"] = EVENTS
        SEEN["modules"] = sorted(m for m in %r if m in sys.modules)
        with open(OUT, "w") as out:
            json.dump(SEEN, out)
''' % (CONNECTING_MODULES,))


def tree(root: Path) -> list[str]:
    return sorted(str(path.relative_to(root)) for path in root.rglob("*"))


def run_project(tmp_path: Path, name: str, *args: str) -> dict:
    """pytest in the project directory; what it printed, what it wrote, what the probe saw, what it left."""
    project, cache, temp, out = (tmp_path / name / part for part in ("project", "cache", "tmp", "out"))
    for directory in (project, cache, temp, out):
        directory.mkdir(parents=True)
    (project / "test_x.py").write_text("def test_x():\n    assert True\n")
    (out / "inert_probe.py").write_text(PROBE)
    environment = {key: value for key, value in os.environ.items()
                   if not key.startswith(("PYTEST_", "ARCHMATRIX_")) and key not in ("PYTHONPATH", "COV_CORE_SOURCE")}
    environment.update({"PYTHONPATH": f"{out}{os.pathsep}{IMPORT_ROOT}", "PYTHONDONTWRITEBYTECODE": "1",
                        "XDG_CACHE_HOME": str(cache), "TMPDIR": str(temp), "INERT_PROBE_OUT": str(out / "seen.json"),
                        "ARCHMATRIX_LIBVIRT_URI": BOGUS_URI})
    result = subprocess.run([sys.executable, "-m", "pytest", "-p", "inert_probe", "-p", "no:cacheprovider",
                             f"--junitxml={out / 'junit.xml'}", *args],
                            cwd=project, env=environment, capture_output=True, text=True, timeout=120)
    seen = json.loads((out / "seen.json").read_text())
    return {"result": result, "seen": seen, "junit": (out / "junit.xml").read_text(), "roots": (project, cache, temp),
            "left": {part: tree(root) for part, root in (("project", project), ("cache", cache), ("tmp", temp))}}


def same_regardless_of_time(text: str, roots: tuple[Path, ...]) -> str:
    for root in roots:
        text = text.replace(str(root.parent), "<run>")
    text = re.sub(r"(time|timestamp|hostname)=\"[^\"]*\"", r'\1="-"', text)
    text = re.sub(r"\bin \d+\.\d+s\b", "in -s", text)
    return "\n".join(line for line in text.splitlines() if not line.startswith("plugins:"))


def same_regardless_of_names(events: list[list[str]], roots: tuple[Path, ...]) -> list[list[str]]:
    """Temporary files' random names (Python's tempfile probe, pytest's capture files) made comparable."""
    project, cache, temp = roots
    shown = []
    for event in events:
        text = json.dumps(event).replace(str(project.parent), "<run>")
        shown.append(json.loads(re.sub(r"<run>/tmp/[a-z0-9_]{8}\b", "<run>/tmp/<random>", text)))
    return sorted(shown)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("inert")
    return run_project(tmp_path, "with"), run_project(tmp_path, "without", "-p", "no:archmatrix")


def test_the_plugin_is_loaded_by_its_entry_point_and_the_test_passes(runs):
    with_plugin, without = runs
    assert with_plugin["seen"]["archmatrix_loaded"], "the archmatrix entry point plugin was not loaded"
    assert not without["seen"]["archmatrix_loaded"]
    for run in runs:
        assert run["result"].returncode == 0, run["result"].stdout + run["result"].stderr
        assert "1 passed" in run["result"].stdout


def test_nothing_is_left_in_the_project_the_cache_or_the_temporary_directory(runs):
    with_plugin, _ = runs
    assert with_plugin["left"] == {"project": ["test_x.py"], "cache": [], "tmp": []}, (
        f"the run with archmatrix left files behind (no reports/, no archmatrix cache, no run directory "
        f"expected): {with_plugin['left']}")


def test_the_plugin_writes_makes_and_starts_nothing_pytest_does_not(runs):
    with_plugin, without = runs
    did = same_regardless_of_names(with_plugin["seen"]["events"], with_plugin["roots"])
    would = same_regardless_of_names(without["seen"]["events"], without["roots"])
    extra = [event for event in did if event not in would]
    assert not extra, f"with archmatrix loaded, pytest also did: {extra}"
    assert did == would


def test_no_connecting_module_is_imported_so_no_libvirt_connection_or_domain(runs):
    with_plugin, _ = runs
    assert with_plugin["seen"]["modules"] == [], (
        f"archmatrix imported {with_plugin['seen']['modules']} in a session that asked nothing of it")


def test_the_reports_and_the_signals_are_pytests_own(runs):
    with_plugin, without = runs
    assert same_regardless_of_time(with_plugin["result"].stdout, with_plugin["roots"]) == \
        same_regardless_of_time(without["result"].stdout, without["roots"])
    assert same_regardless_of_time(with_plugin["junit"], with_plugin["roots"]) == \
        same_regardless_of_time(without["junit"], without["roots"])
    assert with_plugin["seen"]["sigterm"] == without["seen"]["sigterm"], "archmatrix took over SIGTERM unasked"


def test_a_bare_pytest_in_the_checkout_collects_the_offline_tests_and_says_how_to_boot():
    # A bare `pytest` (no arguments): PYTEST_ADDOPTS only makes it collect, it is not an argument.
    environment = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST_")}
    environment.update({"PYTEST_ADDOPTS": "--collect-only -p no:cacheprovider", "PYTHONDONTWRITEBYTECODE": "1",
                        "PYTHONPATH": str(IMPORT_ROOT)})
    result = subprocess.run([sys.executable, "-m", "pytest"], cwd=CHECKOUT, env=environment, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    modules = re.findall(r"<Module (\S+)>", result.stdout)
    directories = set(re.findall(r"<(?:Dir|Package) (\S+)>", result.stdout))
    assert modules and all(module.startswith("test_") for module in modules)
    assert "scenarios" not in directories and "archmatrix" not in directories, (
        f"a bare pytest collected beyond tests/: {sorted(directories)}")
    assert "test_guest.py" not in modules and "test_in_guest.py" not in modules
    header = result.stdout.split("collected", 1)[0]
    assert "a bare pytest runs the offline tests (tests/) only" in header
    assert "./run matrix" in header and "./run test" in header
