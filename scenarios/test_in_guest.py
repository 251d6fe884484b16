"""Scenarios written the way a user adds one: a few lines against the `guest` fixture.

Each test runs for every (arch, accelerator) cell, like the built-in checks, and lands in the
matrix as a check of its own (`in-guest-*`); `-k "aarch64 and in_guest"` picks one cell's.
The guest boots once for the consecutive tests of its cell.
"""

import hashlib


def test_in_guest_kernel_matches_image(guest, image):
    """The kernel the guest runs is the one the image was built with, and /proc/cpuinfo is readable."""
    release = guest.run("uname -r")
    assert release.ok, release.stderr
    if image.kernel_release:
        assert release.stdout.strip() == image.kernel_release
    cpuinfo = guest.run("cat /proc/cpuinfo")
    assert cpuinfo.ok and cpuinfo.stdout.strip(), f"/proc/cpuinfo: {cpuinfo.stderr}"


def test_in_guest_file_round_trip(guest, tmp_path):
    """A file copied in comes back out unchanged, and the guest's own sha256sum agrees with ours."""
    sent = tmp_path / "sent.bin"
    sent.write_bytes(bytes(range(256)) * 64)
    guest.put(sent, "/tmp/sent.bin")
    digest = guest.run("sha256sum /tmp/sent.bin")
    assert digest.ok and digest.stdout.split()[0] == hashlib.sha256(sent.read_bytes()).hexdigest()
    back = tmp_path / "back.bin"
    guest.get("/tmp/sent.bin", back)
    assert back.read_bytes() == sent.read_bytes()


def test_in_guest_entropy_comes_from_the_virtio_rng(guest):
    """The guest's kernel uses the virtio RNG it was given (Nova's hw_rng_model=virtio) as its hardware RNG."""
    current = guest.run("cat /sys/class/misc/hw_random/rng_current")
    assert current.ok, f"no hardware RNG in the guest: {current.stderr.strip()}"
    assert current.stdout.strip().startswith("virtio_rng"), current.stdout
