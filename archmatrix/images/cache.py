"""The image cache: built-in images by content, built on first use, re-hashed on every use.

objects/<sha256> holds kernels, initrds and disks (written under a temporary name, hashed, renamed into place,
made read-only); manifests/<arch>/<recipe key>.json records what each image was built from. A hit is
re-hashed before use, so a damaged entry is rebuilt, never booted. A hit needs no network. The builders are
debian_image.py (Debian kernels) and source_image.py (kernels from source); the recipe is recipe.py.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import warnings
from collections.abc import Callable
from pathlib import Path

from archmatrix.cleanup.scratch import ScratchArea, lock_is_free
from archmatrix.core.arch import Arch, DebianKernel
from archmatrix.files import sha256_of, write_atomically
from archmatrix.images.apt_sources import SourcesError, configured_sources
from archmatrix.images.debian import PackageFetchError, PrivateApt
from archmatrix.images.debian_image import DebianBuild, ImageCacheWarning
from archmatrix.images.guest_userland import UserlandError
from archmatrix.images.image import Image, ImageError, user_disk_image, user_image  # noqa: F401 (the cache's API)
from archmatrix.images.kernel_build import KernelBuildError
from archmatrix.images.recipe import Recipe
from archmatrix.images.source_image import SourceBuild
from archmatrix.images.userland_build import UserlandBuildError
from archmatrix.paths import default_cache_dir

__all__ = ["Image", "ImageCache", "ImageCacheWarning", "ImageError", "Recipe"]


def _no_progress(line: str) -> None:
    pass


class ImageCache:
    """`progress` receives one line per build step (which arch, which step, how long)."""

    def __init__(self, root: Path | None = None, apt_timeout_s: float = 600.0,
                 progress: Callable[[str], None] = _no_progress):
        self.root = Path(root) if root else default_cache_dir()
        self.apt_timeout_s = apt_timeout_s
        self.progress = progress
        for sub in ("objects", "manifests", "locks", "tmp", "apt", "src", "logs"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self.scratch = ScratchArea(self.root)

    def lock(self, name: str):
        """One builder of `name` at a time, across processes (xdist workers, parallel runs)."""
        return self.scratch.lock(name)

    # --- the object store ----------------------------------------------------------------------------

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

    def apt(self, debian_arch: str, release: str | None) -> PrivateApt:
        """A private apt for one Debian arch and release (None: the machine's own sources)."""
        if release is None:
            return PrivateApt(self.root / "apt" / debian_arch, debian_arch, self.apt_timeout_s)
        return PrivateApt(self.root / "apt" / f"{debian_arch}-{release}", debian_arch, self.apt_timeout_s,
                          sources=configured_sources(release))

    # --- built-in images -----------------------------------------------------------------------------

    def _manifest_path(self, arch: Arch, key: str) -> Path:
        return self.root / "manifests" / arch.name / f"{key}.json"

    def is_cached(self, arch: Arch) -> bool:
        """Cheap: a manifest exists (its objects are verified when the image is used)."""
        return arch.has_builtin_image and self._manifest_path(arch, Recipe.for_arch(arch).key(arch)).is_file()

    def is_being_built(self, arch: Arch) -> bool:
        """Another process holds the arch's build lock now (./run's early build, another run, a worker)."""
        return not lock_is_free(self.scratch.lock_path(arch.name))

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
            image_fields = {"kernel_release": str(manifest["kernel_release"]),
                            "recipe_key": str(manifest["recipe_key"]),
                            "packages": tuple(dict(package) for package in manifest["packages"]),
                            "warnings": tuple(str(said) for said in manifest.get("warnings", []))}
            dtb_sha = manifest.get("dtb_sha256")
            if not all(isinstance(sha, str) for sha in (kernel_sha, initrd_sha)) or not isinstance(
                    dtb_sha, str | None):
                raise ValueError("a hash is not a string")
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
            # A manifest of the wrong shape is rebuilt, as a damaged object is.
            return None, f"its manifest {path} is unreadable or of another shape ({error})"
        damaged = [f"{label} {sha[:12]}" for label, sha in (("kernel", kernel_sha), ("initrd", initrd_sha),
                                                            ("dtb", dtb_sha))
                   if sha and self.verified(sha) is None]
        if damaged:  # damaged or missing object: rebuild rather than trust it
            return None, f"{' and '.join(damaged)} in {self.root / 'objects'} missing or not matching its hash"
        return Image(arch=arch.name, kernel=self.object_path(kernel_sha), initrd=self.object_path(initrd_sha),
                     kernel_sha256=kernel_sha, initrd_sha256=initrd_sha, origin="built-in",
                     dtb=self.object_path(dtb_sha) if dtb_sha else None, dtb_sha256=dtb_sha, **image_fields), None

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

    def _build(self, arch: Arch, recipe: Recipe, damage: str | None) -> Image:
        assert arch.image is not None
        warnings_seen: list[str] = []
        say = self._say(arch, time.monotonic())
        for path in self.scratch.stale(arch.name):
            say(f"removed {path.name}, left by a build that was killed")
        workdir = self.scratch.new(arch.name)
        key = recipe.key(arch)
        try:
            if isinstance(arch.image.kernel, DebianKernel):
                manifest, members, extra = DebianBuild(self.apt).build(arch, arch.image.kernel, recipe, workdir, say,
                                                                       warnings_seen)
                built: dict[str, bytes] = {}
            else:
                manifest, members, built = SourceBuild(self.root, self.apt).build(arch, arch.image.kernel, recipe,
                                                                                  workdir, say, key)
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
