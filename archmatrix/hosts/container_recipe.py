"""A container host's recipe: what goes into the Docker image of a Debian release, read from recipe.toml, and its key.

The key names the image: a change to the recipe (or to the builder, BUILDER_VERSION) makes another image.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import tomllib
from dataclasses import dataclass

from archmatrix.paths import RECIPES

CONTAINER_RELEASES = ("bookworm", "trixie")  # the Debian releases a container host can be built from
RECIPE_FILE = RECIPES / "host-containers" / "recipe.toml"
BUILDER_VERSION = 1  # bump when the builder (container_image.py) changes what goes into an image
IMAGE_REPOSITORY = "archmatrix-host"


class ContainerHostError(RuntimeError):
    """A container host that cannot be built, started, reached or removed."""


class UnknownReleaseError(ContainerHostError, ValueError):
    """A Debian release this module has no container host recipe for."""


def check_release(release: str) -> str:
    if release not in CONTAINER_RELEASES:
        raise UnknownReleaseError(
            f"unknown container host release {release!r}; valid: {', '.join(CONTAINER_RELEASES)}")
    return release


@dataclass(frozen=True)
class RecipeEntry:
    path: str  # relative to the image's root
    mode: int
    text: str | None  # None: a directory


@dataclass(frozen=True)
class SystemUser:
    name: str
    group: str
    home: str


@dataclass(frozen=True)
class HostRecipe:
    release: str
    variant: str
    command: tuple[str, ...]
    packages: tuple[str, ...]
    dpkg_options: tuple[str, ...]
    entries: tuple[RecipeEntry, ...]
    groups: tuple[str, ...] = ()  # system groups and users no package of the image creates
    users: tuple[SystemUser, ...] = ()

    def key(self) -> str:
        identity = {
            "builder": BUILDER_VERSION,
            "release": self.release,
            "variant": self.variant,
            "command": self.command,
            "packages": sorted(self.packages),
            "dpkg_options": self.dpkg_options,
            "entries": [(entry.path, entry.mode, entry.text) for entry in self.entries],
            "groups": self.groups,
            "users": [(user.name, user.group, user.home) for user in self.users],
        }
        return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]

    @property
    def tag(self) -> str:
        return f"{IMAGE_REPOSITORY}:{self.release}-{self.key()}"

    def files_tar(self) -> bytes:
        """The recipe's directories and files as a tarball owned by root, for mmdebstrap's tar-in."""
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            # Directories first, so that files can go into them.
            for entry in sorted(self.entries, key=lambda entry: entry.text is not None):
                info = tarfile.TarInfo(entry.path)
                info.mode = entry.mode
                if entry.text is None:
                    info.type = tarfile.DIRTYPE
                    tar.addfile(info)
                else:
                    data = entry.text.lstrip("\n").encode()
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
        return buffer.getvalue()

    def account_commands(self) -> list[list[str]]:
        """What creates the recipe's groups and users in the image (run by chroot, in order)."""
        commands = [["groupadd", "--system", "--force", group] for group in self.groups]
        commands += [["useradd", "--system", "--gid", user.group, "--home-dir", user.home, "--no-create-home",
                      "--shell", "/usr/sbin/nologin", user.name] for user in self.users]
        return commands


def load_recipe(release: str, text: str | None = None) -> HostRecipe:
    """The recipe of `release`, from recipe.toml (or from `text`, for tests)."""
    check_release(release)
    try:
        parsed = tomllib.loads(RECIPE_FILE.read_text() if text is None else text)
        per_release = parsed["releases"][release]
        entries = (tuple(RecipeEntry(item["path"], item["mode"], None) for item in parsed.get("directory", []))
                   + tuple(RecipeEntry(item["path"], item["mode"], item["text"]) for item in parsed.get("file", [])))
        return HostRecipe(
            release=release,
            variant=parsed["variant"],
            command=tuple(parsed["command"]),
            packages=tuple(parsed["packages"]) + tuple(per_release.get("packages", ())),
            dpkg_options=tuple(parsed.get("dpkg_options", ())),
            entries=entries,
            groups=tuple(per_release.get("groups", ())),
            users=tuple(SystemUser(user["name"], user["group"], user["home"]) for user in per_release.get("users", ())),
        )
    except (OSError, tomllib.TOMLDecodeError, KeyError, TypeError) as error:
        where = RECIPE_FILE if text is None else "the given recipe text"
        raise ContainerHostError(f"cannot read the container host recipe of {release} from {where}: "
                                 f"{type(error).__name__}: {error}") from error
