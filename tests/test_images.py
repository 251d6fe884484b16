"""Image recipe logic and the content-addressed cache, offline (no apt, no libvirt)."""

import gzip
import json
import stat

import pytest

from archmatrix.core.arches import ARCHES
from archmatrix.images.cache import ImageCache, ImageError, Recipe, user_image


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
    assert 'echo "ARCHMATRIX-BANNER arch=$(uname -m) release=$(uname -r) endian=$endian"' in init
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


def test_arch_without_an_image_says_why_and_which_option_supplies_one(tmp_path):
    with pytest.raises(ImageError, match=r"Linux dropped the CRIS port.*--image cris=KERNEL\[,INITRD\]"):
        ImageCache(tmp_path).get_or_build(ARCHES["cris"])


def test_user_image_must_be_readable(tmp_path):
    with pytest.raises(ImageError, match="missing or unreadable"):
        user_image(ARCHES["mips"], tmp_path / "no-such-vmlinux", None)


def test_a_missing_cross_toolchain_names_the_packages_to_install():
    from archmatrix.core.arch import ImageSource, SourceKernel, StaticInit
    from archmatrix.images.kernel_build import KernelBuildError, require_toolchain

    source = ImageSource(SourceKernel("mips", "nonesuch-linux-gnu-", "mips.config"),
                         StaticInit("libc6-dev-nonesuch-cross"))
    with pytest.raises(KernelBuildError, match=r"apt-get install gcc-nonesuch-linux-gnu .*libc6-dev-nonesuch-cross"):
        require_toolchain("mips", source)


def test_a_fragment_option_that_did_not_take_is_named():
    from archmatrix.images.kernel_build import options_not_taken

    fragment = "# comment\nCONFIG_PPC64=y\nCONFIG_PPC_OF_BOOT_TRAMPOLINE=y\nCONFIG_HZ=100\n"
    config = "CONFIG_PPC64=y\n# CONFIG_PPC_OF_BOOT_TRAMPOLINE is not set\nCONFIG_HZ=250\n"
    assert options_not_taken(fragment, config) == ["CONFIG_PPC_OF_BOOT_TRAMPOLINE=y", "CONFIG_HZ=100"]


def test_kernel_release_from_where_the_package_keeps_the_kernel():
    from archmatrix.images.debian_image import release_of_member

    assert release_of_member("boot/vmlinuz-6.1.0-56-arm64") == "6.1.0-56-arm64"
    assert release_of_member("boot/vmlinux-6.12.107+deb13-riscv64") == "6.12.107+deb13-riscv64"
    assert release_of_member("usr/lib/modules/7.2.12+deb14-riscv64/vmlinuz") == "7.2.12+deb14-riscv64"


def test_every_recipe_key_differs_by_arch_and_source_fragments_are_in_the_key(tmp_path, monkeypatch):
    from archmatrix.images import kernel_build
    from archmatrix.images import recipe as recipe_module

    keys = {name: Recipe.for_arch(arch).key(arch) for name, arch in ARCHES.items() if arch.has_builtin_image}
    assert len(set(keys.values())) == len(keys)
    fragments = tmp_path / "kernels"
    fragments.mkdir()
    for path in kernel_build.FRAGMENT_DIR.iterdir():
        (fragments / path.name).write_bytes(path.read_bytes())
    (fragments / "mips.config").write_text((fragments / "mips.config").read_text() + "CONFIG_HZ_100=y\n")
    monkeypatch.setattr(kernel_build, "FRAGMENT_DIR", fragments)
    assert Recipe.for_arch(ARCHES["mips"]).key(ARCHES["mips"]) != keys["mips"]
    assert Recipe.for_arch(ARCHES["ppc64"]).key(ARCHES["ppc64"]) == keys["ppc64"]
    assert recipe_module.STATIC_RECIPE_FILE.name == "static-init.toml"
