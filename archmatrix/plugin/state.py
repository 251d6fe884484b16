"""What the plugin keeps for a pytest session: the settings, the planned run, its hosts and its cleanup."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import pytest

from archmatrix.core.arches import ARCHES
from archmatrix.hosts.spec import HostSpec
from archmatrix.interrupts import interrupt_on_sigterm
from archmatrix.run.lifecycle import Cleanup
from archmatrix.run.pipeline import Run
from archmatrix.run.prebuild import Prebuild
from archmatrix.run.rundir import RunDir

STATE = pytest.StashKey["PluginState"]()


@dataclass
class PluginState:
    settings: object  # archmatrix.options.Settings
    run_dir: RunDir
    specs: list[HostSpec]  # every host of the run, container and lab hosts included, in matrix order
    progress: Callable[[str], None]
    cleanup: Cleanup = field(default_factory=Cleanup)  # at the session's very end (containers, the run directory)
    labs_cleanup: Cleanup = field(default_factory=Cleanup)  # before the end-of-run sweep (lab hosts are domains)
    wants_ssh: bool = True  # some selected test judges an SSH check: cells' boots go on to SSH
    announced: bool = False  # the header named the run: the run directory's making need not say it again
    run: Run | None = None  # made by the first fixture that needs a cell: nothing exists before
    prebuild: Prebuild | None = None  # the controller's background builds, once cells are known

    def the_run(self) -> Run:
        if self.run is None:
            interrupt_on_sigterm()  # a SIGTERM (a CI timeout) ends the run like Ctrl-C: every `finally` runs
            self.run = Run(self.settings, self.run_dir, self.specs, self.progress, announce=not self.announced)
        return self.run

    def build_ahead(self, arches: Iterable[str]) -> None:
        """Start building, in the background, the images of these arches that are built from source."""
        arches = [name for name in arches if ARCHES[name].builds_from_source]
        if not arches:
            return  # nothing is made for a run that needs no build ahead
        if self.prebuild is None:
            run = self.the_run()
            self.prebuild = Prebuild(run.images.of, run.images.is_ready, self.progress,
                                     elsewhere=run.images.is_being_built)
        self.prebuild.start(arches)


def state_of(config) -> PluginState:
    return config.stash[STATE]


def progress_to_terminal(config, fd: int) -> Callable[[str], None]:
    """Where image builds and the run say how far they are: the terminal itself, past pytest's output capture.

    Cold builds take minutes (a kernel from source about two); a run must not look hung meanwhile.
    """
    worker = getattr(config, "workerinput", {}).get("workerid")
    prefix = f"[{worker}] " if worker else ""

    def say(line: str) -> None:
        # Each line starts a line of its own: pytest leaves its line of dots open, and under xdist the workers'
        # and the controller's (background builds) lines come in any order, so none may rely on another's end.
        try:
            os.write(fd, f"\n{prefix}{line}".encode())
        except OSError:
            pass  # the terminal went away; the work goes on

    return say
