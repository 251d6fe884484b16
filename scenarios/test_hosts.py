"""Several libvirt hosts in one run, for real: the upload path against the staging path, an
unreachable host among good ones, and the storage pool a crashed run leaves behind.

This machine's libvirtd is reached twice: as `here` (qemu:///system: boot files staged, QEMU's
process read from /proc) and as `viapool` (its UNIX socket named in the URI, which the harness
treats like any remote host: boot files uploaded into a storage pool through the connection,
only the domain XML checked for the binary).
"""

import subprocess

import pytest

from archmatrix.cleanup.names import pool_name
from archmatrix.cleanup.owner import Owner, this_boot, this_machine
from archmatrix.core.checks import CHECKS, SSH_CHECKS
from archmatrix.guest.volumes import pool_xml
from scenarios.runs import assert_nothing_left, cells_of, finish, real_run

HERE = "here=qemu:///system"
VIA_POOL = "viapool=qemu+unix:///system?socket=/run/libvirt/libvirt-sock"


def test_uploaded_and_staged_boot_files_give_the_same_verdicts(tmp_path):
    process = real_run(tmp_path, "--arch", "aarch64,s390x", "--accel", "tcg", "--libvirt-uri", HERE,
                       "--libvirt-uri", VIA_POOL, "-n", "2", "-v")
    output, run_id = finish(process)
    assert process.returncode == pytest.ExitCode.OK, output
    here, via_pool = cells_of(tmp_path, "here"), cells_of(tmp_path, "viapool")
    five = ("binary", "machine", "accelerator", "console", "boot")
    for cell_id in ("aarch64-tcg", "s390x-tcg"):
        assert {c: v["outcome"] for c, v in here[cell_id]["checks"].items()} == dict.fromkeys(CHECKS, "pass")
        assert {c: v["outcome"] for c, v in via_pool[cell_id]["checks"].items()} == \
               dict.fromkeys(five, "pass") | dict.fromkeys(SSH_CHECKS, "unsupported")
        # A remote host without an SSH way in: its guests' forwarded ports cannot be reached, and it says so.
        assert "no SSH way into it" in via_pool[cell_id]["checks"]["ssh"]["detail"]
        assert here[cell_id]["checks"]["console"]["detail"] == via_pool[cell_id]["checks"]["console"]["detail"]
        assert "/archmatrix-pool-" not in here[cell_id]["facts"]["plan"]
    assert "only the domain XML" in via_pool["aarch64-tcg"]["facts"]["process_note"]
    assert "from /run/libvirt/qemu" in here["aarch64-tcg"]["facts"]["process_note"]
    assert "test_boot[viapool-s390x-tcg]" in output  # test ids name the host: -k viapool picks it
    assert_nothing_left(run_id)


def test_an_unreachable_host_errors_its_cells_and_the_others_go_on(tmp_path):
    process = real_run(tmp_path, "--arch", "mipsel", "--accel", "tcg", "--libvirt-uri", HERE,
                       "--libvirt-uri", "gone=qemu+tcp://127.0.0.1:1/system", "-v")  # nothing listens on port 1
    output, run_id = finish(process)
    assert process.returncode == pytest.ExitCode.TESTS_FAILED, output
    assert cells_of(tmp_path, "here")["mipsel-tcg"]["status"] == "pass"
    gone = cells_of(tmp_path, "gone")["mipsel-tcg"]
    assert gone["status"] == "error"
    assert "cannot connect to libvirt at qemu+tcp://127.0.0.1:1/system (host gone)" in gone["reason"]
    assert "Connection refused" in gone["reason"]  # libvirt's own words
    assert "test_boot[here-mipsel-tcg] PASSED" in output
    assert_nothing_left(run_id)


# Alone on the host: under ./run test's two streams, the other stream's run sweeps this machine's leftovers too and
# may delete the planted pool first (seen once: this run then had nothing to report).
@pytest.mark.exclusive_host
def test_a_pool_left_by_a_crashed_run_is_deleted_and_reported(tmp_path):
    dead = subprocess.Popen(["true"])
    dead.wait()  # a pid whose process is gone
    name = pool_name("0badc0de", Owner(str(dead.pid), "1", this_boot(), this_machine()))
    xml = tmp_path / "pool.xml"
    xml.write_text(pool_xml(name))
    subprocess.run(["virsh", "-q", "pool-define", str(xml)], check=True, capture_output=True)
    subprocess.run(["virsh", "-q", "pool-build", name], check=True, capture_output=True)
    subprocess.run(["virsh", "-q", "pool-start", name], check=True, capture_output=True)
    try:
        process = real_run(tmp_path, "--arch", "mipsel", "--accel", "tcg", "--libvirt-uri", VIA_POOL)
        output, run_id = finish(process)
        assert process.returncode == pytest.ExitCode.OK, output
        assert f"deleted leftover storage pool {name} of run 0badc0de on viapool" in output
        listed = subprocess.run(["virsh", "pool-list", "--all", "--name"], capture_output=True, text=True).stdout
        assert name not in listed.split()
        assert_nothing_left(run_id)
    finally:
        subprocess.run(["virsh", "-q", "pool-destroy", name], capture_output=True)
        subprocess.run(["virsh", "-q", "pool-delete", name], capture_output=True)
        subprocess.run(["virsh", "-q", "pool-undefine", name], capture_output=True)
