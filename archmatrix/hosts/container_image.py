"""Container host images: a recipe (container_recipe.py) built into a Docker image, and found again in the cache.

Built with mmdebstrap from the Debian sources this machine's apt is
configured with (the release swapped in), imported into Docker (no registry)
and cached by the key of its recipe (recipes/host-containers/recipe.toml); a
manifest beside the cache records the exact packages it holds. A cache hit
needs the tag, its label and the manifest to agree; otherwise it is rebuilt.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archmatrix.cleanup.scratch import ScratchArea
from archmatrix.files import log_tail, write_atomically
from archmatrix.hosts.container_recipe import ContainerHostError, HostRecipe, load_recipe
from archmatrix.images.apt_sources import SourcesError, configured_sources

if TYPE_CHECKING:
    import docker

LOG_TAIL_LINES = 8  # of mmdebstrap's log, in an error message
RELEASE_LABEL, RECIPE_LABEL = "archmatrix.release", "archmatrix.recipe"


@dataclass(frozen=True)
class HostImage:
    release: str
    tag: str
    image_id: str
    recipe_key: str
    size_bytes: int
    manifest: Path  # JSON: the sources and the exact packages the image holds
    packages: tuple[tuple[str, str], ...] = field(repr=False)  # (name, version)

    def version_of(self, package: str) -> str | None:
        return dict(self.packages).get(package)


def installed_packages(dpkg_status: str) -> tuple[tuple[str, str], ...]:
    """(package, version) of each installed package in a dpkg status file."""
    found = []
    for paragraph in dpkg_status.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in paragraph.splitlines() if ": " in line and line[0] != " ")
        if fields.get("Status") == "install ok installed":
            found.append((fields["Package"], fields["Version"]))
    return tuple(sorted(found))


def _manifest_path(cache_root: Path, recipe: HostRecipe) -> Path:
    return Path(cache_root) / "host-images" / recipe.release / f"{recipe.key()}.json"


def docker_client(timeout_s: float = 600.0) -> docker.DockerClient:
    import docker

    try:
        return docker.from_env(timeout=int(timeout_s))
    except docker.errors.DockerException as error:
        raise ContainerHostError(
            f"no Docker daemon answers ({error}); container hosts need a local one: as root, install "
            "Debian's docker.io and start dockerd (./run does both)") from error


def find_host_image(client: docker.DockerClient, recipe: HostRecipe, cache_root: Path) -> HostImage | None:
    """The cached image of `recipe`, if its tag, labels and manifest agree; else None (build it)."""
    import docker

    try:
        image = client.images.get(recipe.tag)
    except docker.errors.ImageNotFound:
        return None
    path = _manifest_path(cache_root, recipe)
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if manifest.get("image_id") != image.id or image.labels.get(RECIPE_LABEL) != recipe.key():
        return None
    return HostImage(recipe.release, recipe.tag, image.id, recipe.key(), int(image.attrs.get("Size", 0)), path,
                     tuple((name, version) for name, version in manifest["packages"]))


def build_host_image(release: str, cache_root: Path, log: Callable[[str], None],
                     build_timeout_s: float = 1800.0) -> HostImage:
    """The Docker image of `release`'s container host: the cached one, else built now."""
    recipe = load_recipe(release)
    client = docker_client()
    try:
        found = find_host_image(client, recipe, cache_root)
        if found is None:
            scratch = ScratchArea(cache_root)
            with scratch.lock(f"container-{release}"):  # one builder per release, across processes
                scratch.stale(f"container-{release}")  # a killed build's: the lock makes it no one's
                found = find_host_image(client, recipe, cache_root)  # another process may have built it
                if found is None:
                    found = _build(client, recipe, cache_root, log, build_timeout_s)
        return found
    finally:
        client.close()


