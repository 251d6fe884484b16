"""The guests' network on the host (forwarded ports another process takes first), and a user's own
scenario on the `guest` fixture landing in the matrix."""

import dataclasses
import socket

import pytest

from archmatrix.core.arches import ARCHES
from archmatrix.core.checks import judge
from archmatrix.core.plan import make_plan
from archmatrix.guest.observe import boot_and_observe
from scenarios.runs import assert_nothing_left, cells_of, finish, real_run


def test_a_port_taken_before_qemu_binds_it_is_drawn_again(archmatrix_run, archmatrix_host, monkeypatch):
    network = archmatrix_host.site.network
    with socket.socket() as squatter:  # another process on the port the harness drew, before QEMU binds it
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        drawn = [taken]
        real_free_port = network.free_port
        monkeypatch.setattr(network, "free_port", lambda: drawn.pop() if drawn else real_free_port())
        plan = dataclasses.replace(make_plan(ARCHES["aarch64"], "tcg", archmatrix_host.capabilities, None),
                                   cell_id="port-taken-aarch64")
        image = archmatrix_run.images.of(ARCHES["aarch64"])
        observation = boot_and_observe(archmatrix_host.connection(), plan, image, archmatrix_host.site)
    assert not observation.start_error and drawn == []
    assert observation.ssh.port != taken
    assert judge("ssh", plan, observation).passed and judge("network", plan, observation).passed


def test_a_failing_guest_scenario_lands_in_the_matrix_as_its_own_check(tmp_path):
    scenario = tmp_path / "test_mine.py"
    scenario.write_text(
        "def test_kernel_is_not_too_old(guest):\n"
        "    major = int(guest.run('uname -r').stdout.split('.')[0])\n"
        "    assert major >= 99, f'kernel {major} is too old'\n")
    process = real_run(tmp_path, "--arch", "aarch64", "--accel", "tcg", test_path=scenario)
    output, run_id = finish(process)
    assert process.returncode == pytest.ExitCode.TESTS_FAILED, output
    cell = cells_of(tmp_path)["aarch64-tcg"]
    mine = cell["checks"]["kernel-is-not-too-old"]
    assert mine["outcome"] == "fail" and "kernel 6 is too old" in mine["detail"]
    assert cell["status"] == "fail"
    assert_nothing_left(run_id)
