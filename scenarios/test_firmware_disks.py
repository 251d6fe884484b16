"""Disks booted through each arch's firmware, as Nova boots a Glance image (issue: bring your own image).

`--boot-from disk` puts the built-in kernel and init on a disk the firmware itself boots: UEFI and GRUB on
aarch64 and x86_64, SLOF and GRUB on ppc64le, the s390-ccw BIOS on s390x (archmatrix/images/firmware_disk.py).
A user's disk that cannot be booted stops its cell before the boot, naming the disk; one that boots nothing
fails its boot check, never passes it.
"""

import os
import stat
import subprocess
import tempfile
import threading
from pathlib import Path

import pytest

from archmatrix.images.firmware_disk import mbr
from scenarios.runs import assert_nothing_left, cells_of, finish, real_run

# What each firmware and GRUB print on the serial console before the kernel's first line.
FIRMWARE_MARKS = {
    "aarch64": ("UEFI firmware", "GRUB: loading the kernel", "EFI stub: Booting Linux Kernel"),
    "x86_64": ("BdsDxe: starting", "GRUB: loading the kernel"),
    "ppc64le": ("SLOF", "Successfully loaded", "GRUB: loading the kernel"),
    "s390x": ("Using virtio-blk.", "ISO boot image size verified"),
}


def test_built_in_disks_boot_through_each_arch_firmware_and_pass_every_check(tmp_path):
    process = real_run(tmp_path, "--arch", ",".join(FIRMWARE_MARKS), "--accel", "tcg", "--boot-from", "disk",
                       "-n", "2")
    output, run_id = finish(process)
    assert process.returncode == pytest.ExitCode.OK, output
    cells = cells_of(tmp_path)
    assert set(cells) == {f"{arch}-tcg" for arch in FIRMWARE_MARKS}
    for arch, marks in FIRMWARE_MARKS.items():
        cell = cells[f"{arch}-tcg"]
        assert {check["outcome"] for check in cell["checks"].values()} == {"pass"}, cell["checks"]
        assert "from a virtio disk" in cell["facts"]["plan"]
        assert cell["facts"]["image"]["disk_format"] == "raw"
        console = (tmp_path / "consoles" / f"{arch}-tcg.log").read_text(errors="replace")
        for mark in marks:
            assert mark in console, f"{arch}: {mark!r} not on its console"
        assert "archmatrix.ssh_key=" in console  # the cell's command line, written into its copy of the disk
    assert "firmware efi" in cells["aarch64-tcg"]["facts"]["plan"]
    assert "firmware efi" in cells["x86_64-tcg"]["facts"]["plan"]
    assert_nothing_left(run_id)  # the disk copies and UEFI variable stores were files of the run


