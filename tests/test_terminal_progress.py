"""Build progress on the terminal: lines that never run into each other, alone or under xdist."""

import os
from types import SimpleNamespace

import pytest

from archmatrix.plugin.state import progress_to_terminal


def config_of(worker=None):
    return SimpleNamespace(**({"workerinput": {"workerid": worker}} if worker else {}))


def written(config, lines):
    read_end, write_end = os.pipe()
    say = progress_to_terminal(config, write_end)
    for line in lines:
        say(line)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        return pipe.read()


@pytest.mark.parametrize("config, prefix", [
    (config_of(), ""),  # alone, or the controller's background builds under xdist
    (config_of(worker="gw1"), "[gw1] "),
])
def test_each_progress_line_starts_a_line_of_its_own(config, prefix):
    # pytest leaves its line of dots open, and the workers' and the controller's lines come in any order: a line
    # that waited for another's end ran on after it ("...(static)[gw1] image mips ...").
    lines = ["image ppc64 configuring", "image ppc64 built"]
    assert written(config, lines) == "".join(f"\n{prefix}{line}" for line in lines)
