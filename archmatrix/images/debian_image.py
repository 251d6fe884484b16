"""A built-in image from Debian packages: a kernel package, busybox-static, dropbear with its libraries, and the
NIC's modules from the kernel's own package, all of the guest's arch and release."""

from __future__ import annotations

import contextlib
import hashlib
import warnings
from pathlib import Path, PurePosixPath

from archmatrix.core.arch import Arch, DebianKernel
from archmatrix.images.deb_files import DataTar, extract_member, read_members
from archmatrix.images.debian import DebianPackage, PackageFetchError, PrivateApt
from archmatrix.images.guest_userland import (
    ModuleIndex,
    is_library_member,
    is_module_member,
    modules_in_load_order,
    with_libraries,
)
from archmatrix.images.recipe import Recipe


class ImageCacheWarning(UserWarning):
    """The cache held something it could not trust, or an image had to come from a fallback."""


class DebianBuild:
    """What a Debian-kernel image is built from; `apt(debian_arch, release)` gives a private apt for it."""

    def __init__(self, apt):
        self._apt = apt

    def _updated_apt(self, arch: Arch, kernel: DebianKernel, say, warnings_seen: list[str]) -> tuple[PrivateApt, str]:
        """apt for the first of the arch's releases whose index verifies; say so when it was not the first."""
        releases = kernel.releases or (None,)
        failures = []
        for release in releases:
            name = release or "the machine's release"
            say(f"reading the {kernel.debian_arch} package index of {name}")
            apt = self._apt(kernel.debian_arch, release)
            try:
                warnings_seen.extend(apt.update())
            except PackageFetchError as error:
                if len(releases) == 1:
                    raise
                failures.append(f"{name}: {error}")
                continue
            if failures:
                warnings_seen.append(f"took {arch.name}'s packages from {name}, not {releases[0]}: "
                                     + "; ".join(failures))
                warnings.warn(ImageCacheWarning(warnings_seen[-1]), stacklevel=2)
            return apt, name
        raise PackageFetchError(f"none of {', '.join(map(str, releases))} has a usable {kernel.debian_arch} "
                                f"package index: " + "; ".join(failures))

    def build(self, arch: Arch, kernel: DebianKernel, recipe: Recipe, workdir: Path, say,
              warnings_seen: list[str]) -> tuple[dict, dict, dict]:
        """The manifest's fields, the recipe's package members, and the extra files (modules, libraries)."""
        apt, release = self._updated_apt(arch, kernel, say, warnings_seen)
        kernel_packages = apt.kernel_packages(kernel.package)
        dynamic = recipe.parsed.get("dynamic", {})
        wanted = [*kernel_packages, *recipe.parsed.get("packages", []), *dynamic.get("library_packages", [])]
        say(f"downloading {', '.join(wanted)} ({release})")
        debs: dict[str, DebianPackage] = {p.name: p for p in apt.download(wanted, workdir / "debs")}
        with contextlib.ExitStack() as unpacked:
            kernel_tars = [unpacked.enter_context(DataTar(debs[name].path, workdir / f"{name}.tar"))
                           for name in kernel_packages]
            kernel_member = self._kernel_file(kernel, kernel_tars, workdir)
            dtb_member = (kernel_tars[0].extract_member(kernel.dtb_glob, workdir / "dtb")
                          if kernel.dtb_glob else None)
            extra = self._nic_modules(arch, kernel_tars, say)
        members = {}
        for package, member in recipe.package_members():
            target = workdir / "member"
            extract_member(debs[package].path, member, target)
            members[(package, member)] = target.read_bytes()
        if dynamic:
            library_packages = dynamic["library_packages"]
            libraries: dict = {}
            for name in library_packages:
                libraries.update(read_members(debs[name].path, is_library_member))
            programs = {path: next(data for (_, member), data in members.items() if member == path)
                        for path in dynamic["programs"]}
            extra.update(with_libraries(programs, libraries, library_packages))
        manifest = {
            "debian_release": release,
            "kernel_package_meta": kernel.package,
            "kernel_member": kernel_member,
            "kernel_release": release_of_member(kernel_member),
            "packages": [p.identity() for p in debs.values()],
            **({"dtb_member": dtb_member} if dtb_member else {}),
            "extra_files": {path: hashlib.sha256(data).hexdigest() for path, data in sorted(extra.items())},
        }
        return manifest, members, extra

    @staticmethod
    def _kernel_file(kernel: DebianKernel, kernel_tars: list[DataTar], workdir: Path) -> str:
        for tar in reversed(kernel_tars):  # linux-binary-* first, where it exists
            try:
                return tar.extract_member(kernel.glob, workdir / "kernel")
            except PackageFetchError:
                continue
        raise PackageFetchError(f"no file matching {kernel.glob!r} in "
                                f"{', '.join(tar.deb.name for tar in kernel_tars)}")

    def _nic_modules(self, arch: Arch, kernel_tars: list[DataTar], say) -> dict[str, bytes]:
        """The NIC driver's modules (and theirs) from the kernel's packages, with init.sh's load order."""
        if arch.nic is None:
            return {}
        names: list[str] = []
        builtin = ""

        def wanted(path: str) -> bool:  # every module's path is noted; only modules.builtin is read
            if is_module_member(path):
                names.append(path)
            return path.endswith("/modules.builtin")

        for tar in kernel_tars:
            for data in tar.read_members(wanted).values():
                builtin += data.decode() if isinstance(data, bytes) else ""

        def read(paths: list[str]) -> dict[str, bytes]:
            found: dict = {}
            for tar in kernel_tars:
                found.update(tar.read_members(lambda path: path in paths))
            return found

        index = ModuleIndex(names, builtin)
        # The virtio RNG's driver, where the kernel has one: cells that reach the guest over SSH get the device.
        rng = tuple(name for name in arch.nic.rng_modules if index.has(name))
        files = modules_in_load_order(arch.nic.modules + rng, index, read)
        say(f"NIC {arch.nic.device}{' and virtio RNG' if rng else ''}: modules "
            f"{', '.join(p.rsplit('/', 1)[1] for p in files if p.endswith('.ko'))}"
            if files else f"NIC {arch.nic.device}: its driver is built into the kernel")
        return files


def release_of_member(member: str) -> str:
    """boot/vmlinuz-6.1.0-56-arm64 -> 6.1.0-56-arm64; usr/lib/modules/7.2.1+deb14-riscv64/vmlinuz -> its dir."""
    path = PurePosixPath(member)
    if "-" in path.name:
        return path.name.split("-", 1)[1]
    return path.parent.name
