"""A cached lab host image is re-hashed before use: a file changed, missing or never hashed is damage."""

import json

import pytest

from archmatrix.hosts.lab_catalog import LAB_KINDS
from archmatrix.hosts.lab_image import LabImages
from archmatrix.hosts.lab_image_hashes import IMAGE_FILES, damage_of, file_hashes


@pytest.fixture
def cached_image(tmp_path):
    """A lab image directory as a build leaves it in the cache (small files standing in for the real ones)."""
    directory = tmp_path / "lab-hosts" / "aarch64-0123456789abcdef"
    directory.mkdir(parents=True)
    for name in IMAGE_FILES:
        (directory / name).write_bytes(f"the {name} of the lab\n".encode() * 1000)
    manifest = {"kind": "aarch64", "key": "0123456789abcdef", "packages": [], "sha256": file_hashes(directory)}
    (directory / "manifest.json").write_text(json.dumps(manifest))
    return directory


def test_an_image_as_built_is_whole(cached_image):
    assert damage_of(cached_image) is None
    image = LabImages(cached_image.parent.parent, print)._cached(LAB_KINDS["aarch64"], "0123456789abcdef")
    assert image is not None and image.disk == cached_image / "root.ext4"


def test_one_changed_byte_of_the_root_file_system_is_damage(cached_image):
    disk = cached_image / "root.ext4"
    data = bytearray(disk.read_bytes())
    data[4096] ^= 0x01  # a bad disk, an interrupted copy, someone's edit
    disk.write_bytes(bytes(data))
    assert damage_of(cached_image).startswith("root.ext4 does not match the sha256 its manifest recorded (")


def test_a_missing_file_is_damage(cached_image):
    (cached_image / "stage1.cpio.gz").unlink()
    assert damage_of(cached_image) == "stage1.cpio.gz is missing"


@pytest.mark.parametrize("manifest", ["{}", '{"sha256": {"vmlinuz": "00"}}', '{"sha256": "none"}', "not json"])
def test_a_manifest_that_records_no_hashes_is_damage(cached_image, manifest):
    (cached_image / "manifest.json").write_text(manifest)
    assert damage_of(cached_image) == ("its manifest records no hash of its files (it was built before they were "
                                       "recorded)")
