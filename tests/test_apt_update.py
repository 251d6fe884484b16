"""apt's update: only a mirror caught mid-sync is forgiven; a local failure is an error that names it.

Recorded real apt output, and real apt against a mirror on the loopback.
"""

from pathlib import Path

import pytest

from archmatrix.images.apt_indexes import index_failures
from archmatrix.images.debian import PackageFetchError, PrivateApt
from tests.apt_mirror import loopback_mirror, write_suite

APT = Path(__file__).parent / "fixtures" / "apt"


def test_an_index_that_hit_a_full_disk_is_not_taken_for_a_mirror_mid_sync():
    failures = index_failures((APT / "update-bookworm-20MiB-full.txt").read_text())
    assert [failure.index for failure in failures] == ["http://deb.debian.org/debian bookworm/main amd64 Packages"]
    assert "No space left on device" in failures[0].reason and not failures[0].mirror_sync


def test_an_index_apt_dropped_without_a_word_is_a_failure_and_a_size_mismatch_a_mirror_sync():
    failures = {failure.index.split()[-3]: failure
                for failure in index_failures((APT / "update-loopback-mirror-10MiB-full.txt").read_text())}
    assert set(failures) == {"bookworm/main", "bookworm/contrib"}
    main = failures["bookworm/main"]
    assert not main.mirror_sync and "dropped it without saying why" in main.reason
    assert failures["bookworm/contrib"].mirror_sync


def test_a_mirror_mid_sync_is_said_and_the_verified_indexes_are_used(tmp_path):
    write_suite(tmp_path / "mirror", "bookworm", 10)
    write_suite(tmp_path / "mirror", "bookworm-updates", 1, wrong_size=True)
    with loopback_mirror(tmp_path / "mirror") as url:
        apt = PrivateApt(tmp_path / "apt", "amd64", 60, sources=(f"deb [trusted=yes] {url} bookworm main",
                                                                 f"deb [trusted=yes] {url} bookworm-updates main"))
        said = apt.update()
        assert said == [f"index not verified (a mirror mid-sync), ignored: {url.rstrip('/')} bookworm-updates/main "
                        f"amd64 Packages"]
        assert apt.candidate("filler3")["Version"] == "1.0"


def test_an_index_refused_for_another_reason_is_an_error_naming_it(tmp_path):
    write_suite(tmp_path / "mirror", "bookworm", 10)
    with loopback_mirror(tmp_path / "mirror") as url:
        apt = PrivateApt(tmp_path / "apt", "amd64", 60, sources=(f"deb [trusted=yes] {url} bookworm main",
                                                                 f"deb [trusted=yes] {url} bookworm-gone main"))
        (tmp_path / "mirror" / "dists" / "bookworm-gone").mkdir()
        with pytest.raises(PackageFetchError) as raised:
            apt.update()
    assert "bookworm-gone" in str(raised.value)
