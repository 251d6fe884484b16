"""The order cells run in: the same in every xdist worker, whatever order they were collected in."""

import random

from archmatrix.core.plan import CellKey
from archmatrix.hosts.spec import HostSpec
from archmatrix.options import settings_for
from archmatrix.run.pipeline import cells_in_order


def test_cells_of_equal_cost_on_two_hosts_come_in_one_order_whatever_the_order_given():
    # Same arch on two hosts ties on (ready, expected cost): the order once depended on set iteration order,
    # which differs between worker processes, and pytest-xdist refused the run ("Different tests were collected").
    keys = [CellKey(arch, accel, host, nova=nova) for arch in ("aarch64", "s390x", "x86_64")
            for accel in ("tcg", "kvm") for host in ("local", "trixie") for nova in (False, True)]
    settings = settings_for([])
    specs = [HostSpec("local", "qemu:///system", kind="local"), HostSpec("trixie", "qemu+tcp://x/system",
                                                                         kind="container")]
    orders = set()
    for seed in range(20):
        shuffled = keys[:]
        random.Random(seed).shuffle(shuffled)
        orders.add(tuple(cells_in_order(shuffled, settings, specs, lambda arch: arch != "s390x")))
    assert len(orders) == 1
    first = next(iter(orders))
    assert [key.arch for key in first[-8:]] == ["s390x"] * 8, "cells whose image is not ready go last"
