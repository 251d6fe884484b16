"""Telling what crashed runs of this machine left from what live runs and other machines own, without libvirt."""

import os
import shutil
import stat
import subprocess

from archmatrix.cleanup import sweep
from archmatrix.cleanup.kinds import container_found
from archmatrix.cleanup.names import domain_tag, pool_name, pool_tag, write_owner_file
from archmatrix.cleanup.owner import Owner, process_start, this_boot, this_machine
from archmatrix.cleanup.scratch import ScratchArea

# One entry of Docker's container list (GET /containers/json), recorded from a container host of a run.
DOCKER_LISTING = {
    "Id": "5e78948b14ab4726c157cd3962c51cbf268be7678840d385ce7da06ef83ff850",
    "Names": ["/archmatrix-host-trixie-3f2a9c1d-0a1b2c"],
    "Image": "archmatrix-host:trixie-0dd0cb62709a1b54",
    "Command": "/usr/sbin/libvirtd",
    "Labels": {
        "archmatrix.dir": "/tmp/archmatrix-host-3f2a9c1d-k2j4h5g6",
        "archmatrix.pid": "4242",
        "archmatrix.pidstart": "987654",
        "archmatrix.boot": "0123456789ab",
        "archmatrix.machine": "fedcba987654",
        "archmatrix.recipe": "0dd0cb62709a1b54",
        "archmatrix.release": "trixie",
        "archmatrix.run": "3f2a9c1d",
        "org.testcontainers": "true",
    },
    "State": "running",
    "HostConfig": {"NetworkMode": "none"},
}


def dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def dead_owner() -> Owner:
    return Owner(str(dead_pid()), "1", this_boot(), this_machine())


def test_this_process_is_alive_and_a_finished_one_is_gone():
    assert not Owner.of_this_process().gone
    assert process_start(dead_pid()) is None
    assert dead_owner().gone


def test_a_reused_pid_is_not_the_owner():
    mine = Owner.of_this_process()
    assert Owner(mine.pid, str(int(mine.pidstart) + 1), mine.boot, mine.machine).gone


def test_another_machines_owner_is_never_gone_to_us_and_an_earlier_boots_always():
    mine = Owner.of_this_process()
    assert not Owner(str(dead_pid()), "1", mine.boot, "0therm4chine").gone  # its pids mean nothing here
    assert Owner(mine.pid, mine.pidstart, "0ldb00t", mine.machine).gone  # this machine rebooted since


def test_a_tag_without_a_machine_is_not_ours_to_judge():
    assert not Owner.from_tag({"pid": str(dead_pid()), "pidstart": "1"}).gone


def test_a_domain_tag_and_a_pool_name_carry_run_and_owner():
    owner = Owner("42", "4242", "b007", "m4chine")
    assert pool_tag(pool_name("cafe01", owner)) == {"run": "cafe01", "machine": "m4chine", "boot": "b007",
                                                     "pid": "42", "pidstart": "4242"}
    assert pool_tag("someone-elses-pool") is None
    assert domain_tag("<domain><name>someone-elses</name></domain>") is None


def test_a_docker_listing_names_the_container_its_run_and_its_owner():
    found = container_found(DOCKER_LISTING)
    assert (found.name, found.run) == ("archmatrix-host-trixie-3f2a9c1d-0a1b2c (running)", "3f2a9c1d")
    assert found.owner == Owner("4242", "987654", "0123456789ab", "fedcba987654")
    assert found.handle[1] == "/tmp/archmatrix-host-3f2a9c1d-k2j4h5g6"
    assert not found.owner.gone  # another machine's: left alone


def test_only_run_and_host_dirs_of_gone_owners_of_this_machine_are_removed(tmp_path):
    dirs = {name: tmp_path / name for name in ("archmatrix-run-aaaa1111-x", "archmatrix-run-bbbb2222-y",
                                               "archmatrix-run-cccc3333-z", "archmatrix-run-dddd4444-w",
                                               "archmatrix-host-eeee5555-v")}
    for directory in dirs.values():
        directory.mkdir()
    write_owner_file(dirs["archmatrix-run-aaaa1111-x"], Owner.of_this_process())
    write_owner_file(dirs["archmatrix-run-bbbb2222-y"], dead_owner())
    write_owner_file(dirs["archmatrix-run-dddd4444-w"], Owner(str(dead_pid()), "1", "b00t", "0therm4chine"))
    write_owner_file(dirs["archmatrix-host-eeee5555-v"], dead_owner())
    found = sweep.abandoned_here(parent=tmp_path)
    assert sorted(leftover.run for leftover in found) == ["bbbb2222", "eeee5555"]
    assert [path.name for path in sorted(tmp_path.iterdir())] == [
        "archmatrix-run-aaaa1111-x", "archmatrix-run-cccc3333-z", "archmatrix-run-dddd4444-w"]  # no owner file: kept


def test_scratch_whose_builder_is_gone_is_found_and_a_live_builders_is_not(tmp_path):
    area = ScratchArea(tmp_path)
    with area.lock("aarch64"):
        live = area.new("aarch64")
        killed = area.new("mips")  # its lock is free: its builder was killed
        assert area.abandoned() == [killed]
    assert live in area.abandoned()
    with area.lock("mips"):
        assert area.stale("mips") == [killed] and not killed.exists()


def test_run_dir_and_staged_files_are_private(tmp_path):
    from archmatrix.guest.staging import StagedFiles
    from archmatrix.images.image import Image
    from archmatrix.run.rundir import RunDir

    run = RunDir.planned(tmp_path)
    assert not run.path.exists()  # planned: nothing made until a cell needs it
    assert run.ensure() and not run.ensure()  # made once, whoever asks
    try:
        assert stat.S_IMODE(run.path.stat().st_mode) == 0o711  # QEMU may reach files, nobody may list
        kernel, initrd = tmp_path / "k", tmp_path / "i"
        kernel.write_bytes(b"k")
        initrd.write_bytes(b"i")
        placed = StagedFiles(run.path).place(Image("aarch64", kernel, initrd, "x", "y", "built-in"), "cell", "")
        for staged in (placed.kernel, placed.initrd):
            assert stat.S_IMODE(os.stat(staged).st_mode) == 0o600
    finally:
        shutil.rmtree(run.path)
