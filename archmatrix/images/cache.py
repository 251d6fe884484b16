"""Guest images: build the built-in cirros-like ones, or take a user's files.

The cache is content-addressed: objects/<sha256> holds kernels and initrds
(written under a temporary name, hashed, renamed into place, made
read-only), and manifests/<arch>/<recipe key>.json records what each image
was built from. A hit is re-hashed before use, so a damaged entry is rebuilt,
never booted. A hit needs no network.
"""

from __future__ import annotations

import fcntl
import gzip
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
import tomllib
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from archmatrix.core.arches import Arch, DebianKernel, SourceKernel, SourceUserland, StaticInit
from archmatrix.files import lock_is_free, write_atomically
from archmatrix.images import cpio
from archmatrix.images.apt_sources import SourcesError, configured_sources
from archmatrix.images.debian import (
    DebianPackage,
    PackageFetchError,
    PrivateApt,
    extract_member,
    read_members,
    sha256_of,
)
from archmatrix.images.disk_image import DiskImageError, inspect_disk
from archmatrix.images.guest_userland import (
    ModuleIndex,
    UserlandError,
    is_library_member,
    is_module_member,
    modules_in_load_order,
    with_libraries,
)
from archmatrix.images.kernel_build import (
    REPRODUCIBLE_ENV,
    KernelBuildError,
    build_kernel,
    compile_init,
    fragment_text,
    init_command,
    require_toolchain,
    source_tree,
    toolchain_versions,
)
from archmatrix.images.userland_build import UserlandBuildError, build_static_userland
from archmatrix.images.userland_build import build_commands as userland_build_commands
from archmatrix.paths import RECIPES, default_cache_dir

RECIPE_DIR = RECIPES
RECIPE_FILE = RECIPE_DIR / "cirros-like.toml"  # busybox-static's /init
STATIC_RECIPE_FILE = RECIPE_DIR / "static-init.toml"  # a compiled /init, for arches with no Debian busybox
USERLAND_RECIPE_FILE = RECIPE_DIR / "source-userland.toml"  # busybox and dropbear built from Debian source
BUILDER_VERSION = 5  # bump when the builders (here, kernel_build.py) change what they put in an image


class ImageError(RuntimeError):
    """An image could not be built, found or trusted."""


class ImageCacheWarning(UserWarning):
    """The cache held something it could not trust, or an image had to come from a fallback."""


def _no_progress(line: str) -> None:
    pass



@dataclass(frozen=True)
class Image:
    arch: str
    kernel: Path | None  # None: a user's disk, whose kernel only its bootloader knows
    initrd: Path | None
    kernel_sha256: str | None
    initrd_sha256: str | None
    origin: str  # "built-in" or "user-supplied"
    kernel_release: str | None = None  # what `uname -r` should print, when known
    recipe_key: str | None = None
    packages: tuple[dict[str, str], ...] = field(default=())  # Debian packages it was built from
    warnings: tuple[str, ...] = field(default=())  # what its build had to say (fallbacks, a rebuild)
    dtb: Path | None = None  # a device tree, for boards that boot with one (raspi0)
    dtb_sha256: str | None = None
    # A disk the arch's firmware boots (archmatrix/images/firmware_disk.py builds ours; a user's is theirs).
    disk: Path | None = None
    disk_format: str | None = None  # "raw" or "qcow2"
    disk_sha256: str | None = None
    disk_boot: str | None = None  # what boots it, for reports
    cmdline_slot: str | None = None  # where a cell's kernel command line is written into its copy (ours only)
    cmdline_offset: int = 0

    def identity(self) -> dict:
        return {
            "origin": self.origin,
            "kernel_sha256": self.kernel_sha256,
            "initrd_sha256": self.initrd_sha256,
            "kernel_release": self.kernel_release,
            "recipe_key": self.recipe_key,
            "packages": list(self.packages),
            "warnings": list(self.warnings),
            **({"dtb_sha256": self.dtb_sha256} if self.dtb_sha256 else {}),
            **({"disk_sha256": self.disk_sha256, "disk_format": self.disk_format, "disk_boot": self.disk_boot}
               if self.disk else {}),
        }


