"""The session's start and end: options checked, the run planned (nothing made), extra hosts started and
always stopped, the reporter registered on the controller."""

from __future__ import annotations

import os
import sys

import pytest

from archmatrix import options
from archmatrix.cleanup.names import run_prefix
from archmatrix.core.arches import UnknownNameError
from archmatrix.hosts.spec import HostSpec
from archmatrix.interrupts import interrupt_on_sigterm
from archmatrix.options import OptionError, add_options, option_defaults
from archmatrix.plugin.reporter import MatrixReporter
from archmatrix.plugin.state import STATE, PluginState, progress_to_terminal, state_of
from archmatrix.run.lifecycle import remove_run_dir, start_extra_hosts
from archmatrix.run.rundir import RunDir

PROGRESS_FD = pytest.StashKey[int]()


def pytest_addoption(parser) -> None:
    add_options(parser)


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "arches(*names): guest arches a test runs on when --arch is not given")
    workerinput = getattr(config, "workerinput", None)
    # A session that names none of archmatrix's options or scenarios is another project's: the options are checked,
    # and nothing is tried on disk nor any signal taken over; its first cell, if it has one, makes the run.
    asked = asks_for_archmatrix(config)
    settings = checked_settings(config.option, controller=workerinput is None and asked)
    # Output capture is suspended here: a copy of the terminal's fd for build progress.
    config.stash[PROGRESS_FD] = os.dup(2)
    progress = progress_to_terminal(config, config.stash[PROGRESS_FD])
    if asked:
        interrupt_on_sigterm()
    if workerinput is not None:  # an xdist worker: the controller planned the run
        config.stash[STATE] = PluginState(settings, RunDir.from_dict(workerinput["archmatrix_run_dir"]),
                                          [HostSpec.from_dict(d) for d in workerinput["archmatrix_hosts"]], progress)
        # Workers parse the command line again: the controller's switch to loadgroup must be told them,
        # or xdist's group suffixes are never added and a cell's checks wait on each other's boot.
        if workerinput.get("archmatrix_loadgroup"):
            config.option.loadgroup = True
        return
    state = PluginState(settings, RunDir.planned(), list(settings.hosts), progress, announced=asked)
    config.stash[STATE] = state
    if not config.option.collectonly:
        try:
            state.specs += start_extra_hosts(settings, state.run_dir, state.cleanup, state.labs_cleanup, progress)
        except BaseException:
            _end(state)  # what started before the failure (or the Ctrl-C) is stopped
            raise
    # Keep a cell's checks on one worker, so its one boot is not waited for by others.
    if getattr(config.option, "dist", "no") == "load":
        config.option.dist = "loadgroup"
    config.pluginmanager.register(MatrixReporter(state), "archmatrix-matrix-reporter")


def checked_settings(option, controller: bool = True):
    """The options checked (archmatrix/options/); a bad one is pytest's usage error, naming it and what is valid."""
    try:
        return options.checked_settings(option, controller)
    except (OptionError, UnknownNameError) as error:
        raise pytest.UsageError(str(error)) from None


def asks_for_archmatrix(config) -> bool:
    """The session was given one of archmatrix's options (or its scenarios): its header may name the run.

    Other sessions hear of archmatrix only if a test takes a cell, when the run directory is made.
    """
    asked = any(getattr(config.option, dest) != default for dest, default in option_defaults().items())
    return asked or any("archmatrix" in str(arg) for arg in config.invocation_params.args)


def pytest_report_header(config) -> list[str]:
    state = config.stash.get(STATE, None)
    if state is None or not state.announced:
        return []
    run = state.run_dir
    return [f"archmatrix: run {run.run_id} (domains {run_prefix(run.run_id)}*), reports to "
            f"{state.settings.report_dir}"]


def pytest_unconfigure(config) -> None:
    if PROGRESS_FD in config.stash:
        os.close(config.stash[PROGRESS_FD])
    state = config.stash.get(STATE, None)
    if state is None:
        return
    if state.prebuild is not None:
        state.prebuild.stop()
    if state.run is not None:
        state.run.close()
    if getattr(config, "workerinput", None) is None:
        _end(state)


def _end(state: PluginState) -> None:
    """Every undo step runs, whatever the ones before it did; the run directory (its private key) goes last."""
    failures = state.labs_cleanup.run() + state.cleanup.run()
    remove_run_dir(state.run_dir)
    for failure in failures:
        print(f"archmatrix: cleanup: {failure}", file=sys.stderr)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node) -> None:
    """xdist: a worker gets the controller's plan of the run (its directory, owner and hosts), nothing more."""
    state = state_of(node.config)
    node.workerinput["archmatrix_run_dir"] = state.run_dir.to_dict()
    node.workerinput["archmatrix_hosts"] = [spec.to_dict() for spec in state.specs]
    node.workerinput["archmatrix_loadgroup"] = node.config.option.dist == "loadgroup"
