"""The images of a run's cells: the user's, else the built-in ones, each built (or failed) once per run.

A build that fails fails that arch's cells with its reason, and is not tried again for each of their checks;
whichever process (xdist worker) asks first builds, the others find the cache hit.
"""

from __future__ import annotations

from collections.abc import Callable

from archmatrix.core.arch import Arch
from archmatrix.images.cache import ImageCache
from archmatrix.images.disk_build import firmware_disk_image
from archmatrix.images.image import Image, ImageError, user_disk_image, user_image


class RunImages:
    def __init__(self, user_images: dict, user_disks: frozenset[str], cache: ImageCache,
                 once: Callable[[str, Callable[[], dict]], dict]):
        self.user_images = user_images  # arch -> (kernel, initrd) or (disk, None)
        self.user_disks = user_disks
        self.cache = cache
        self.once = once
        self._images: dict[str, Image] = {}  # this process's, verified

    def of(self, arch: Arch) -> Image:
        """The arch's image, user-supplied or built-in, verified once per process (every check asks)."""
        supplied = self.user_images.get(arch.name)
        if not supplied:
            return self._built_once(arch.name, lambda: self.cache.get_or_build(arch))
        if arch.name not in self._images:
            is_disk = arch.name in self.user_disks
            self._images[arch.name] = user_disk_image(arch, supplied[0]) if is_disk else user_image(arch, *supplied)
        return self._images[arch.name]

    def firmware_disk(self, arch: Arch) -> Image:
        """The built-in image on the disk its arch's firmware boots (--boot-from disk)."""
        return self._built_once(f"disk-{arch.name}", lambda: firmware_disk_image(self.cache, arch, self.of(arch)))

    def is_ready(self, arch: Arch) -> bool:
        """Cheap: booting it needs no build (a user's image, no built-in one, or a cached one)."""
        return arch.name in self.user_images or not arch.has_builtin_image or self.cache.is_cached(arch)

    def is_being_built(self, arch: Arch) -> bool:
        """Its built-in image is being built by another process now: a run that ends need not wait for it."""
        return arch.name not in self.user_images and arch.has_builtin_image and self.cache.is_being_built(arch)

    def _built_once(self, key: str, build: Callable[[], Image]) -> Image:
        if key not in self._images:
            outcome = self.once(f"image-{key}", lambda: self._outcome(key, build))
            if "error" in outcome:
                raise ImageError(outcome["error"])
            if key not in self._images:  # another process built it: a cache hit now
                self._images[key] = build()
        return self._images[key]

    def _outcome(self, key: str, build: Callable[[], Image]) -> dict:
        try:
            self._images[key] = build()
        except ImageError as error:
            return {"error": str(error)}
        return {}