@dataclass(frozen=True)
class Recipe:
    text: bytes  # the recipe file, hashed into the cache key
    init_files: dict[str, bytes]  # recipe_file name -> content
    parsed: dict

    @classmethod
    def for_arch(cls, arch: Arch) -> Recipe:
        assert arch.image is not None
        if isinstance(arch.image.init, StaticInit):
            return cls.load(STATIC_RECIPE_FILE)
        return cls.load(USERLAND_RECIPE_FILE if isinstance(arch.image.init, SourceUserland) else RECIPE_FILE)

    @classmethod
    def load(cls, path: Path = RECIPE_FILE) -> Recipe:
        try:
            text = path.read_bytes()
            parsed = tomllib.loads(text.decode())
        except (OSError, tomllib.TOMLDecodeError) as error:
            raise ImageError(f"cannot read image recipe {path}: {error}") from error
        # Files of the recipe's directory that go into the image as they are (recipe_file) or compiled (compile).
        sources = [spec.get("recipe_file") or spec.get("compile") for spec in parsed.get("file", [])]
        init_files = {name: (path.parent / name).read_bytes() for name in sources if name}
        return cls(text=text, init_files=init_files, parsed=parsed)

    def key(self, arch: Arch) -> str:
        digest = hashlib.sha256()
        digest.update(f"builder={BUILDER_VERSION}\n".encode())
        digest.update(f"{arch.name} {arch.image!r} {arch.nic!r}\n".encode())
        if arch.image is not None and isinstance(arch.image.kernel, SourceKernel):
            digest.update(fragment_text(arch.image.kernel))
        if arch.image is not None and isinstance(arch.image.init, SourceUserland):
            # Every setting of the busybox and dropbear builds is in their commands.
            commands = userland_build_commands(arch.image.kernel.cross_prefix, arch.image.init.cflags)
            digest.update("\n".join(commands).encode())
        digest.update(self.text)
        for name in sorted(self.init_files):
            digest.update(name.encode() + b"\0" + self.init_files[name])
        return digest.hexdigest()[:20]

    def compiled(self) -> list[tuple[str, str]]:
        """(path in the image, source file) of each file compiled for the guest."""
        return [(s["path"], s["compile"]) for s in self.parsed.get("file", []) if "compile" in s]

    def initramfs(self, members: dict[tuple[str, str], bytes], built: dict[str, bytes] | None = None,
                  extra: dict[str, bytes] | None = None) -> bytes:
        """The gzip-compressed newc archive; `members` maps (package, member) to bytes, `built` path to bytes.

        `extra` files (libraries, kernel modules) are added with their directories, executable (a dynamic
        loader must be).
        """
        extra = extra or {}
        directories = list(self.parsed.get("directories", []))
        for path in sorted(extra):
            parents = list(PurePosixPath(path).parents)[:-1]
            directories += [str(parent) for parent in reversed(parents) if str(parent) not in directories]
        entries = [cpio.directory(path) for path in directories]
        for device in self.parsed.get("device", []):
            entries.append(cpio.char_device(device["path"], device["major"], device["minor"]))
        entries += [cpio.regular(path, extra[path], executable=True) for path in sorted(extra)]
        for spec in self.parsed.get("file", []):
            if "compile" in spec or spec.get("userland"):
                data = (built or {})[spec["path"]]
            elif "recipe_file" in spec:
                data = self.init_files[spec["recipe_file"]]
            elif "package" in spec:
                data = members[(spec["package"], spec["member"])]
            else:
                data = spec["text"].encode()
            entries.append(cpio.regular(spec["path"], data, spec.get("executable", False)))
        return gzip.compress(cpio.newc_archive(entries), mtime=0)

    def package_members(self) -> list[tuple[str, str]]:
        return [(s["package"], s["member"]) for s in self.parsed.get("file", []) if "package" in s]


