"""The order cells run in: the same in every xdist worker, whatever order they were collected in."""

import random

from archmatrix.core.arches import ARCHES
from archmatrix.core.plan import CellKey
from archmatrix.hosts.spec import HostSpec
from archmatrix.options import settings_for
from archmatrix.plugin.cells import arches_in
from archmatrix.run.order import build_rank, cells_in_order


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
        orders.add(tuple(cells_in_order(shuffled, settings, specs, lambda arch: 0 if arch != "s390x" else 1)))
    assert len(orders) == 1
    first = next(iter(orders))
    assert [key.arch for key in first[-8:]] == ["s390x"] * 8, "cells whose image is not ready go last"


def test_on_a_cold_cache_cached_arches_go_first_then_downloads_then_kernels_built_from_source():
    keys = [CellKey(arch, "tcg", "local") for arch in ("ppc64", "aarch64", "mips", "s390x", "x86_64")]
    cached = {"x86_64"}
    order = cells_in_order(keys, settings_for([]), [HostSpec("local", "qemu:///system", kind="local")],
                           lambda arch: build_rank(ARCHES[arch], arch in cached))
    assert [key.arch for key in order][0] == "x86_64"
    assert {key.arch for key in order[1:3]} == {"aarch64", "s390x"}
    assert {key.arch for key in order[3:]} == {"ppc64", "mips"}, "the source builds run in the background meanwhile"


def test_the_arches_of_cell_test_ids_as_xdist_reports_them():
    ids = ["archmatrix/scenarios/test_guest.py::test_boot[ppc64-tcg]@ppc64-tcg",
           "archmatrix/scenarios/test_guest.py::test_ssh[rack-1-mips-kvm-nova]@rack-1-mips-kvm-nova",
           "archmatrix/scenarios/test_guest.py::test_boot[lab_aarch64-x86_64-tcg]@lab_aarch64-x86_64-tcg",
           "tests/test_unrelated.py::test_x", "tests/test_other.py::test_y[tcg]"]
    assert arches_in(ids) == ["ppc64", "mips", "x86_64"]