@pytest.fixture
def bad_disks(tmp_path):
    """A missing disk, a qcow2 cut short, a vmdk, and a raw disk whose partition table holds nothing bootable."""
    whole = tmp_path / "whole.raw"
    whole.write_bytes(mbr([(0x83, 2048, 4096, True)]))
    with open(whole, "r+b") as disk:
        disk.truncate((2048 + 4096) * 512)
        disk.seek(2048 * 512)
        disk.write(b"\xa5" * (4096 * 512))  # data, so the qcow2 has clusters to lose
    qcow2 = tmp_path / "cut.qcow2"
    subprocess.run(["qemu-img", "convert", "-O", "qcow2", str(whole), str(qcow2)], check=True)
    data = qcow2.read_bytes()
    qcow2.write_bytes(data[:len(data) // 2])
    vmdk = tmp_path / "disk.vmdk"
    subprocess.run(["qemu-img", "create", "-q", "-f", "vmdk", str(vmdk), "16M"], check=True)
    return {"aarch64": tmp_path / "missing.qcow2", "x86_64": qcow2, "s390x": vmdk, "ppc64le": whole}


def test_disks_that_cannot_boot_stop_their_cell_and_a_disk_with_nothing_to_boot_fails_boot(tmp_path, bad_disks):
    images = [argument for arch, path in bad_disks.items() for argument in ("--image", f"{arch}={path}")]
    # mipsel has no --image: --boot-from disk asks for its built-in firmware disk, which does not exist.
    process = real_run(tmp_path / "report", "--arch", ",".join([*bad_disks, "mipsel"]), "--accel", "tcg",
                       "-k", "boot", "--boot-from", "disk", "--boot-timeout", "ppc64le=20", *images)
    output, run_id = finish(process)
    assert process.returncode == pytest.ExitCode.TESTS_FAILED, output
    boot = {cell_id.removesuffix("-tcg"): cell["checks"]["boot"]
            for cell_id, cell in cells_of(tmp_path / "report").items()}
    assert boot["aarch64"]["outcome"] == "error"
    assert f"the aarch64 disk image {bad_disks['aarch64']} is missing or unreadable" in boot["aarch64"]["detail"]
    assert boot["x86_64"]["outcome"] == "error" and "is damaged or truncated" in boot["x86_64"]["detail"]
    assert boot["s390x"]["outcome"] == "error"
    assert "is vmdk, which the harness does not boot; valid: qcow2 or raw" in boot["s390x"]["detail"]
    # The planted fault: SLOF finds no boot loader on it, so the boot check fails, and says what it waited for.
    assert boot["ppc64le"]["outcome"] == "fail"
    assert "success pattern 'login: ' not seen: timeout after 20 s" in boot["ppc64le"]["detail"]
    mipsel = cells_of(tmp_path / "report")["mipsel-tcg"]
    assert mipsel["status"] == "unsupported" and "no built-in firmware disk for mipsel" in mipsel["reason"]
    consoles = {path.stem for path in (tmp_path / "report" / "consoles").glob("*.log")}
    assert consoles == {"ppc64le-tcg"}  # the other three stopped before their boot
    assert_nothing_left(run_id)


class OwnerWatch:
    """Every (owner, group, mode) a file shows while a run goes on, looked at every 20 ms."""

    def __init__(self, path):
        self.path = path
        self.seen = {self._now()}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _now(self):
        status = os.stat(self.path)
        return status.st_uid, status.st_gid, stat.S_IMODE(status.st_mode)

    def _watch(self):
        while not self._stop.wait(0.02):
            self.seen.add(self._now())

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.seen.add(self._now())


@pytest.fixture
def host_file():
    """A root-only file (0600) in a directory the QEMU user may pass through, as /etc is."""
    with tempfile.TemporaryDirectory(prefix="archmatrix-host-file-") as directory:
        os.chmod(directory, 0o711)
        yield Path(directory) / "host-secret"


def test_a_qcow2_naming_a_host_file_is_refused_and_the_file_is_never_handed_to_qemu(tmp_path, host_file):
    # libvirt's dynamic ownership chowns every file of a disk's backing chain to the QEMU user: a user's image
    # could name any host file, even one only root may read.
    secret = host_file
    secret.write_bytes(b"root only\n" * 100000)
    secret.chmod(0o600)
    disk = tmp_path / "backed.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", str(secret), str(disk)],
                   check=True)
    with OwnerWatch(secret) as watch:
        process = real_run(tmp_path / "report", "--arch", "aarch64", "--accel", "tcg", "-k", "boot",
                           "--image", f"aarch64={disk}", "--boot-timeout", "aarch64=20")
        output, run_id = finish(process)
    assert watch.seen == {(0, 0, 0o600)}, f"{secret} was handed to another user: {watch.seen}"
    assert process.returncode == pytest.ExitCode.TESTS_FAILED, output
    boot = cells_of(tmp_path / "report")["aarch64-tcg"]["checks"]["boot"]
    assert boot["outcome"] == "error", boot
    assert f"the aarch64 disk image {disk} names another file it would read at boot: backing file" in boot["detail"]
    assert f"qemu-img convert -O qcow2 {disk} STANDALONE.qcow2" in boot["detail"]
    assert_nothing_left(run_id)
