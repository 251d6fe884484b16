"""The default matrix's kernels built from source, started by ./run before pytest can start.

On a new machine ./run installs Debian packages, makes its virtual environment and starts libvirtd before a
test can run: half a minute in which a core is mostly idle, while the kernels built from source (ppc64, mips)
are the first run's longest work and need only their cross compilers and this package's standard-library code.
So ./run installs those compilers first and starts this, with the system Python, while the rest installs.
pytest's own background build (archmatrix/run/prebuild.py) then waits on the image cache's lock of each arch
and finds the image built.

It ends with the process that started it (./run, which becomes pytest): a run that ends or is interrupted ends
these builds too (PR_SET_PDEATHSIG; the builds' own process groups follow, archmatrix/images/kernel_build.py).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Callable

from archmatrix.core.arch import Arch
from archmatrix.core.arches import ARCHES, default_arches
from archmatrix.images.cache import ImageCache, ImageError
from archmatrix.images.kernel_build import term_with_parent
from archmatrix.interrupts import interrupt_on_sigterm
from archmatrix.run.prebuild import Prebuild

# Options after which the run may boot other images than the default matrix's built-in ones from the default
# cache, or none: other arches, images of the user's, another cache, a selection, no run at all. With any of
# them nothing is built ahead (the run builds what it needs itself).
NOT_THE_DEFAULT_MATRIX = ("--arch", "--image", "--image-cache", "--boot-from", "--lab-host", "--container-host",
                          "--libvirt-uri", "--hosts-file", "--host-ssh", "-k", "-m", "--lf", "--last-failed",
                          "--co", "--collect-only", "-h", "--help", "--version", "--fixtures", "--markers")


def boots_the_default_matrix(options: list[str]) -> bool:
    for option in options:
        name = option.split("=", 1)[0]
        if name in NOT_THE_DEFAULT_MATRIX or name[:2] in ("-k", "-m") and not name.startswith("--"):
            return False
    return True


def to_build(cache: ImageCache) -> list[Arch]:
    """The default matrix's arches built from source whose image is not cached."""
    return [ARCHES[name] for name in default_arches()
            if ARCHES[name].builds_from_source and not cache.is_cached(ARCHES[name])]


class Say:
    """Progress lines on the terminal the run shares: whole lines while ./run (a shell) installs and starts
    daemons, whose lines follow; once ./run has become pytest (a Python), each on a line of its own amid pytest's
    progress dots, as archmatrix/plugin/state.py writes its lines."""

    def __init__(self, parent: int):
        self.parent = parent

    def parent_is_python(self) -> bool:
        try:
            return os.path.basename(os.readlink(f"/proc/{self.parent}/exe")).startswith("python")
        except OSError:
            return True  # gone: nobody's lines follow

    def __call__(self, line: str) -> None:
        sys.stdout.write(f"\n{line}" if self.parent_is_python() else f"{line}\n")
        sys.stdout.flush()


def end_with(parent: int) -> bool:
    """SIGTERM when the parent dies; False when it already has (this process was orphaned before asking)."""
    term_with_parent()
    return os.getppid() == parent


def build(arches: list[Arch], cache: ImageCache, say: Callable[[str], None]) -> int:
    failed: list[str] = []
    ending = threading.Event()

    def image_of(arch: Arch):
        try:
            return cache.get_or_build(arch)
        except ImageError as error:
            failed.append(arch.name)
            if not ending.is_set():  # killed because the run ended: no failure to report
                say(f"image {arch.name}: {error} (the run builds it again and reports it)")
            raise

    prebuild = Prebuild(image_of, cache.is_cached, say, announce="run: building from source while the rest gets "
                        f"ready (logs: {cache.root / 'logs'})")
    prebuild.start(arch.name for arch in arches)
    try:
        prebuild.wait()
    except KeyboardInterrupt:  # SIGTERM: the run ended; its builds are killed and their scratch removed
        ending.set()
        prebuild.stop()
        return 128 + signal.SIGTERM
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python3 -m archmatrix.run.early_build",
        description="Build the default matrix's kernels from source ahead of the run (./run matrix does).")
    parser.add_argument("parent", type=int, help="the pid this process ends with (./run's)")
    parser.add_argument("run_options", nargs="*", metavar="-- OPTION", help="the run's options, after --")
    args = parser.parse_args(argv)
    if not boots_the_default_matrix(args.run_options) or not end_with(args.parent):
        return 0
    interrupt_on_sigterm()
    say = Say(args.parent)
    cache = ImageCache(progress=say)
    arches = to_build(cache)
    return build(arches, cache, say) if arches else 0


if __name__ == "__main__":
    sys.exit(main())
