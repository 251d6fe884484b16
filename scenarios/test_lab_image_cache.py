"""The lab host image in a cache of its own, for real: re-hashed before each use, a damaged one rebuilt, or
refused when it cannot be rebuilt, never booted.

Builds the aarch64 lab image (mmdebstrap of about 150 Debian packages, no seeding boot) into the test's own
cache: the shared cache is never touched.
"""

import json

import pytest

from archmatrix.hosts.lab_catalog import LAB_KINDS
from archmatrix.hosts.lab_image import LabImageError, LabImages
from archmatrix.hosts.lab_image_hashes import IMAGE_FILES, damage_of

KIND = LAB_KINDS["aarch64"]


def _flip_a_byte(path, at: int = 1 << 20) -> None:
    path.chmod(0o644)
    with open(path, "r+b") as disk:
        disk.seek(at)
        byte = disk.read(1)
        disk.seek(at)
        disk.write(bytes([byte[0] ^ 0x01]))


def test_a_damaged_lab_image_is_refused_when_it_cannot_be_rebuilt_and_rebuilt_when_it_can(tmp_path, monkeypatch):
    said: list[str] = []
    images = LabImages(tmp_path, said.append)
    built = images.get_or_build(KIND)
    recorded = json.loads(built.manifest.read_text())["sha256"]
    assert sorted(recorded) == sorted(IMAGE_FILES) and damage_of(built.manifest.parent) is None

    _flip_a_byte(built.disk)

    # No mirror answers (a proxy where nothing listens): the package versions, and so the image's key, are unknown,
    # and the newest cached image, the damaged one, is all there is.
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    with pytest.raises(LabImageError) as refused:
        images.get_or_build(KIND)
    assert str(refused.value).startswith(
        f"the cached {KIND.label} image {built.key} is damaged (root.ext4 does not match the sha256 its manifest "
        f"recorded ("), refused.value
    assert "and cannot be rebuilt now: package versions unknown (" in str(refused.value)

    monkeypatch.delenv("http_proxy")
    rebuilt = images.get_or_build(KIND)
    assert f"  {KIND.label}: the cached image {built.key} is damaged (root.ext4 does not match the sha256 its " \
           f"manifest recorded (" in "\n".join(said)
    assert rebuilt.key == built.key and damage_of(rebuilt.manifest.parent) is None
