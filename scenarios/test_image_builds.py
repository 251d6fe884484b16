"""Building images when something goes wrong: a planted broken cross compiler, a release with no index.

A kernel build that fails fails only its own arch's cells, says why with the
end of its log and the log's path, and leaves nothing half-written in the
cache; one that is interrupted leaves no compiler running and no scratch.
An arch whose first release has no usable index comes from the next one its
catalog entry names, and the build says so.
"""

from __future__ import annotations

import dataclasses
import json
import signal
import subprocess
import sys
import time

import pytest

from archmatrix.cleanup.scratch import ScratchArea
from archmatrix.core.arch import DebianKernel, ImageSource
from archmatrix.core.arches import ARCHES
from archmatrix.images.cache import ImageCache, ImageCacheWarning
from archmatrix.paths import default_cache_dir
from scenarios.runs import ROOT, assert_nothing_left, cells_of, finish, interruptible, real_run

BROKEN_COMPILER = """#!/bin/sh
echo "planted fault: this cross compiler is broken" >&2
exit 1
"""


def test_a_failed_kernel_build_fails_only_its_arch_says_why_and_leaves_no_half_written_image(tmp_path):
    tools = tmp_path / "tools"
    tools.mkdir()
    compiler = tools / "mips-linux-gnu-gcc"  # first on PATH: the build's CROSS_COMPILE=mips-linux-gnu-
    compiler.write_text(BROKEN_COMPILER)
    compiler.chmod(0o755)
    images = tmp_path / "images"
    images.mkdir()
    # A cache of its own, so mips is built (not found); the unpacked kernel source is only read, so share it.
    shared_sources = default_cache_dir() / "src"
    shared_sources.mkdir(parents=True, exist_ok=True)
    (images / "src").symlink_to(shared_sources)
    report_dir = tmp_path / "reports"
    process = real_run(report_dir, "--arch", "mips,aarch64", "--accel", "tcg", "--image-cache", str(images),
                       env={"PATH": f"{tools}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"})
    output, run_id = finish(process)
    cells = cells_of(report_dir)
    assert cells["aarch64-tcg"]["status"] == "pass", output
    mips = cells["mips-tcg"]
    assert mips["status"] == "error", output
    logs = list((images / "logs").glob("mips-*.log"))
    assert len(logs) == 1
    assert "building the mips image failed" in mips["reason"]
    # The end of the log is in the reason: the kernel's own verdict on the compiler; the log has the rest.
    assert str(logs[0]) in mips["reason"] and "mips-linux-gnu-gcc: unknown C compiler" in mips["reason"]
    assert "planted fault: this cross compiler is broken" in logs[0].read_text()
    # The progress of the build reached the terminal, past pytest's capture.
    assert "image mips [" in output and "configuring (tinyconfig + images/kernels/mips.config)" in output
    # Built once, not once per check: the other checks of the cell got the same failure.
    assert sum("configuring (tinyconfig" in line for line in output.splitlines()) == 1
    # Nothing half-written: no mips manifest, no scratch build directory, no stray object.
    assert not (images / "manifests" / "mips").exists() or not list((images / "manifests" / "mips").iterdir())
    assert list((images / "tmp").iterdir()) == []
    aarch64 = json.loads(next((images / "manifests" / "aarch64").glob("*.json")).read_text())
    assert sorted(p.name for p in (images / "objects").iterdir()) == sorted(
        [aarch64["kernel_sha256"], aarch64["initrd_sha256"]])
    assert_nothing_left(run_id)


def test_an_arch_whose_release_has_no_index_comes_from_the_next_release_and_says_so(tmp_path):
    aarch64 = ARCHES["aarch64"]
    kernel = DebianKernel("arm64", "linux-image-arm64", "boot/vmlinuz-*", ("nosuchrelease", "bookworm"))
    planted = dataclasses.replace(aarch64, image=ImageSource(kernel, aarch64.image.init))
    with pytest.warns(ImageCacheWarning, match="took aarch64's packages from bookworm, not nosuchrelease: "
                                               "nosuchrelease: apt-get update failed"):
        image = ImageCache(tmp_path).get_or_build(planted)
    assert image.kernel_release.endswith("-arm64")
    assert image.warnings and image.warnings[0].startswith("took aarch64's packages from bookworm")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=lambda s: s.name)
def test_an_interrupted_kernel_build_leaves_no_make_and_no_scratch(tmp_path, signum):
    images = tmp_path / "images"
    images.mkdir()
    shared_sources = default_cache_dir() / "src"
    shared_sources.mkdir(parents=True, exist_ok=True)
    (images / "src").symlink_to(shared_sources)
    build = subprocess.Popen(interruptible([sys.executable, "-m", "archmatrix", "images", "build", "--arch", "mips",
                                            "--image-cache", str(images)]), cwd=ROOT, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    seen = []
    for line in build.stdout:  # interrupt while the compiler runs, as Ctrl-C would
        seen.append(line)
        if "compiling vmlinux with make" in line:
            time.sleep(3)
            build.send_signal(signum)
            break
    output = "".join(seen) + build.communicate(timeout=60)[0]
    assert build.returncode != 0, output
    assert "compiling vmlinux with make" in output
    # The build ran in a session of its own: Ctrl-C and CI's SIGTERM reach the harness, which kills all of it.
    # SIGKILL cannot be handled: make dies with its parent, and the compiler jobs it had started end within seconds.
    deadline = time.monotonic() + 20
    while subprocess.run(["pgrep", "-f", str(images)], capture_output=True).returncode == 0:
        assert time.monotonic() < deadline, subprocess.run(["pgrep", "-af", str(images)], capture_output=True,
                                                           text=True).stdout
        time.sleep(0.5)
    if signum == signal.SIGKILL:  # its scratch stays, counted by `archmatrix audit`, for the next build to remove
        assert [p.name.startswith("mips-") for p in (images / "tmp").iterdir()] == [True]
        assert ScratchArea(images).abandoned() == list((images / "tmp").iterdir())
        with ScratchArea(images).lock("mips"):
            ScratchArea(images).stale("mips")
    assert list((images / "tmp").iterdir()) == []
    assert not (images / "manifests" / "mips").exists() or not list((images / "manifests" / "mips").iterdir())
    assert list((images / "objects").iterdir()) == []
