"""The guests' network on the host (forwarded ports another process takes first, what of the host a guest
reaches), and a user's own scenario on the `guest` fixture landing in the matrix."""

import dataclasses
import socket
import subprocess
import threading

import pytest

from archmatrix.core.arches import ARCHES
from archmatrix.core.checks import judge
from archmatrix.core.plan import make_plan
from archmatrix.guest.live import LiveGuest
from archmatrix.guest.observe import boot_and_observe
from archmatrix.guest.reach import network_facts
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


def _host_loopback_listeners() -> list[int]:
    """The TCP ports listening on this machine's 127.0.0.1 now (ss), whoever's."""
    listing = subprocess.run(["ss", "-ltnH", "src", "127.0.0.1"], capture_output=True, text=True, check=True).stdout
    return sorted({int(line.split()[3].rsplit(":", 1)[1]) for line in listing.splitlines()})


def test_the_guest_reaches_nothing_of_the_host_but_the_network_checks_file(archmatrix_run, archmatrix_host):
    """From inside a guest: a service planted on the host's loopback, and every other listening there, refuse it
    through 10.0.2.2; SSH in and the network check's file still work."""
    site = archmatrix_host.site
    accepted = []
    with socket.socket() as planted:  # a throwaway service of the host's, on its loopback only
        planted.bind(("127.0.0.1", 0))
        planted.listen()
        planted.settimeout(0.2)
        planted_port = planted.getsockname()[1]
        stop = threading.Event()

        def count_accepts() -> None:
            while not stop.is_set():
                try:
                    accepted.append(planted.accept()[0].close())
                except (TimeoutError, OSError):
                    continue

        watcher = threading.Thread(target=count_accepts)
        watcher.start()
        plan = dataclasses.replace(make_plan(ARCHES["aarch64"], "tcg", archmatrix_host.capabilities, None),
                                   cell_id="reach-aarch64")
        guest = LiveGuest(archmatrix_host.connection(), plan, archmatrix_run.images.of(ARCHES["aarch64"]), site)
        try:
            ports = sorted({planted_port, *_host_loopback_listeners()})
            tries = {port: guest.run(f"timeout 10 wget -q -O /dev/null http://10.0.2.2:{port}/ 2>&1; echo $?")
                     for port in ports}
            network = network_facts(guest.ssh, site.network)  # the network check's own fetch, in the same guest
        finally:
            guest.close()
            stop.set()
            watcher.join()
    reached = {port: said.stdout.strip() for port, said in tries.items() if "Connection refused" not in said.stdout}
    print(f"host loopback ports tried through 10.0.2.2: {ports}; reached: {reached or 'none'}; planted listener "
          f"127.0.0.1:{planted_port} accepted {len(accepted)} connection(s)")
    assert accepted == [], "the guest reached a service on the host's loopback"
    assert reached == {}, f"the guest reached these ports of the host's loopback: {reached}"
    assert network.status == 0 and network.seen_sha256 == network.expected_sha256, network
