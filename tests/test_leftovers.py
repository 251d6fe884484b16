"""Telling abandoned harness leftovers from live runs, without libvirt."""

import os
import subprocess
from pathlib import Path

from archmatrix.hosts.leftovers import OWNER_FILE, owner_alive, owner_token, process_start, sweep_abandoned_run_dirs


def dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_this_process_is_alive_and_a_finished_one_is_not():
    assert owner_alive(owner_token(os.getpid()))
    assert process_start(dead_pid()) is None
    assert not owner_alive({"pid": str(dead_pid()), "pidstart": "1"})


def test_a_reused_pid_is_not_the_owner():
    token = owner_token(os.getpid())
    assert not owner_alive({"pid": token["pid"], "pidstart": str(int(token["pidstart"]) + 1)})


def test_malformed_tags_count_as_abandoned():
    assert not owner_alive({}) and not owner_alive({"pid": "x"})


def test_only_run_dirs_of_dead_owners_are_removed(tmp_path):
    live, dead, foreign = (tmp_path / "archmatrix-run-aaaa1111-x", tmp_path / "archmatrix-run-bbbb2222-y",
                           tmp_path / "archmatrix-run-cccc3333-z")
    for directory in (live, dead, foreign):
        directory.mkdir()
    mine = owner_token(os.getpid())
    (live / OWNER_FILE).write_text(f"{mine['pid']} {mine['pidstart']}\n")
    (dead / OWNER_FILE).write_text(f"{dead_pid()} 1\n")
    found = sweep_abandoned_run_dirs(tmp_path)
    assert [leftover.run for leftover in found] == ["bbbb2222"]
    assert live.exists() and not dead.exists() and foreign.exists()  # no owner file: not ours to judge


def test_run_dir_and_staged_files_are_private(tmp_path):
    import stat

    from archmatrix.guest.staging import StagedFiles
    from archmatrix.hosts.host import RunDir
    from archmatrix.images.cache import Image

    run = RunDir.create()
    try:
        assert stat.S_IMODE(run.path.stat().st_mode) == 0o711  # QEMU may reach files, nobody may list
        kernel, initrd = tmp_path / "k", tmp_path / "i"
        kernel.write_bytes(b"k")
        initrd.write_bytes(b"i")
        image = Image("aarch64", kernel, initrd, "x", "y", "built-in")
        placed = StagedFiles(run.path).place(image, "cell")
        for staged in (placed.kernel, placed.initrd):
            assert stat.S_IMODE(Path(staged).stat().st_mode) == 0o600
    finally:
        import shutil

        shutil.rmtree(run.path)
