"""The built-in firmware disk of an arch, built once from its built-in image and cached by content.

The key is the kernel's and initrd's hashes, the arch and the builder's own source: a new kernel or init, or
a change of the layout, makes a new disk. GRUB's package version is kept in the manifest.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import replace
from pathlib import Path

from archmatrix.core.arch import Arch, DebianKernel
from archmatrix.core.firmware import FIRMWARE_DISKS, no_firmware_disk_reason
from archmatrix.files import write_atomically
from archmatrix.images import firmware_disk
from archmatrix.images.cache import Image, ImageCache, ImageError
from archmatrix.images.deb_files import Symlink, read_members
from archmatrix.images.debian import PackageFetchError, PrivateApt
from archmatrix.images.firmware_disk import FirmwareDiskError, build_firmware_disk

BUILDER_SOURCE = Path(firmware_disk.__file__).read_bytes() + Path(__file__).read_bytes()


def disk_key(arch: Arch, base: Image) -> str:
    digest = hashlib.sha256(BUILDER_SOURCE)
    digest.update(f"{arch.name} {base.kernel_sha256} {base.initrd_sha256} {arch.kernel_cmdline()}".encode())
    return digest.hexdigest()[:20]


def firmware_disk_image(cache: ImageCache, arch: Arch, base: Image) -> Image:
    """`base` (a built-in image) on the disk its arch's firmware boots; built on the first use."""
    spec = FIRMWARE_DISKS.get(arch.name)
    if spec is None:
        raise ImageError(no_firmware_disk_reason(arch.name))
    key = disk_key(arch, base)
    manifest_path = cache.root / "manifests" / arch.name / f"disk-{key}.json"
    with cache.lock(f"disk_{arch.name}"):
        cache.scratch.stale(f"disk_{arch.name}")  # a killed build's (the lock is ours)
        manifest = _verified_manifest(cache, manifest_path)
        if manifest is None:
            manifest = _build(cache, arch, base, key)
            write_atomically(manifest_path, json.dumps(manifest, indent=2))
    return replace(base, disk=cache.object_path(manifest["disk_sha256"]), disk_format="raw",
                   disk_sha256=manifest["disk_sha256"], disk_boot=spec.firmware,
                   cmdline_slot=manifest["cmdline_slot"], cmdline_offset=manifest["cmdline_offset"],
                   packages=base.packages + tuple(manifest["packages"]))


def _verified_manifest(cache: ImageCache, path: Path) -> dict | None:
    try:
        manifest = json.loads(path.read_text())
        return manifest if cache.verified(str(manifest.get("disk_sha256", ""))) else None
    except (OSError, ValueError, AttributeError):  # unreadable, or of another shape: rebuilt
        return None


def _build(cache: ImageCache, arch: Arch, base: Image, key: str) -> dict:
    assert base.kernel is not None and base.initrd is not None
    spec = FIRMWARE_DISKS[arch.name]
    workdir = cache.scratch.new(f"disk_{arch.name}")
    try:
        packages, modules = [], None
        if spec.grub_package:
            packages, modules = grub_modules(cache, arch, spec.grub_package, spec.grub_target, workdir)
        built = build_firmware_disk(arch.name, base.kernel, base.initrd, arch.kernel_cmdline(), modules, workdir)
        return {"arch": arch.name, "key": key, "layout": spec.layout, "firmware": spec.firmware,
                "kernel_sha256": base.kernel_sha256, "initrd_sha256": base.initrd_sha256,
                "cmdline_slot": built.cmdline_slot, "cmdline_offset": built.cmdline_offset,
                "packages": packages, "disk_sha256": cache.store(built.path)}
    except (FirmwareDiskError, PackageFetchError) as error:
        raise ImageError(f"building the {arch.name} firmware disk failed: {error}") from None
    except OSError as error:
        raise ImageError(f"building the {arch.name} firmware disk in {cache.root} failed: {error}") from None
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def grub_modules(cache: ImageCache, arch: Arch, package: str, target: str | None,
                  workdir: Path) -> tuple[list[dict], Path]:
    """GRUB's modules for `target` from Debian's package of the guest's arch (arm64, ppc64el, ...)."""
    kernel = arch.image.kernel if arch.image else None
    debian_arch = kernel.debian_arch if isinstance(kernel, DebianKernel) else None
    if debian_arch is None:
        raise FirmwareDiskError(f"{arch.name}'s kernel is not Debian's: no Debian arch to take GRUB from")
    apt = PrivateApt(cache.root / "apt" / debian_arch, debian_arch, cache.apt_timeout_s)
    if not any((apt.root / "state" / "lists").glob("*_Packages*")):
        apt.update()
    deb, = apt.download([package], workdir / "debs")
    prefix = f"usr/lib/grub/{target}/"
    members = read_members(deb.path, lambda path: path.startswith(prefix))
    modules = workdir / "grub-modules"
    modules.mkdir()
    for path, data in members.items():
        if not isinstance(data, Symlink):
            (modules / path[len(prefix):]).parent.mkdir(parents=True, exist_ok=True)
            (modules / path[len(prefix):]).write_bytes(data)
    if not (modules / "kernel.img").is_file():
        raise FirmwareDiskError(f"{package} {deb.version} has no {prefix}kernel.img")
    return [deb.identity()], modules
