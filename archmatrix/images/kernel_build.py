"""Kernels built from Debian's kernel source with a Debian cross compiler.

For the arches no Debian release ships a kernel for. The config is the
kernel's own tinyconfig plus a small fragment per arch (images/kernels/),
checked after configuring: an option of the fragment that did not take
(a missing dependency) fails the build instead of giving a kernel that
silently lacks it. Builds run out of tree (make O=) from one extracted
source tree shared by all arches, with make -j<cores>.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

from archmatrix.cleanup.scratch import ScratchArea
from archmatrix.core.arch import ImageSource, SourceKernel
from archmatrix.files import log_tail, write_atomically
from archmatrix.images.debian import DebianPackage, PrivateApt
from archmatrix.paths import RECIPES
from archmatrix.requirements import is_installed

SOURCE_PACKAGE = "linux-source-6.1"  # the fragments in images/kernels/ are written for Linux 6.1
FRAGMENT_DIR = RECIPES / "kernels"
PROGRESS_EVERY_S = 30.0
LOG_TAIL_LINES = 15

Progress = Callable[[str], None]


class KernelBuildError(RuntimeError):
    """A kernel or init that could not be built; the message says where the log is."""


def missing_packages(source: ImageSource) -> list[str]:
    return [package for package in source.debian_packages if not is_installed(package)]


def require_toolchain(arch_name: str, source: ImageSource) -> None:
    missing = missing_packages(source)
    if missing:
        raise KernelBuildError(
            f"building the {arch_name} kernel needs Debian packages that are not installed: {', '.join(missing)}; "
            f"as root: apt-get install {' '.join(missing)} (./run installs them when run as root)")


def toolchain_versions(source: ImageSource) -> dict[str, str]:
    versions = {}
    for package in source.debian_packages:
        result = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", package],
                                capture_output=True, text=True, check=False)
        versions[package] = result.stdout.strip() if result.returncode == 0 else "not installed"
    return versions


def fragment_text(kernel: SourceKernel) -> bytes:
    return (FRAGMENT_DIR / kernel.fragment).read_bytes()


def fragment_options(text: str) -> dict[str, str]:
    """CONFIG_X=value lines of a fragment (comments and blank lines ignored)."""
    options = {}
    for line in text.splitlines():
        match = re.match(r"^(CONFIG_\w+)=(.*)$", line.strip())
        if match:
            options[match.group(1)] = match.group(2)
    return options


def options_not_taken(fragment: str, config: str) -> list[str]:
    """Options the fragment sets that the final .config does not have (a dependency was missing)."""
    final = fragment_options(config)
    return [f"{name}={value}" for name, value in fragment_options(fragment).items() if final.get(name) != value]


# --- the source tree ------------------------------------------------------------------------------

def source_tree(root: Path, scratch_area: ScratchArea, apt: PrivateApt,
                progress: Progress) -> tuple[Path, DebianPackage]:
    """Debian's kernel source, extracted once under `root` (the caller holds the "kernel-source" lock)."""
    version = apt.candidate(SOURCE_PACKAGE)["Version"]
    tree = root / f"{SOURCE_PACKAGE}_{version}"
    record = tree.with_suffix(".deb.json")
    if (tree / "Makefile").is_file() and record.is_file():
        fields = json.loads(record.read_text())
        return tree, DebianPackage(path=tree, **fields)
    shutil.rmtree(tree, ignore_errors=True)
    scratch_area.stale("kernel-source")  # an unpack that was killed; the caller's lock makes it no one's
    started = time.monotonic()
    progress(f"downloading and unpacking {SOURCE_PACKAGE} {version} (once for every arch)")
    scratch = scratch_area.new("kernel-source")
    try:
        (deb,) = apt.download([SOURCE_PACKAGE], scratch / "debs")
        # The paths are arguments of the script, never part of its text.
        unpack = (f'dpkg-deb --fsys-tarfile "$1" | tar -xO ./usr/src/{SOURCE_PACKAGE}.tar.xz | xz -dc -T0 '
                  f'| tar -x -C "$2"')
        result = subprocess.run(["bash", "-o", "pipefail", "-c", unpack, "unpack", str(deb.path), str(scratch)],
                                capture_output=True, text=True, check=False)
        if result.returncode != 0 or not (scratch / SOURCE_PACKAGE / "Makefile").is_file():
            raise KernelBuildError(f"unpacking {deb.path.name} failed: {result.stderr.strip()[-500:]}")
        record_fields = {"name": deb.name, "version": deb.version, "architecture": deb.architecture,
                         "sha256": deb.sha256}
        os.replace(scratch / SOURCE_PACKAGE, tree)
        write_atomically(record, json.dumps(record_fields))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    progress(f"{SOURCE_PACKAGE} {version} unpacked in {time.monotonic() - started:.0f} s")
    return tree, DebianPackage(path=tree, **record_fields)


# --- running the build ----------------------------------------------------------------------------

# What a kernel build would otherwise take from the clock, the user and the machine: fixed, so that the
# same inputs give the same kernel, byte for byte (and `uname -v` says nothing about who built it where).
REPRODUCIBLE_ENV = {"KBUILD_BUILD_TIMESTAMP": "@0", "KBUILD_BUILD_USER": "archmatrix",
                    "KBUILD_BUILD_HOST": "archmatrix", "KBUILD_BUILD_VERSION": "1", "LC_ALL": "C", "TZ": "UTC"}


