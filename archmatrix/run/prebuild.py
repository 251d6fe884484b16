"""Images built ahead, in the background, while the run boots the cells whose images are ready.

On a cold cache the arches with no Debian kernel build theirs from source, with busybox and dropbear: minutes
each, on every core. They start as soon as the run knows which arches its cells need, two at a time, in threads
of the controlling process, while the workers boot the other arches (whose images are cached or a quick download
away; those cells come first: archmatrix/run/pipeline.py cells_in_order). A worker that reaches a cell whose
image is still being built waits on the run store's lock for it, then finds it built; a build that failed is
that arch's cells' error, as a build of the worker's own would be.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator

from archmatrix.core.arch import Arch
from archmatrix.core.arches import ARCHES
from archmatrix.images.image import Image, ImageError
from archmatrix.images.kernel_build import kill_running_builds

STOP_WAIT_S = 30.0  # for the threads to see their builds killed and end
SIDE_BY_SIDE = 2  # builds at once, each with make -j<cores>


class Prebuild:
    def __init__(self, image_of: Callable[[Arch], Image], is_ready: Callable[[Arch], bool],
                 progress: Callable[[str], None],
                 announce: str = "building in the background while the other arches boot",
                 elsewhere: Callable[[Arch], bool] = lambda arch: False):
        self.image_of = image_of  # archmatrix.run.images.RunImages.of: once per run, shared through the run store
        self.is_ready = is_ready
        self.progress = progress
        self.announce = announce
        # Being built by another process now (./run's early build, archmatrix/run/early_build.py): a thread here
        # would only wait on its lock, and a run that ends would wait for it.
        self.elsewhere = elsewhere
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self._started = False

    @staticmethod
    def worth_building_ahead(arch: Arch, is_ready: Callable[[Arch], bool]) -> bool:
        """Built from source and not cached: minutes of compiling that the boots need not wait behind."""
        return arch.builds_from_source and not is_ready(arch)

    def start(self, arch_names: Iterable[str]) -> list[str]:
        """Build, in the background, the images of these arches that are worth it; the arches it builds.

        Two at a time, in the order given (longest first): a build's single-threaded steps (configure scripts, the
        kernel's final links) then overlap the other's compiling instead of leaving a core idle, while with many
        (`--arch all`) the first still finish early enough for their cells to boot beside the later builds.
        """
        if self._started:
            return []
        self._started = True
        arches = [ARCHES[name] for name in dict.fromkeys(arch_names) if name in ARCHES]
        ahead = [arch for arch in arches if self.worth_building_ahead(arch, self.is_ready)]
        elsewhere = [arch for arch in ahead if self.elsewhere(arch)]
        if elsewhere:
            self.progress(f"being built by another process, which the cells wait for: "
                          f"{', '.join(arch.name for arch in elsewhere)}")
            ahead = [arch for arch in ahead if arch not in elsewhere]
        if ahead:
            self.progress(f"{self.announce}: {', '.join(arch.name for arch in ahead)}")
            queue = iter(ahead)
            taking = threading.Lock()
            self._threads = [threading.Thread(target=self._build, args=(queue, taking), daemon=True,
                                              name=f"archmatrix-prebuild-{number}")
                             for number in range(min(SIDE_BY_SIDE, len(ahead)))]
            for thread in self._threads:
                thread.start()
        return [arch.name for arch in ahead]

    def _build(self, queue: Iterator[Arch], taking: threading.Lock) -> None:
        while not self._stopping.is_set():
            with taking:
                arch = next(queue, None)
            if arch is None:
                return
            try:
                self.image_of(arch)
            except ImageError:
                pass  # kept in the run store: the arch's cells report it
            except Exception as error:  # noqa: BLE001 - a thread's exception would only be printed
                self.progress(f"background build of {arch.name} stopped: {error}")

    def wait(self) -> None:
        """Until every build started has ended (archmatrix/run/early_build.py has nothing else to do).

        It polls rather than joins: a SIGTERM that interrupts Thread.join() can leave that thread marked as ended
        while it still builds (CPython 3.11), and stop() would then not wait for its scratch to go (seen twice: a
        ppc64 scratch left behind when the run ended while the early build waited on ppc64's thread).
        """
        while any(thread.is_alive() for thread in self._threads):
            time.sleep(0.2)

    def stop(self) -> None:
        """The run is ending: kill the builds in progress (Ctrl-C, SIGTERM, or cells that no longer need them)."""
        running = [thread for thread in self._threads if thread.is_alive()]
        if not running:
            return
        self._stopping.set()
        kill_running_builds()
        deadline = time.monotonic() + STOP_WAIT_S
        for thread in running:
            thread.join(max(0.0, deadline - time.monotonic()))
