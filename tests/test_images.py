"""Image recipe logic and the content-addressed cache, offline (no apt, no libvirt)."""

import gzip
import json
import stat

import pytest

from harness.arches import ARCHES
from harness.images.cache import ImageCache, ImageError, Recipe, user_image


def read_newc(archive: bytes) -> dict[str, tuple[int, bytes, tuple[int, int]]]:
    """An independent reader of the newc format: path -> (mode, data, rdev)."""
    entries, offset = {}, 0
    while True:
        assert archive[offset:offset + 6] == b"070701"
        fields = [int(archive[offset + 6 + 8 * i: offset + 14 + 8 * i], 16) for i in range(13)]
        mode, size, rdev, namesize = fields[1], fields[6], (fields[9], fields[10]), fields[11]
        name_start = offset + 110
        name = archive[name_start:name_start + namesize - 1].decode()
        data_start = (name_start + namesize + 3) & ~3
        data = archive[data_start:data_start + size]
        offset = (data_start + size + 3) & ~3
        if name == "TRAILER!!!":
            return entries
        entries[name] = (mode, data, rdev)


def built_initramfs() -> dict:
    recipe = Recipe.load()
    members = {key: b"\x7fELF-fake-busybox" for key in recipe.package_members()}
    return read_newc(gzip.decompress(recipe.initramfs(members)))


def test_initramfs_has_init_console_node_and_busybox():
    entries = built_initramfs()
    mode, data, _ = entries["init"]
    assert stat.S_ISREG(mode) and mode & 0o111 and data.startswith(b"#!/bin/busybox sh")
    mode, _, rdev = entries["dev/console"]
    assert stat.S_ISCHR(mode) and rdev == (5, 1)
    assert entries["bin/busybox"][1] == b"\x7fELF-fake-busybox"
    assert stat.S_ISDIR(entries["proc"][0])


def test_init_prints_the_banner_the_harness_waits_for():
    init = built_initramfs()["init"][1].decode()
    assert 'echo "EMUV-BANNER arch=$(uname -m) release=$(uname -r) endian=$endian"' in init
    assert "while true; do login; done" in init  # init must never exit


def test_initramfs_is_reproducible():
    recipe = Recipe.load()
    members = {key: b"x" for key in recipe.package_members()}
    assert recipe.initramfs(members) == recipe.initramfs(members)


def test_recipe_key_differs_per_arch_and_follows_the_recipe(tmp_path):
    recipe = Recipe.load()
    keys = {recipe.key(arch) for arch in ARCHES.values()}
    assert len(keys) == len(ARCHES)
    changed = Recipe(recipe.text + b"\n# changed\n", recipe.init_files, recipe.parsed)
    assert changed.key(ARCHES["aarch64"]) != recipe.key(ARCHES["aarch64"])


def fake_cached_image(cache: ImageCache, arch, recipe: Recipe) -> None:
    """Put an entry in the cache the way _build does, without apt."""
    objects = {}
    for name in ("kernel", "initrd"):
        path = cache.root / "tmp" / name
        path.write_bytes(f"{name} of {arch.name}".encode())
        objects[name] = cache.store(path)
    manifest = {
        "recipe_key": recipe.key(arch), "kernel_release": "6.1.0-test", "packages": [],
        "kernel_sha256": objects["kernel"], "initrd_sha256": objects["initrd"],
    }
    path = cache.root / "manifests" / arch.name / f"{recipe.key(arch)}.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(manifest))


def test_cache_hit_is_verified_and_read_only(tmp_path):
    cache, recipe, arch = ImageCache(tmp_path), Recipe.load(), ARCHES["aarch64"]
    fake_cached_image(cache, arch, recipe)
    image = cache.lookup(arch, recipe)
    assert image is not None and image.kernel_release == "6.1.0-test"
    assert image.kernel.read_bytes() == b"kernel of aarch64"
    assert not image.kernel.stat().st_mode & 0o222


def test_damaged_cache_entry_is_not_trusted(tmp_path):
    cache, recipe, arch = ImageCache(tmp_path), Recipe.load(), ARCHES["aarch64"]
    fake_cached_image(cache, arch, recipe)
    kernel = cache.lookup(arch, recipe).kernel
    kernel.chmod(0o644)
    kernel.write_bytes(b"kernel of aarch64 but truncat")
    assert cache.lookup(arch, recipe) is None


def test_arch_without_debian_kernel_says_which_option_supplies_one(tmp_path):
    with pytest.raises(ImageError, match=r"--image ppc64=KERNEL\[,INITRD\]"):
        ImageCache(tmp_path).get_or_build(ARCHES["ppc64"])


def test_user_image_must_be_readable(tmp_path):
    with pytest.raises(ImageError, match="missing or unreadable"):
        user_image(ARCHES["mips"], tmp_path / "no-such-vmlinux", None)