class ImageCache:
    """`progress` receives one line per build step (which arch, which step, how long)."""

    def __init__(self, root: Path | None = None, apt_timeout_s: float = 600.0,
                 progress: Callable[[str], None] = _no_progress):
        self.root = Path(root) if root else default_cache_dir()
        self.apt_timeout_s = apt_timeout_s
        self.progress = progress
        for sub in ("objects", "manifests", "locks", "tmp", "apt", "src", "logs"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)

    def abandoned_scratch(self) -> list[Path]:
        """Build scratch that no live build owns: its arch's lock (kernel source's, for an unpack) is free."""
        found = []
        candidates = [(path, path.name.split("-")[1]) for path in (self.root / "tmp").glob("build-*-*")]
        candidates += [(path, "kernel-source") for path in (self.root / "src").glob(".unpack-*")]
        candidates += [(path, "userland-source") for path in (self.root / "src" / "userland").glob(".partial-*")]
        for path, lock_name in candidates:
            if lock_is_free(self.root / "locks" / f"{lock_name}.lock"):  # else being built right now
                found.append(path)
        return sorted(found)

    @contextmanager
    def lock(self, name: str) -> Iterator[None]:
        # One builder per arch at a time, across processes (xdist workers, parallel runs).
        with open(self.root / "locks" / f"{name}.lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def object_path(self, sha256: str) -> Path:
        return self.root / "objects" / sha256

    def store(self, data_path: Path) -> str:
        """Move a finished file into the object store by its hash; return the hash."""
        sha256 = sha256_of(data_path)
        if self.verified(sha256) is None:  # absent, or damaged: the new copy takes its place
            os.chmod(data_path, 0o444)
            os.replace(data_path, self.object_path(sha256))
        return sha256

    def verified(self, sha256: str) -> Path | None:
        path = self.object_path(sha256)
        if path.is_file() and sha256_of(path) == sha256:
            return path
        return None

    def _manifest_path(self, arch: Arch, key: str) -> Path:
        return self.root / "manifests" / arch.name / f"{key}.json"

    def is_cached(self, arch: Arch) -> bool:
        """Cheap: a manifest exists (its objects are verified when the image is used)."""
        return arch.has_builtin_image and self._manifest_path(arch, Recipe.for_arch(arch).key(arch)).is_file()

    def lookup(self, arch: Arch, recipe: Recipe | None = None) -> Image | None:
        """A cached image whose files still hash to what the manifest says, or None."""
        return self._lookup(arch, recipe or Recipe.for_arch(arch))[0]

    def _lookup(self, arch: Arch, recipe: Recipe) -> tuple[Image | None, str | None]:
        """The cached image, or None and why a manifest's image could not be used (None: never built)."""
        path = self._manifest_path(arch, recipe.key(arch))
        if not path.is_file():
            return None, None
        try:
            manifest = json.loads(path.read_text())
            kernel_sha, initrd_sha = manifest["kernel_sha256"], manifest["initrd_sha256"]
        except (OSError, ValueError, KeyError) as error:
            return None, f"its manifest {path} is unreadable ({error})"
        dtb_sha = manifest.get("dtb_sha256")
        damaged = [f"{label} {sha[:12]}" for label, sha in (("kernel", kernel_sha), ("initrd", initrd_sha),
                                                            ("dtb", dtb_sha))
                   if sha and self.verified(sha) is None]
        if damaged:  # damaged or missing object: rebuild rather than trust it
            return None, f"{' and '.join(damaged)} in {self.root / 'objects'} missing or not matching its hash"
        return Image(
            arch=arch.name,
            kernel=self.object_path(kernel_sha),
            initrd=self.object_path(initrd_sha),
            kernel_sha256=kernel_sha,
            initrd_sha256=initrd_sha,
            origin="built-in",
            kernel_release=manifest["kernel_release"],
            recipe_key=manifest["recipe_key"],
            packages=tuple(manifest["packages"]),
            warnings=tuple(manifest.get("warnings", [])),
            dtb=self.object_path(dtb_sha) if dtb_sha else None,
            dtb_sha256=dtb_sha,
        ), None

    def get_or_build(self, arch: Arch, recipe: Recipe | None = None) -> Image:
        if not arch.has_builtin_image:
            raise ImageError(f"no built-in {arch.name} image: {arch.no_image_reason}; "
                             f"supply one with --image {arch.name}=KERNEL[,INITRD]")
        recipe = recipe or Recipe.for_arch(arch)
        with self.lock(arch.name):
            image, damage = self._lookup(arch, recipe)
            if image is None:
                if damage:  # said by this run and kept in the new manifest, not repeated by later runs
                    warnings.warn(ImageCacheWarning(f"rebuilt the {arch.name} image: the cached one was damaged: "
                                                    f"{damage}"), stacklevel=2)
                try:
                    image = self._build(arch, recipe, damage)
                except OSError as error:  # a full disk, a vanished directory: one clear line
                    raise ImageError(f"building the {arch.name} image in {self.root} failed: "
                                     f"{error.strerror or error} ({error.filename or 'no file named'})") from None
                except (PackageFetchError, KernelBuildError, SourcesError, UserlandError, UserlandBuildError) as error:
                    raise ImageError(f"building the {arch.name} image failed: {error}") from None
        return image

    def _say(self, arch: Arch, started: float) -> Callable[[str], None]:
        return lambda line: self.progress(f"image {arch.name} [{time.monotonic() - started:5.0f} s] {line}")

    def sweep_stale_builds(self, arch: Arch) -> list[Path]:
        """Scratch directories of this arch's builds that were killed (SIGKILL, power loss) mid-build.

        Called with the arch's lock held, so no live build of it can own one. A kernel's build
        directory holds hundreds of MiB: it must not stay behind.
        """
        stale = list((self.root / "tmp").glob(f"build-{arch.name}-*"))
        for path in stale:
            shutil.rmtree(path, ignore_errors=True)
        return stale

    def _build(self, arch: Arch, recipe: Recipe, damage: str | None) -> Image:
        assert arch.image is not None
        warnings_seen: list[str] = []
        say = self._say(arch, time.monotonic())
        for path in self.sweep_stale_builds(arch):
            say(f"removed {path.name}, left by a build that was killed")
        workdir = Path(tempfile.mkdtemp(prefix=f"build-{arch.name}-", dir=self.root / "tmp"))
        key = recipe.key(arch)
        try:
            if isinstance(arch.image.kernel, DebianKernel):
                manifest, members, extra = self._from_debian(arch, arch.image.kernel, recipe, workdir, say,
                                                             warnings_seen)
                built: dict[str, bytes] = {}
            else:
                manifest, members, built = self._from_source(arch, arch.image.kernel, recipe, workdir, say, key)
                extra = {}
            initrd_file = workdir / "initrd"
            initrd_file.write_bytes(recipe.initramfs(members, built, extra))
            manifest.update({
                "arch": arch.name,
                "recipe": recipe.parsed.get("name"),
                "recipe_key": key,
                "kernel_sha256": self.store(workdir / "kernel"),
                "initrd_sha256": self.store(initrd_file),
                **({"dtb_sha256": self.store(workdir / "dtb")} if (workdir / "dtb").exists() else {}),
                "warnings": warnings_seen,
                "rebuilt_because": damage,
            })
            write_atomically(self._manifest_path(arch, key), json.dumps(manifest, indent=2))
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        image = self.lookup(arch, recipe)
        if image is None:
            raise ImageError(f"the {arch.name} image just built does not verify in {self.root}")
        say(f"ready: kernel {image.kernel_release}")
        return image

    def _apt(self, debian_arch: str, release: str | None) -> PrivateApt:
        if release is None:  # the machine's own sources
            return PrivateApt(self.root / "apt" / debian_arch, debian_arch, self.apt_timeout_s)
        return PrivateApt(self.root / "apt" / f"{debian_arch}-{release}", debian_arch, self.apt_timeout_s,
                          sources=configured_sources(release))

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

    def _from_debian(self, arch: Arch, kernel: DebianKernel, recipe: Recipe, workdir: Path, say,
                     warnings_seen: list[str]) -> tuple[dict, dict, dict]:
        apt, release = self._updated_apt(arch, kernel, say, warnings_seen)
        kernel_packages = apt.kernel_packages(kernel.package)
        dynamic = recipe.parsed.get("dynamic", {})
        wanted = [*kernel_packages, *recipe.parsed.get("packages", []), *dynamic.get("library_packages", [])]
        say(f"downloading {', '.join(wanted)} ({release})")
        debs: dict[str, DebianPackage] = {p.name: p for p in apt.download(wanted, workdir / "debs")}
        kernel_member = None
        for name in reversed(kernel_packages):  # linux-binary-* first, where it exists
            try:
                kernel_member = extract_member(debs[name].path, kernel.glob, workdir / "kernel")
                break
            except PackageFetchError:
                continue
        if kernel_member is None:
            raise PackageFetchError(f"no file matching {kernel.glob!r} in {', '.join(kernel_packages)}")
        dtb_member = None
        if kernel.dtb_glob:
            dtb_member = extract_member(debs[kernel_packages[0]].path, kernel.dtb_glob, workdir / "dtb")
        members = {}
        for package, member in recipe.package_members():
            target = workdir / "member"
            extract_member(debs[package].path, member, target)
            members[(package, member)] = target.read_bytes()
        extra = self._nic_modules(arch, [debs[name] for name in kernel_packages], say)
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

    def _nic_modules(self, arch: Arch, kernel_debs: list[DebianPackage], say) -> dict[str, bytes]:
        """The NIC driver's modules (and theirs) from the kernel's packages, with init.sh's load order."""
        if arch.nic is None:
            return {}
        names: list[str] = []
        builtin = ""

        def wanted(path: str) -> bool:  # every module's path is noted; only modules.builtin is read
            if is_module_member(path):
                names.append(path)
            return path.endswith("/modules.builtin")

        for deb in kernel_debs:
            for data in read_members(deb.path, wanted).values():
                builtin += data.decode() if isinstance(data, bytes) else ""

        def read(paths: list[str]) -> dict[str, bytes]:
            found: dict = {}
            for deb in kernel_debs:
                found.update(read_members(deb.path, lambda path: path in paths))
            return found

        index = ModuleIndex(names, builtin)
        # The virtio RNG's driver, where the kernel has one: cells that reach the guest over SSH get the device.
        rng = tuple(name for name in arch.nic.rng_modules if index.has(name))
        files = modules_in_load_order(arch.nic.modules + rng, index, read)
        say(f"NIC {arch.nic.device}{' and virtio RNG' if rng else ''}: modules "
            f"{', '.join(p.rsplit('/', 1)[1] for p in files if p.endswith('.ko'))}"
            if files else f"NIC {arch.nic.device}: its driver is built into the kernel")
        return files

    def _from_source(self, arch: Arch, kernel: SourceKernel, recipe: Recipe, workdir: Path, say,
                     key: str) -> tuple[dict, dict, dict]:
        assert arch.image is not None and isinstance(arch.image.init, StaticInit | SourceUserland)
        require_toolchain(arch.name, arch.image)
        log_path = self.root / "logs" / f"{arch.name}-{key}.log"
        log_path.write_text(f"# building the {arch.name} image, recipe key {key}\n")
        say(f"building from source; log: {log_path}")
        with self.lock("kernel-source"):
            host_arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True,
                                       check=True).stdout.strip()
            apt = self._apt(host_arch, None)
            apt.update()
            tree, source_package = source_tree(self.root / "src", apt, say)
        kernel_file, release = build_kernel(arch.name, kernel, tree, workdir, log_path, say)
        os.replace(kernel_file, workdir / "kernel")
        built: dict[str, bytes] = {}
        userland: dict = {}
        if isinstance(arch.image.init, SourceUserland):
            files, userland = build_static_userland(arch.name, kernel.cross_prefix, arch.image.init.cflags,
                                                    self.root, workdir, log_path, say)
            built.update(files)
        for path, source in recipe.compiled():
            output = workdir / f"compiled-{len(built)}"
            compile_init(arch.name, kernel, arch.image.init.cflags, RECIPE_DIR / source, output, log_path, say)
            built[path] = output.read_bytes()
        config = (workdir / "build" / ".config").read_bytes()
        manifest = {
            "kernel_release": release,
            "packages": [source_package.identity()],
            "kernel_source": source_package.identity(),
            "toolchain": toolchain_versions(arch.image),
            "config_fragment": f"images/kernels/{kernel.fragment}",
            "fragment_sha256": hashlib.sha256(fragment_text(kernel)).hexdigest(),
            "config_sha256": hashlib.sha256(config).hexdigest(),
            "build_commands": [
                f"make ARCH={kernel.make_arch} CROSS_COMPILE={kernel.cross_prefix} "
                f"KCONFIG_ALLCONFIG=<kernel/configs/tiny.config + fragment> allnoconfig",
                f"make ARCH={kernel.make_arch} CROSS_COMPILE={kernel.cross_prefix} {kernel.target}",
                "environment: " + " ".join(f"{k}={v}" for k, v in REPRODUCIBLE_ENV.items()),
                *(" ".join(init_command(kernel, arch.image.init.cflags, source, path))
                  for path, source in recipe.compiled()),
            ],
            "compiled_sha256": {path: hashlib.sha256(data).hexdigest() for path, data in built.items()},
            **({"userland": userland} if userland else {}),
            "build_log": str(log_path),
        }
        return manifest, {}, built


