"""Disks: a user's checked before boot, and the firmware disks' layout and command line slot."""

import contextlib
import json
import os
import shutil
import struct
import subprocess
import threading
from pathlib import Path

import pytest

from archmatrix.images import disk_image
from archmatrix.images.disk_image import DiskImageError, inspect_disk, looks_like_disk
from archmatrix.images.firmware_disk import (
    S390_COMMAND_LINE,
    S390_INITRD_SIZE,
    S390_INITRD_START,
    S390_IPL_MAGIC,
    FirmwareDiskError,
    fat_image,
    grub_cmdline_cfg,
    mbr,
    partitioned_disk,
    s390_boot_image,
    write_cmdline,
)
from archmatrix.options import OptionError
from archmatrix.options.values import check_user_image

needs_qemu_img = pytest.mark.skipif(shutil.which("qemu-img") is None,
                                    reason="qemu-img is not installed (Debian's qemu-utils; ./run installs it)")
needs_mtools = pytest.mark.skipif(shutil.which("mcopy") is None or shutil.which("mkfs.vfat") is None,
                                  reason="mtools and dosfstools are not installed (./run installs them)")


def raw_disk(path, partitions, size_sectors):
    path.write_bytes(mbr(partitions))
    with open(path, "r+b") as disk:
        disk.truncate(size_sectors * 512)
    return path


def test_a_dos_partition_table_entry_is_where_firmware_reads_it():
    table = mbr([(0x41, 2048, 100, True), (0x0C, 4096, 200, False)])
    assert len(table) == 512 and table[510:] == b"\x55\xaa"
    assert table[446] == 0x80 and table[446 + 4] == 0x41 and struct.unpack_from("<II", table, 446 + 8) == (2048, 100)
    assert table[462] == 0 and table[462 + 4] == 0x0C and struct.unpack_from("<II", table, 462 + 8) == (4096, 200)


def test_the_grub_command_line_is_quoted_so_nothing_in_it_is_grub_syntax():
    quoted = b'set archmatrix_cmdline="console=ttyS0 a=\\"b c\\" \\$x \\\\"\n'
    assert grub_cmdline_cfg('console=ttyS0 a="b c" $x \\') == quoted


def test_the_s390_boot_image_announces_initrd_and_command_line_in_the_kernels_parameter_area():
    kernel = bytearray(0x20000)
    kernel[8:32] = S390_IPL_MAGIC
    image = s390_boot_image(bytes(kernel), b"INITRD", "console=ttysclp0")
    start, size = struct.unpack_from(">QQ", image, S390_INITRD_START)
    assert (start, size) == (1 << 20, 6) and image[start:start + size] == b"INITRD"
    assert S390_INITRD_SIZE == S390_INITRD_START + 8
    assert image[S390_COMMAND_LINE:S390_COMMAND_LINE + 17] == b"console=ttysclp0\0"


def test_a_kernel_the_s390_ccw_bios_would_not_ipl_is_refused():
    with pytest.raises(FirmwareDiskError, match="IPL record"):
        s390_boot_image(bytes(0x20000), b"", "")


def test_a_cells_command_line_replaces_the_disks_in_the_s390_parameter_area(tmp_path):
    disk = tmp_path / "disk.raw"
    disk.write_bytes(b"\xff" * 4096)
    write_cmdline(disk, "s390-parmarea", 1024, "console=ttysclp0 archmatrix.ssh_key=AAAA")
    data = disk.read_bytes()
    assert data[1024:1024 + 42] == b"console=ttysclp0 archmatrix.ssh_key=AAAA\0\0" and data[1024 + 895] == 0
    with pytest.raises(FirmwareDiskError, match="is 900 bytes; its parameter area takes 895"):
        write_cmdline(disk, "s390-parmarea", 1024, "x" * 900)


@needs_mtools
def test_a_cells_command_line_is_written_into_the_fat_partition_grub_reads(tmp_path):
    (tmp_path / "kernel").write_bytes(b"k" * 4096)
    (tmp_path / "cmdline.cfg").write_bytes(grub_cmdline_cfg("console=ttyAMA0"))
    fat_image(tmp_path / "fat.img", {"archmatrix/kernel": tmp_path / "kernel",
                                     "archmatrix/cmdline.cfg": tmp_path / "cmdline.cfg"})
    offsets = partitioned_disk(tmp_path / "disk.raw", [(0xEF, tmp_path / "fat.img", True)])
    write_cmdline(tmp_path / "disk.raw", "grub-fat", offsets[0], "console=ttyAMA0 archmatrix.ssh_key=AAAA")
    shown = subprocess.run(["mtype", "-i", f"{tmp_path / 'disk.raw'}@@{offsets[0]}", "::archmatrix/cmdline.cfg"],
                           capture_output=True, text=True, env={"MTOOLS_SKIP_CHECK": "1"}, check=True).stdout
    assert shown == 'set archmatrix_cmdline="console=ttyAMA0 archmatrix.ssh_key=AAAA"\n'
    assert [path.name for path in tmp_path.iterdir() if "cmdline" in path.name] == ["cmdline.cfg"]  # no scratch