# The build's first process is this shell: when the harness dies, even by SIGKILL, the kernel sends it SIGTERM
# (PR_SET_PDEATHSIG, below), and it kills its whole process group: make, its sub-makes and their compilers.
_SUPERVISOR = 'trap "kill -KILL 0" TERM; "$@" & wait $!'


def term_with_parent() -> None:
    """SIGTERM when this process's parent dies (Linux prctl): a build step's child, before exec, and ./run's
    early build (archmatrix/run/early_build.py)."""
    import ctypes

    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


# The process groups of the build steps this process runs, whichever thread started them (a run's background
# builds run in a thread of their own: archmatrix/run/prebuild.py).
_RUNNING: set[int] = set()
_RUNNING_LOCK = threading.Lock()


def kill_running_builds() -> None:
    """Kill every build step this process is running, in whichever thread: the run is ending."""
    with _RUNNING_LOCK:
        groups = list(_RUNNING)
    for group in groups:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)


def run_logged(command: list[str], cwd: Path, log_path: Path, step: str, progress: Progress, scratch: Path) -> None:
    """Run one build step with its output appended to `log_path`; say every so often how far it is.

    Its temporary files (a compiler's assembly, say) go under `scratch`, the build's own directory, so that a
    build killed mid-compile leaves none in /tmp: the scratch goes with the build, or with the next sweep.
    """
    tmp = scratch / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    with open(log_path, "a") as log:
        log.write(f"\n$ {' '.join(command)}\n")
        log.flush()
        # A session of its own: Ctrl-C reaches the harness, which then kills the whole build (process group).
        # Should the harness die without doing so, the supervising shell kills the group.
        process = subprocess.Popen(["sh", "-c", _SUPERVISOR, "sh", *command], cwd=cwd, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True,
                                   env={**os.environ, **REPRODUCIBLE_ENV, "TMPDIR": str(tmp)},
                                   preexec_fn=term_with_parent)
    started = time.monotonic()
    with _RUNNING_LOCK:
        _RUNNING.add(process.pid)
    try:
        while True:
            try:
                process.wait(timeout=PROGRESS_EVERY_S)
                break
            except subprocess.TimeoutExpired:
                compiled = sum(1 for line in log_path.read_text(errors="replace").splitlines()
                               if line.lstrip().startswith("CC "))
                progress(f"{step}: {time.monotonic() - started:.0f} s, {compiled} files compiled")
    finally:
        if process.poll() is None:  # interrupted (Ctrl-C, SIGTERM): the whole build goes
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        with _RUNNING_LOCK:
            _RUNNING.discard(process.pid)
    if process.returncode != 0:
        raise KernelBuildError(f"{step} failed (exit {process.returncode}); last lines of {log_path}:\n"
                               + log_tail(log_path, LOG_TAIL_LINES))


def build_kernel(arch_name: str, kernel: SourceKernel, tree: Path, workdir: Path, log_path: Path,
                 progress: Progress) -> tuple[Path, str]:
    """Configure and build; return the kernel file and its release (what `uname -r` will print)."""
    out = workdir / "build"
    out.mkdir()
    allconfig = workdir / "allconfig"
    fragment = fragment_text(kernel).decode()
    allconfig.write_text((tree / "kernel/configs/tiny.config").read_text() + fragment)
    make = ["make", f"O={out}", f"ARCH={kernel.make_arch}", f"CROSS_COMPILE={kernel.cross_prefix}"]
    started = time.monotonic()
    progress(f"configuring (tinyconfig + images/kernels/{kernel.fragment})")
    run_logged([*make, f"KCONFIG_ALLCONFIG={allconfig}", "allnoconfig"], tree, log_path,
                f"{arch_name} kernel configure", progress, workdir)
    missing = options_not_taken(fragment, (out / ".config").read_text())
    if missing:
        raise KernelBuildError(
            f"images/kernels/{kernel.fragment}: options that did not take in the {arch_name} kernel's config "
            f"(a dependency is missing or the option does not exist for ARCH={kernel.make_arch}): "
            f"{', '.join(missing)}; build log: {log_path}")
    jobs = os.cpu_count() or 1
    progress(f"compiling {kernel.target} with make -j{jobs}")
    run_logged([*make, f"-j{jobs}", kernel.target], tree, log_path, f"{arch_name} kernel make {kernel.target}",
                progress, workdir)
    release = subprocess.run([*make, "-s", "kernelrelease"], cwd=tree, capture_output=True, text=True, check=False,
                             env={**os.environ, **REPRODUCIBLE_ENV}).stdout.strip()
    output = out / kernel.output
    if not output.is_file() or not release:
        raise KernelBuildError(f"the {arch_name} kernel build left no {kernel.output} (or no release); "
                               f"log: {log_path}")
    progress(f"kernel {release} built in {time.monotonic() - started:.0f} s ({output.stat().st_size >> 10} KiB)")
    return output, release


def init_command(kernel: SourceKernel, cflags: tuple[str, ...], source: str, output: str) -> list[str]:
    return [f"{kernel.cross_prefix}gcc", "-static", "-Os", "-s", *cflags, "-o", output, source]


def compile_init(arch_name: str, kernel: SourceKernel, cflags: tuple[str, ...], source: Path, output: Path,
                 log_path: Path, progress: Progress) -> None:
    """images/init.c, static, with the kernel's cross compiler."""
    progress(f"compiling /init ({source.name}, static)")
    run_logged(init_command(kernel, cflags, str(source), str(output)), source.parent, log_path,
                f"{arch_name} init compile", progress, output.parent)

