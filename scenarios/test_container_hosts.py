"""Container hosts for real: a trixie container host (QEMU 10, libvirt 11) started by the run, every built-in
arch on it, next to this machine (Debian 12: QEMU 7.2, libvirt 9; its every arch is test_guest.py's); and a
container host killed mid-run.
"""

import json
import subprocess
import sys
import time

import pytest

from archmatrix.core.arches import default_arches
from archmatrix.core.checks import CHECKS
from scenarios.runs import assert_nothing_left, cells_of, finish, qemu_processes_of, read_until, real_run

BUILT_IN = default_arches()


def _this_label() -> str:
    from archmatrix.hosts.spec import default_label

    return default_label("qemu:///system")


def containers_of(run_id: str) -> list[str]:
    listed = subprocess.run(["docker", "ps", "-a", "-q", "--filter", f"label=archmatrix.run={run_id}"],
                            capture_output=True, text=True, check=True).stdout
    return listed.split()


def assert_no_container_left(run_id: str) -> None:
    assert containers_of(run_id) == []
    audit = subprocess.run([sys.executable, "-m", "archmatrix", "audit"], capture_output=True, text=True)
    # Other runs (the suite under -n) may have theirs running: only this run's must be gone.
    assert f"run {run_id}" not in audit.stdout and f"archmatrix-host-{run_id}-" not in audit.stdout, audit.stdout


@pytest.fixture(scope="module")
def side_by_side(tmp_path_factory):
    report_dir = tmp_path_factory.mktemp("side-by-side")
    # This machine's other cells are the suite's own (test_guest.py): here only aarch64 stands beside trixie's.
    process = real_run(report_dir, "--accel", "tcg", "--container-host", "trixie", "-n", "2", "-k", "trixie or aarch64")
    output, run_id = finish(process, timeout=1200)
    return report_dir, output, run_id, process.returncode


def test_every_built_in_arch_passes_on_a_trixie_container_host_next_to_this_machine(side_by_side):
    report_dir, output, run_id, status = side_by_side
    assert status == pytest.ExitCode.OK, output
    document = json.loads((report_dir / "matrix.json").read_text())
    labels = [host["label"] for host in document["hosts"]]
    assert len(labels) == 2 and labels[1] == "trixie"
    here, trixie = cells_of(report_dir, labels[0]), cells_of(report_dir, "trixie")
    assert set(here) == {"aarch64-tcg"}
    for arch in BUILT_IN:
        for cells in (here, trixie) if arch == "aarch64" else (trixie,):
            cell = cells[f"{arch}-tcg"]
            assert {check: cell["checks"][check]["outcome"] for check in CHECKS} == dict.fromkeys(CHECKS, "pass")
        # Over SSH too: on the container host through a tunnel of the harness's SSH connection into it.
        assert "tunnel" in trixie[f"{arch}-tcg"]["facts"]["ssh"]["via"]
        # Through the console stream on both; the container's boot files were uploaded into its run pool.
        assert trixie[f"{arch}-tcg"]["facts"]["kernel_on_host"].startswith("/var/lib/libvirt/images/archmatrix-pool-")
        assert "over SSH to root@archmatrix-host-trixie" in trixie[f"{arch}-tcg"]["facts"]["process_note"]
    assert_nothing_left(run_id)
    assert_no_container_left(run_id)


def test_the_matrix_shows_both_hosts_and_their_versions_side_by_side(side_by_side):
    report_dir, _, _, _ = side_by_side
    document = json.loads((report_dir / "matrix.json").read_text())
    here, trixie = document["hosts"]
    assert here["kind"] == "local" and trixie["kind"] == "container"
    assert here["libvirt_version"].startswith("9.") and here["hypervisor_version"].startswith("7.2")
    assert trixie["libvirt_version"].startswith("11.") and trixie["hypervisor_version"].startswith("10.")
    assert trixie["distribution"].startswith("Debian GNU/Linux 13")  # read over SSH
    machines = {(c["host"], c["id"]): c["facts"]["machine_canonical"] for c in document["cells"]
                if c["status"] == "pass"}
    assert machines[(here["label"], "aarch64-tcg")] == "virt-7.2"
    assert machines[("trixie", "aarch64-tcg")] == "virt-10.0"
    markdown = (report_dir / "matrix.md").read_text()
    assert f"| guest arch | {here['label']} tcg | trixie tcg |" in markdown
    assert "| aarch64 | ✅ pass" in markdown and "`virt-10.0`" in markdown
    html = (report_dir / "matrix.html").read_text()
    assert 'data-overview="trixie-aarch64-tcg" data-status="pass"' in html
    assert (report_dir / "consoles" / "trixie" / "aarch64-tcg.log").is_file()


def test_a_container_host_killed_mid_run_errors_its_cells_and_the_run_goes_on(tmp_path):
    process = real_run(tmp_path, "--arch", "aarch64,ppc64le,s390x", "--accel", "tcg", "--container-host", "trixie",
                       "-v")
    # Longest cells first: here's ppc64le, then trixie's (~7 s), then both s390x, then both aarch64.
    run_id = read_until(process, f"test_binary[{_this_label()}-ppc64le-tcg] PASSED")
    # Then trixie's ppc64le boots (after that host's half-second speed probe): its QEMU, seen from here, is a
    # ppc64le QEMU other than this machine's (which may still be being destroyed in the background).
    ours = set(qemu_processes_of(run_id))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if any("ppc64le-tcg" in line for line in set(qemu_processes_of(run_id)) - ours):
            break
        time.sleep(0.1)
    time.sleep(1)  # well inside its boot
    (container,) = containers_of(run_id)
    subprocess.run(["docker", "kill", container], check=True, capture_output=True)
    output, _ = finish(process)
    assert process.returncode == pytest.ExitCode.TESTS_FAILED, output
    here = cells_of(tmp_path, _this_label())
    trixie = cells_of(tmp_path, "trixie")
    assert [here[f"{arch}-tcg"]["status"] for arch in ("aarch64", "ppc64le", "s390x")] == ["pass"] * 3
    assert [trixie[f"{arch}-tcg"]["status"] for arch in ("aarch64", "ppc64le", "s390x")] == ["error"] * 3
    assert "was lost while ppc64le-tcg booted" in trixie["ppc64le-tcg"]["reason"]  # the cell in flight
    assert all("(host trixie)" in trixie[f"{arch}-tcg"]["reason"] for arch in ("aarch64", "s390x"))
    assert_nothing_left(run_id)
    assert_no_container_left(run_id)