def _build(client: docker.DockerClient, recipe: HostRecipe, cache_root: Path, log: Callable[[str], None],
           timeout_s: float) -> HostImage:
    if shutil.which("mmdebstrap") is None:
        raise ContainerHostError("mmdebstrap is not installed; as root: apt-get install mmdebstrap")
    try:
        sources = configured_sources(recipe.release)
    except SourcesError as error:
        raise ContainerHostError(f"cannot build the {recipe.release} container host: {error}") from None
    manifest_path = _manifest_path(cache_root, recipe)
    manifest_path.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    log(f"building container host image {recipe.tag} from {'; '.join(sources)}")
    workdir = ScratchArea(cache_root).new(f"container-{recipe.release}")
    try:
        (workdir / "files.tar").write_bytes(recipe.files_tar())
        _run_mmdebstrap(recipe, sources, workdir, timeout_s)
        packages = installed_packages((workdir / "dpkg-status").read_text())
        log(f"  mmdebstrap: {len(packages)} packages, {(workdir / 'rootfs.tar').stat().st_size >> 20} MiB "
            f"in {time.monotonic() - started:.0f} s; importing")
        image = _import(client, recipe, workdir / "rootfs.tar")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    manifest = {
        "release": recipe.release,
        "recipe_key": recipe.key(),
        "tag": recipe.tag,
        "image_id": image.id,
        "sources": list(sources),
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "build_s": round(time.monotonic() - started, 1),
        "packages": [list(package) for package in packages],
    }
    write_atomically(manifest_path, json.dumps(manifest, indent=1) + "\n")
    log(f"  built {recipe.tag} ({int(image.attrs.get('Size', 0)) >> 20} MiB) in {manifest['build_s']} s")
    return HostImage(recipe.release, recipe.tag, image.id, recipe.key(), int(image.attrs.get("Size", 0)),
                     manifest_path, packages)


# mmdebstrap runs a hook that is an executable file directly (no shell), with the chroot as argument.
_ACCOUNTS_HOOK = """#!{python}
import subprocess, sys
for command in {commands!r}:
    subprocess.run(["chroot", sys.argv[1], *command], check=True)
"""


def _run_mmdebstrap(recipe: HostRecipe, sources: tuple[str, ...], workdir: Path, timeout_s: float) -> None:
    hooks = []
    if recipe.account_commands():
        hook = workdir / "accounts-hook"
        hook.write_text(_ACCOUNTS_HOOK.format(python=sys.executable, commands=recipe.account_commands()))
        hook.chmod(0o755)
        hooks.append(f"--customize-hook=./{hook.name}")
    # Hook paths outside the chroot are relative to mmdebstrap's working directory.
    command = [
        "mmdebstrap", f"--variant={recipe.variant}", "--format=tar",
        f"--include={','.join(recipe.packages)}",
        *(f"--dpkgopt={option}" for option in recipe.dpkg_options),
        *hooks,
        "--customize-hook=tar-in files.tar /",
        "--customize-hook=download /var/lib/dpkg/status dpkg-status",
        recipe.release, "rootfs.tar", *sources,
    ]
    log = workdir / "mmdebstrap.log"
    with open(log, "w") as log_file:
        try:
            result = subprocess.run(command, cwd=workdir, stdin=subprocess.DEVNULL, stdout=log_file,
                                    stderr=subprocess.STDOUT, timeout=timeout_s, check=False)
        except subprocess.TimeoutExpired as error:
            raise ContainerHostError(f"mmdebstrap of {recipe.release} did not finish within {timeout_s:.0f} s; "
                                     f"last output: {log_tail(log, LOG_TAIL_LINES, ' / ')}") from error
    if result.returncode != 0:
        raise ContainerHostError(f"mmdebstrap of {recipe.release} failed (exit {result.returncode}): "
                                 f"{log_tail(log, LOG_TAIL_LINES, ' / ')}")


def _import(client: docker.DockerClient, recipe: HostRecipe, tarball: Path) -> Any:
    import docker

    try:
        previous = client.images.get(recipe.tag).id  # a damaged entry being replaced
    except docker.errors.ImageNotFound:
        previous = None
    changes = [
        f"CMD {json.dumps(list(recipe.command))}",
        f"LABEL {RELEASE_LABEL}={recipe.release} {RECIPE_LABEL}={recipe.key()}",
    ]
    repository, tag = recipe.tag.split(":")
    try:
        client.api.import_image_from_file(str(tarball), repository=repository, tag=tag, changes=changes)
        image = client.images.get(recipe.tag)
    except docker.errors.DockerException as error:
        raise ContainerHostError(f"docker import of {recipe.tag} failed: {error}") from error
    if previous is not None and previous != image.id:
        try:
            client.images.remove(previous)
        except docker.errors.APIError:
            pass  # still used by a container: docker keeps it, and so do we
    return image