def release_of_member(member: str) -> str:
    """boot/vmlinuz-6.1.0-56-arm64 -> 6.1.0-56-arm64; usr/lib/modules/7.2.1+deb14-riscv64/vmlinuz -> its dir."""
    path = PurePosixPath(member)
    if "-" in path.name:
        return path.name.split("-", 1)[1]
    return path.parent.name


def user_disk_image(arch: Arch, disk: Path) -> Image:
    """A user's disk, checked before any cell boots it (unreadable, truncated, a format not booted: ImageError)."""
    try:
        disk_format = inspect_disk(arch.name, disk)
    except DiskImageError as error:
        raise ImageError(str(error)) from None
    return Image(arch=arch.name, kernel=None, initrd=None, kernel_sha256=None, initrd_sha256=None,
                 origin="user-supplied", disk=disk.resolve(), disk_format=disk_format, disk_sha256=sha256_of(disk),
                 disk_boot="the arch's firmware, then the disk's own bootloader")


def user_image(arch: Arch, kernel: Path, initrd: Path | None) -> Image:
    for label, path in (("kernel", kernel), ("initrd", initrd)):
        if path is not None and not os.access(path, os.R_OK):
            raise ImageError(f"{arch.name} {label} {path} is missing or unreadable")
    return Image(
        arch=arch.name,
        kernel=kernel.resolve(),
        initrd=initrd.resolve() if initrd else None,
        kernel_sha256=sha256_of(kernel),
        initrd_sha256=sha256_of(initrd) if initrd else None,
        origin="user-supplied",
    )

