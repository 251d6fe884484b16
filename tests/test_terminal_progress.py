"""Build progress on the terminal: lines that never run into each other, alone or under xdist."""

import os
from types import SimpleNamespace

import pytest

from archmatrix.plugin.state import progress_to_terminal


def config_of(worker=None, distributing=False):
    plugins = SimpleNamespace(has_plugin=lambda name: distributing and name == "dsession")
    return SimpleNamespace(pluginmanager=plugins, **({"workerinput": {"workerid": worker}} if worker else {}))


def written(config, lines):
    read_end, write_end = os.pipe()
    say = progress_to_terminal(config, write_end)
    for line in lines:
        say(line)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        return pipe.read()


@pytest.mark.parametrize("config, expected", [
    # Alone: pytest's line of dots is left open, so each line of ours starts a new one.
    (config_of(), "\nimage ppc64 configuring\nimage ppc64 built"),
    # A worker's lines, whole and named.
    (config_of(worker="gw1"), "[gw1] image mips configuring\n[gw1] image mips built\n"),
    # The controller's background build under xdist: whole lines too, or a worker's would run on after it.
    (config_of(distributing=True), "image ppc64 configuring\nimage ppc64 built\n"),
])
def test_progress_lines_are_whole_wherever_they_are_written(config, expected):
    what = "mips" if "gw1" in expected else "ppc64"
    assert written(config, [f"image {what} configuring", f"image {what} built"]) == expected
