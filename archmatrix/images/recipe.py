"""The recipe of a built-in image: its initramfs layout (images recipes, TOML) and the key its cache entry has."""

from __future__ import annotations

import gzip
import hashlib
import tomllib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from archmatrix.core.arch import Arch, SourceKernel, SourceUserland, StaticInit
from archmatrix.images import cpio
from archmatrix.images.image import ImageError
from archmatrix.images.kernel_build import fragment_text
from archmatrix.images.userland_build import build_commands as userland_build_commands
from archmatrix.paths import RECIPES

RECIPE_DIR = RECIPES
RECIPE_FILE = RECIPE_DIR / "cirros-like.toml"  # busybox-static's /init
STATIC_RECIPE_FILE = RECIPE_DIR / "static-init.toml"  # a compiled /init, for arches with no Debian busybox
USERLAND_RECIPE_FILE = RECIPE_DIR / "source-userland.toml"  # busybox and dropbear built from Debian source
BUILDER_VERSION = 5  # bump when the builders (here, kernel_build.py) change what they put in an image


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