def test_a_single_image_file_is_a_disk_by_its_name_or_its_first_bytes(tmp_path):
    assert looks_like_disk(tmp_path / "missing.qcow2")
    assert looks_like_disk(raw_disk(tmp_path / "disk", [(0x83, 2048, 10, False)], 4096))
    (tmp_path / "vmlinuz").write_bytes(b"MZ" + bytes(1000))
    assert not looks_like_disk(tmp_path / "vmlinuz")


@needs_qemu_img
class TestAUsersDiskIsCheckedBeforeItBoots:
    def test_missing(self, tmp_path):
        with pytest.raises(DiskImageError, match=r"the aarch64 disk image .*missing.qcow2 is missing or unreadable"):
            inspect_disk("aarch64", tmp_path / "missing.qcow2")

    def test_a_whole_partitioned_raw_disk_and_a_qcow2_of_it(self, tmp_path):
        disk = raw_disk(tmp_path / "disk.raw", [(0x83, 2048, 2048, True)], 4096)
        assert inspect_disk("x86_64", disk) == "raw"
        subprocess.run(["qemu-img", "convert", "-O", "qcow2", str(disk), str(tmp_path / "disk.qcow2")], check=True)
        assert inspect_disk("x86_64", tmp_path / "disk.qcow2") == "qcow2"

    def test_a_raw_disk_shorter_than_its_partition_table_says(self, tmp_path):
        disk = raw_disk(tmp_path / "disk.raw", [(0x83, 2048, 8192, True)], 4096)
        with pytest.raises(DiskImageError, match=r"is truncated: its mbr layout reaches byte 5242880, the file has "
                                                 r"2097152"):
            inspect_disk("x86_64", disk)

    def test_a_qcow2_cut_short(self, tmp_path):
        disk = raw_disk(tmp_path / "disk.raw", [(0x83, 2048, 2048, True)], 4096)
        disk.write_bytes(disk.read_bytes()[:512] + b"\xa5" * (4095 * 512))
        qcow2 = tmp_path / "disk.qcow2"
        subprocess.run(["qemu-img", "convert", "-O", "qcow2", str(disk), str(qcow2)], check=True)
        qcow2.write_bytes(qcow2.read_bytes()[:qcow2.stat().st_size // 2])
        with pytest.raises(DiskImageError, match="is damaged or truncated: qemu-img check finds"):
            inspect_disk("x86_64", qcow2)

    def test_a_format_nova_would_not_boot_here(self, tmp_path):
        subprocess.run(["qemu-img", "create", "-q", "-f", "vmdk", str(tmp_path / "disk.vmdk"), "1M"], check=True)
        assert looks_like_disk(tmp_path / "disk.vmdk")
        with pytest.raises(DiskImageError, match="is vmdk, which the harness does not boot; valid: qcow2 or raw"):
            inspect_disk("s390x", tmp_path / "disk.vmdk")

    def test_raw_bytes_no_firmware_would_boot(self, tmp_path):
        (tmp_path / "blob.img").write_bytes(bytes(8192))
        with pytest.raises(DiskImageError, match="neither partitioned .* nor an ISO 9660 image"):
            inspect_disk("ppc64le", tmp_path / "blob.img")


def qemu_img(*args):
    subprocess.run(["qemu-img", *args], check=True, capture_output=True)


@pytest.fixture
def host_file(tmp_path):
    """A root-only host file an image could name: what must never become a disk's backing or data."""
    secret = tmp_path / "host-secret"
    secret.write_bytes(b"not for guests\n" * 4096)
    secret.chmod(0o600)
    return secret


@needs_qemu_img
class TestADiskThatNamesAnotherFileIsRefused:
    """A disk must be standalone, as Nova wants a Glance image: none of its bytes may come from a file it names."""

    @pytest.mark.parametrize("backing", ["absolute", "relative", "json"])
    def test_a_backing_file(self, tmp_path, host_file, backing):
        name = {"absolute": str(host_file), "relative": host_file.name,
                "json": json.dumps({"driver": "raw", "file": {"driver": "file", "filename": str(host_file)}})}
        disk = tmp_path / "backed.qcow2"
        qemu_img("create", "-q", "-f", "qcow2", "-F", "raw", "-b", ("json:" if backing == "json" else "")
                 + name[backing], str(disk), "1M")
        with pytest.raises(DiskImageError) as refused:
            inspect_disk("aarch64", disk)
        message = str(refused.value)
        assert f"the aarch64 disk image {disk} names another file it would read at boot: backing file " in message
        assert str(host_file.name) in message
        assert f"qemu-img convert -O qcow2 {disk} STANDALONE.qcow2" in message

    def test_an_external_data_file(self, tmp_path, host_file):
        disk = tmp_path / "data-file.qcow2"
        qemu_img("create", "-q", "-f", "qcow2", "-o", f"data_file={host_file},data_file_raw=on", str(disk), "1M")
        with pytest.raises(DiskImageError, match=rf"names another file it would read at boot: data file "
                                                 rf"'{host_file}'.*qemu-img convert -O qcow2"):
            inspect_disk("x86_64", disk)

    def test_a_standalone_qcow2_converted_from_a_backed_one_boots(self, tmp_path, host_file):
        raw = raw_disk(tmp_path / "disk.raw", [(0x83, 2048, 2048, True)], 4096)
        qemu_img("create", "-q", "-f", "qcow2", "-F", "raw", "-b", str(raw), str(tmp_path / "backed.qcow2"))
        qemu_img("convert", "-O", "qcow2", str(tmp_path / "backed.qcow2"), str(tmp_path / "standalone.qcow2"))
        assert inspect_disk("aarch64", tmp_path / "standalone.qcow2") == "qcow2"  # the fix the refusal names


def not_regular_files(tmp_path):
    """Paths that are not a regular file: each would block, or read without end, if opened as an image."""
    fifo = tmp_path / "fifo.qcow2"
    os.mkfifo(fifo)
    (tmp_path / "dir.img").mkdir()
    (tmp_path / "link-to-fifo").symlink_to(fifo)
    os.mkfifo(tmp_path / "fifo")
    return {"fifo.qcow2": (fifo, "a FIFO"), "fifo": (tmp_path / "fifo", "a FIFO"),
            "dir.img": (tmp_path / "dir.img", "a directory"), "null": (Path("/dev/null"), "a character device"),
            "link-to-fifo": (tmp_path / "link-to-fifo", "a FIFO")}


def returns_within(seconds, function, *args):
    """What `function` returns or raises, run in a thread; AssertionError if it is still blocked after `seconds`."""
    outcome = {}

    def run():
        try:
            outcome["value"] = function(*args)
        except Exception as error:  # noqa: BLE001 - handed to the test
            outcome["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"{function.__name__}{args} still blocked after {seconds} s"
    return outcome


@pytest.mark.parametrize("name", ["fifo.qcow2", "fifo", "dir.img", "null", "link-to-fifo"])
def test_what_is_not_a_regular_file_is_refused_by_name_and_never_blocks(tmp_path, name):
    path, kind = not_regular_files(tmp_path)[name]
    try:
        assert "error" not in returns_within(5, looks_like_disk, path)
        refused = returns_within(5, inspect_disk, "aarch64", path)["error"]
        assert isinstance(refused, DiskImageError)
        assert f"the aarch64 disk image {path} is {kind}, not a regular file" in str(refused)
        refused = returns_within(5, check_user_image, "aarch64", path, None)["error"]
        assert isinstance(refused, OptionError)
        assert f"--image aarch64=...: the kernel: {path} is {kind}; valid: a readable regular file" in str(refused)
    finally:
        for fifo in tmp_path.glob("fifo*"):  # a reader still blocked in open() is let go
            with contextlib.suppress(OSError):
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))


@needs_qemu_img
def test_qemu_img_runs_with_a_memory_bound(tmp_path, monkeypatch):
    disk = tmp_path / "disk.qcow2"
    qemu_img("convert", "-O", "qcow2", str(raw_disk(tmp_path / "disk.raw", [(0x83, 2048, 2048, True)], 4096)),
             str(disk))
    # Too little for qemu-img to start: the bound is there, and its failure is named.
    monkeypatch.setattr(disk_image, "QEMU_IMG_MEMORY_BYTES", 16 * 1024 * 1024, raising=False)
    with pytest.raises(DiskImageError, match=rf"the x86_64 disk image {disk}: qemu-img info .*failed within its "
                                             rf"16 MiB memory limit"):
        inspect_disk("x86_64", disk)


@needs_qemu_img
def test_qemu_img_runs_with_a_time_bound_and_is_killed_at_its_end(tmp_path, monkeypatch):
    disk = tmp_path / "disk.qcow2"
    qemu_img("convert", "-O", "qcow2", str(raw_disk(tmp_path / "disk.raw", [(0x83, 2048, 2048, True)], 4096)),
             str(disk))
    monkeypatch.setattr(disk_image, "QEMU_IMG_TIMEOUT_S", 0.000001, raising=False)
    with pytest.raises(DiskImageError, match=rf"the x86_64 disk image {disk}: qemu-img info did not finish "
                                             rf"within 1e-06 s; it was killed"):
        inspect_disk("x86_64", disk)
    left = subprocess.run(["pgrep", "-f", f"qemu-img info .*{disk}"], capture_output=True, text=True).stdout
    assert left == ""
