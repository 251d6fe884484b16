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
import tempfile
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from harness.arches import Arch
from harness.files import write_atomically
from harness.images import cpio
from harness.images.debian import DebianPackage, PackageFetchError, PrivateApt, extract_member, sha256_of

RECIPE_DIR = Path(__file__).resolve().parents[2] / "images"
RECIPE_FILE = RECIPE_DIR / "cirros-like.toml"
BUILDER_VERSION = 1  # bump when this module changes what it puts in an image


class ImageError(RuntimeError):
    """An image could not be built, found or trusted."""


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "emulation-verifier" / "images"


@dataclass(frozen=True)
class Image:
    arch: str
    kernel: Path
    initrd: Path | None
    kernel_sha256: str
    initrd_sha256: str | None
    origin: str  # "built-in" or "user-supplied"
    kernel_release: str | None = None  # what `uname -r` should print, when known
    recipe_key: str | None = None
    packages: tuple[dict[str, str], ...] = field(default=())  # Debian packages it was built from

    def identity(self) -> dict:
        return {
            "origin": self.origin,
            "kernel_sha256": self.kernel_sha256,
            "initrd_sha256": self.initrd_sha256,
            "kernel_release": self.kernel_release,
            "recipe_key": self.recipe_key,
            "packages": list(self.packages),
        }


@dataclass(frozen=True)
class Recipe:
    text: bytes  # the recipe file, hashed into the cache key
    init_files: dict[str, bytes]  # recipe_file name -> content
    parsed: dict

    @classmethod
    def load(cls, path: Path = RECIPE_FILE) -> Recipe:
        try:
            text = path.read_bytes()
            parsed = tomllib.loads(text.decode())
        except (OSError, tomllib.TOMLDecodeError) as error:
            raise ImageError(f"cannot read image recipe {path}: {error}") from error
        init_files = {
            spec["recipe_file"]: (path.parent / spec["recipe_file"]).read_bytes()
            for spec in parsed.get("file", [])
            if "recipe_file" in spec
        }
        return cls(text=text, init_files=init_files, parsed=parsed)

    def key(self, arch: Arch) -> str:
        digest = hashlib.sha256()
        digest.update(f"builder={BUILDER_VERSION}\n".encode())
        digest.update(f"{arch.name} {arch.debian_arch} {arch.kernel_package} {arch.kernel_glob}\n".encode())
        digest.update(self.text)
        for name in sorted(self.init_files):
            digest.update(name.encode() + b"\0" + self.init_files[name])
        return digest.hexdigest()[:20]

    def initramfs(self, members: dict[tuple[str, str], bytes]) -> bytes:
        """The gzip-compressed newc archive; `members` maps (package, member) to bytes."""
        entries = [cpio.directory(path) for path in self.parsed.get("directories", [])]
        for device in self.parsed.get("device", []):
            entries.append(cpio.char_device(device["path"], device["major"], device["minor"]))
        for spec in self.parsed.get("file", []):
            if "recipe_file" in spec:
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
    def __init__(self, root: Path | None = None, apt_timeout_s: float = 600.0):
        self.root = Path(root) if root else default_cache_dir()
        self.apt_timeout_s = apt_timeout_s
        for sub in ("objects", "manifests", "locks", "tmp", "apt"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)

    @contextmanager
    def _lock(self, name: str) -> Iterator[None]:
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

    def lookup(self, arch: Arch, recipe: Recipe) -> Image | None:
        """A cached image whose files still hash to what the manifest says, or None."""
        path = self._manifest_path(arch, recipe.key(arch))
        if not path.is_file():
            return None
        manifest = json.loads(path.read_text())
        kernel = self.verified(manifest["kernel_sha256"])
        initrd = self.verified(manifest["initrd_sha256"])
        if kernel is None or initrd is None:
            return None  # damaged or missing object: rebuild rather than trust it
        return Image(
            arch=arch.name,
            kernel=kernel,
            initrd=initrd,
            kernel_sha256=manifest["kernel_sha256"],
            initrd_sha256=manifest["initrd_sha256"],
            origin="built-in",
            kernel_release=manifest["kernel_release"],
            recipe_key=manifest["recipe_key"],
            packages=tuple(manifest["packages"]),
        )

    def get_or_build(self, arch: Arch, recipe: Recipe | None = None) -> Image:
        if not arch.has_builtin_image:
            raise ImageError(
                f"Debian 12 ships no kernel for {arch.name}: supply one with --image {arch.name}=KERNEL[,INITRD]"
            )
        recipe = recipe or Recipe.load()
        with self._lock(arch.name):
            image = self.lookup(arch, recipe)
            if image is None:
                try:
                    image = self._build(arch, recipe)
                except OSError as error:  # a full disk, a vanished directory: one clear line
                    raise ImageError(f"building the {arch.name} image in {self.root} failed: "
                                     f"{error.strerror or error} ({error.filename or 'no file named'})") from None
                except PackageFetchError as error:
                    raise ImageError(f"building the {arch.name} image failed: {error}") from None
        return image

    def _build(self, arch: Arch, recipe: Recipe) -> Image:
        assert arch.debian_arch and arch.kernel_package and arch.kernel_glob
        workdir = Path(tempfile.mkdtemp(prefix=f"build-{arch.name}-", dir=self.root / "tmp"))
        try:
            apt = PrivateApt(self.root / "apt" / arch.debian_arch, arch.debian_arch, self.apt_timeout_s)
            warnings = apt.update()
            kernel_package = apt.kernel_image_package(arch.kernel_package)
            wanted = [kernel_package, *recipe.parsed.get("packages", [])]
            debs: dict[str, DebianPackage] = {p.name: p for p in apt.download(wanted, workdir / "debs")}

            kernel_file = workdir / "kernel"
            kernel_member = extract_member(debs[kernel_package].path, arch.kernel_glob, kernel_file)
            kernel_release = kernel_member.split("-", 1)[1]  # boot/vmlinuz-6.1.0-56-arm64

            members = {}
            for package, member in recipe.package_members():
                target = workdir / "member"
                extract_member(debs[package].path, member, target)
                members[(package, member)] = target.read_bytes()
            initrd_file = workdir / "initrd"
            initrd_file.write_bytes(recipe.initramfs(members))

            manifest = {
                "arch": arch.name,
                "recipe": recipe.parsed.get("name"),
                "recipe_key": recipe.key(arch),
                "kernel_package_meta": arch.kernel_package,
                "kernel_member": kernel_member,
                "kernel_release": kernel_release,
                "kernel_sha256": self.store(kernel_file),
                "initrd_sha256": self.store(initrd_file),
                "packages": [p.identity() for p in debs.values()],
                "warnings": warnings,
            }
            write_atomically(self._manifest_path(arch, manifest["recipe_key"]), json.dumps(manifest, indent=2))
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        image = self.lookup(arch, recipe)
        if image is None:
            raise ImageError(f"the {arch.name} image just built does not verify in {self.root}")
        return image


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

