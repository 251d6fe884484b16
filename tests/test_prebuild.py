"""Background builds: which arches are built ahead, and a build step killed from another thread when the run ends."""

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from archmatrix.core.arches import ARCHES
from archmatrix.images.cache import ImageCache
from archmatrix.images.image import ImageError
from archmatrix.images.kernel_build import KernelBuildError, kill_running_builds, run_logged
from archmatrix.run.prebuild import Prebuild


def test_only_kernels_built_from_source_and_not_cached_are_built_ahead():
    asked = []

    def image_of(arch):
        asked.append(arch.name)
        raise ImageError("recorded for the arch's cells")

    prebuild = Prebuild(image_of, lambda arch: arch.name == "mips", lambda line: None)
    started = prebuild.start(["aarch64", "ppc64", "mips", "x86_64", "ppc64", "nonesuch"])
    assert started == ["ppc64"], "mips is cached; aarch64 and x86_64 are Debian's kernels, a download away"
    for thread in prebuild._threads:
        thread.join(5)
    assert asked == ["ppc64"]
    assert prebuild.start(["ppc64"]) == [], "started once per run"


def test_the_arches_built_ahead_build_two_at_a_time_in_the_order_given():
    building, release = [], threading.Semaphore(0)

    def image_of(arch):
        building.append(arch.name)
        release.acquire(timeout=10)

    def when(condition):
        deadline = time.monotonic() + 5
        while not condition() and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.1)  # and no more than that starts meanwhile
        return list(building)

    prebuild = Prebuild(image_of, lambda arch: False, lambda line: None)
    assert prebuild.start(["ppc64", "mips", "m68k"]) == ["ppc64", "mips", "m68k"]
    assert when(lambda: len(building) >= 2) == ["ppc64", "mips"], "side by side, the third waits for a place"
    release.release()
    assert when(lambda: len(building) >= 3) == ["ppc64", "mips", "m68k"]
    release.release()
    release.release()
    prebuild.stop()
    assert not any(thread.is_alive() for thread in prebuild._threads)


def test_a_build_step_running_in_another_thread_is_killed_when_the_run_ends(tmp_path):
    outcome = {}

    def build():
        try:
            run_logged(["sleep", "60"], tmp_path, tmp_path / "build.log", "a long step", lambda line: None, tmp_path)
        except KernelBuildError as error:
            outcome["error"] = str(error)

    thread = threading.Thread(target=build)
    thread.start()
    time.sleep(0.5)
    started = time.monotonic()
    kill_running_builds()
    thread.join(10)
    assert not thread.is_alive() and time.monotonic() - started < 5
    assert "a long step failed (exit -9)" in outcome["error"]


@pytest.mark.parametrize("arch", ["ppc64", "mips"])
def test_the_arches_built_from_source_are_the_ones_debian_has_no_kernel_for(arch):
    assert ARCHES[arch].builds_from_source
    assert not ARCHES["aarch64"].builds_from_source


def test_a_build_steps_temporary_files_stay_in_its_scratch_and_so_go_with_it(tmp_path):
    # A compiler killed mid-file leaves its /tmp/cc*.s behind; under the build's scratch it goes with the build.
    scratch = tmp_path / "scratch"
    run_logged(["sh", "-c", 'mktemp > "$0"', str(tmp_path / "made")], tmp_path, tmp_path / "build.log",
               "a step that makes a temporary file", lambda line: None, scratch)
    made = Path((tmp_path / "made").read_text().strip())
    assert made.is_file() and made.is_relative_to(scratch), made


def test_an_arch_another_process_is_building_is_left_to_it_and_said():
    said, asked = [], []
    prebuild = Prebuild(lambda arch: asked.append(arch.name), lambda arch: False, said.append,
                        elsewhere=lambda arch: arch.name == "ppc64")
    assert prebuild.start(["ppc64", "mips"]) == ["mips"]
    prebuild.wait()
    assert asked == ["mips"], "no thread waits on the other process's lock: a run that ends need not wait for it"
    assert said[0] == "being built by another process, which the cells wait for: ppc64"


def test_the_cache_sees_a_build_lock_another_process_holds(tmp_path):
    cache = ImageCache(tmp_path)
    assert not cache.is_being_built(ARCHES["mips"])
    holder = subprocess.Popen([sys.executable, "-c", "import fcntl, sys, time; f = open(sys.argv[1], 'a'); "
                               "fcntl.flock(f, fcntl.LOCK_EX); print('held', flush=True); time.sleep(30)",
                               str(cache.scratch.lock_path("mips"))], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert cache.is_being_built(ARCHES["mips"]) and not cache.is_being_built(ARCHES["ppc64"])
    finally:
        holder.kill()
        holder.wait()
    assert not cache.is_being_built(ARCHES["mips"])
