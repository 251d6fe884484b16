"""The kernels ./run builds before pytest starts: only for the default matrix, only what is not cached, and
never outliving the run that started them."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from archmatrix.core.arches import ARCHES
from archmatrix.images.cache import ImageCache
from archmatrix.images.image import ImageError
from archmatrix.images.recipe import Recipe
from archmatrix.run.early_build import Say, boots_the_default_matrix, build, to_build
from tests.test_docs import ROOT


@pytest.mark.parametrize("options", [[], ["-p", "no:cacheprovider"], ["-n", "2", "-v", "--tb=short"],
                                     ["--accel", "tcg", "--report-dir", "out"]])
def test_the_default_matrix_is_built_ahead(options):
    assert boots_the_default_matrix(options)


@pytest.mark.parametrize("options", [["--arch", "aarch64"], ["--arch=all"], ["-k", "aarch64"], ["-kmips"],
                                     ["-m", "not ssh"], ["--image-cache", "/elsewhere"],
                                     ["--image=mips=/k,/i"], ["--collect-only"], ["--help"]])
def test_a_run_of_other_arches_images_or_caches_builds_nothing_ahead(options):
    assert not boots_the_default_matrix(options)


def test_only_the_default_matrixs_source_arches_not_cached_are_built(tmp_path):
    cache = ImageCache(tmp_path)
    assert [arch.name for arch in to_build(cache)] == ["ppc64", "mips"]
    mips = ARCHES["mips"]
    manifest = cache.root / "manifests" / "mips" / f"{Recipe.for_arch(mips).key(mips)}.json"
    manifest.parent.mkdir(parents=True, exist_ok=True)
    manifest.write_text(json.dumps({}))  # is_cached reads only that it exists
    assert [arch.name for arch in to_build(cache)] == ["ppc64"]


def test_a_failed_build_is_said_and_makes_the_exit_status(tmp_path):
    said = []

    class Failing(ImageCache):
        def get_or_build(self, arch, recipe=None):
            raise ImageError(f"building the {arch.name} image failed: planted")

    assert build([ARCHES["mips"]], Failing(tmp_path), said.append) == 1
    assert "image mips: building the mips image failed: planted (the run builds it again and reports it)" in said


def test_lines_are_whole_before_pytest_and_start_their_own_line_amid_its_dots(capsys):
    # The parent here is a real shell that execs Python, as ./run execs pytest.
    parent = subprocess.Popen(["sh", "-c", f"read go; exec {sys.executable} -c 'import time; time.sleep(30)'"],
                              stdin=subprocess.PIPE, text=True)
    try:
        say = Say(parent.pid)
        say("image mips [    0 s] building from source")
        parent.stdin.write("go\n")
        parent.stdin.flush()
        deadline = time.monotonic() + 10
        while not say.parent_is_python() and time.monotonic() < deadline:
            time.sleep(0.05)
        say("image mips [   30 s] mips kernel make vmlinux: 30 s, 61 files compiled")
    finally:
        parent.kill()
        parent.wait()
    assert capsys.readouterr().out == ("image mips [    0 s] building from source\n"
                                       "\nimage mips [   30 s] mips kernel make vmlinux: 30 s, 61 files compiled")


def test_it_ends_when_the_process_that_started_it_ends():
    # A real parent process and child, the child asking as main() does; then the parent is killed (SIGKILL: no
    # cleanup of its own can help). A real build's steps follow the child (tests/test_prebuild.py).
    child_code = (
        "import sys, time; from archmatrix.run.early_build import end_with; "
        "ok = end_with(int(sys.argv[1])); print('ready' if ok else 'orphan', flush=True); time.sleep(60)"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c",
         "import subprocess, sys, os, time; "
         "child = subprocess.Popen([sys.executable, '-c', sys.argv[1], str(os.getpid())], stdout=subprocess.PIPE, "
         "text=True); print(child.pid, child.stdout.readline().strip(), flush=True); time.sleep(60)", child_code],
        cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        child_pid, state = parent.stdout.readline().split()
        assert state == "ready"
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _alive(int(child_pid)):
            time.sleep(0.05)
        assert not _alive(int(child_pid)), "the early build outlived the run that started it"
    finally:
        parent.kill()
        parent.wait()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False
    finally:
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
