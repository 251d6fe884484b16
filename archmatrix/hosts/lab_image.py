"""The lab host's image in the image cache: found by its key, or built (one builder at a time per kind).

The image is a Debian system of the lab's arch with libvirt and QEMU, built from Debian packages
(lab_recipe.py says what goes in, lab_build.py builds it). One build-time boot lets libvirtd probe every
emulator into its capabilities cache, which the image keeps: a lab host's libvirtd then answers in about a
second instead of after six per emulator. Cached under the image cache by its recipe's key; the manifest lists
every package and version, and the sha256 of each file: an image is re-hashed before each use, and a damaged one
rebuilt, never booted.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from archmatrix.cleanup.scratch import ScratchArea
from archmatrix.files import write_atomically
from archmatrix.hosts.lab_build import build_lab_image, candidate_versions
from archmatrix.hosts.lab_catalog import LabKind
from archmatrix.hosts.lab_image_hashes import damage_of, file_hashes
from archmatrix.hosts.lab_recipe import RELEASE, LabImage, LabImageError, recipe_key
from archmatrix.images.apt_indexes import MIRROR_SYNC
from archmatrix.images.apt_sources import SourcesError, configured_sources

# apt's words for an index it could not fetch, up to the next line: the suite is the part after /dists/.
BROKEN_INDEX = re.compile(r"Failed to fetch \S+/dists/([^/\s]+)/[^|]*")


def lab_cache_dir(cache_root: Path) -> Path:
    return Path(cache_root) / "lab-hosts"


class LabImages:
    """Lab host images in the image cache: found by key, or built (one builder at a time per kind)."""

    def __init__(self, cache_root: Path, say: Callable[[str], None]):
        self.root = lab_cache_dir(cache_root)
        self.scratch = ScratchArea(cache_root)
        self.say = say

    def get_or_build(self, kind: LabKind, seed: Callable[[LabImage], None] | None = None) -> LabImage:
        """The cached image of `kind`, else a new one; `seed` boots it once to fill libvirt's cache."""
        if shutil.which("mmdebstrap") is None or shutil.which("mke2fs") is None:
            raise LabImageError("building a lab host needs mmdebstrap and mke2fs; as root: "
                                "apt-get install mmdebstrap e2fsprogs")
        try:
            sources = configured_sources(RELEASE)
        except SourcesError as error:
            raise LabImageError(f"cannot build the {kind.label} image: {error}") from None
        self.root.mkdir(parents=True, exist_ok=True)
        with self.scratch.lock(f"lab-{kind.arch}"):
            self.scratch.stale(f"lab-{kind.arch}")  # a killed build's: its lock is ours now
            workdir = self.scratch.new(f"lab-{kind.arch}")
            try:
                started = time.monotonic()
                try:
                    versions, sources = self._versions_from_whole_suites(kind, sources, workdir)
                except LabImageError as error:
                    newest = self._newest(kind)
                    if newest is None:
                        raise
                    damage = damage_of(newest.manifest.parent)
                    if damage:
                        raise LabImageError(f"the cached {kind.label} image {newest.key} is damaged ({damage}) and "
                                            f"cannot be rebuilt now: package versions unknown ({error})") from None
                    self.say(f"  {kind.label}: package versions unknown ({error}); using the cached image "
                             f"{newest.key}")
                    return newest
                key = recipe_key(kind, versions)
                image = self._cached(kind, key)
                if image is not None:
                    damage = damage_of(image.manifest.parent)
                    if damage is None:
                        return image
                    self.say(f"  {kind.label}: the cached image {key} is damaged ({damage}); rebuilding it")
                    shutil.rmtree(image.manifest.parent)
                self.say(f"building the {kind.label} host image {key} ({len(versions)} Debian packages)")
                image = build_lab_image(kind, key, versions, sources, workdir, started, self.say)
                if seed is not None:
                    seeding = time.monotonic()
                    seed(image)
                    self.say(f"  {kind.label}: libvirt's capabilities cache seeded by one boot in "
                             f"{time.monotonic() - seeding:.1f} s")
                manifest = json.loads(image.manifest.read_text())
                manifest["build_s"] = round(time.monotonic() - started, 1)
                manifest["sha256"] = file_hashes(image.manifest.parent)  # as seeded: what each use re-hashes
                write_atomically(image.manifest, json.dumps(manifest, indent=1) + "\n")
                for path in image.manifest.parent.iterdir():
                    path.chmod(0o644)
                os.rename(image.manifest.parent, self.root / f"{kind.arch}-{key}")
                for older in self.root.glob(f"{kind.arch}-*"):  # superseded: 280 MB each
                    if older.name != f"{kind.arch}-{key}":
                        shutil.rmtree(older, ignore_errors=True)
                self.say(f"  built the {kind.label} image in {manifest['build_s']} s")
                return self._cached(kind, key)
            finally:
                shutil.rmtree(workdir, ignore_errors=True)

    def _versions_from_whole_suites(self, kind: LabKind, sources: tuple[str, ...],
                                    workdir: Path) -> tuple[dict[str, str], tuple[str, ...]]:
        """The candidate versions, and the sources they come from.

        A suite whose index cannot be fetched whole is left out, and said so: the security suite's ppc64el
        index once came with another size than its Release file said ("Mirror sync in progress?").
        """
        while True:
            try:
                return candidate_versions(kind, sources, workdir), sources
            except LabImageError as error:
                broken = BROKEN_INDEX.search(str(error))
                if broken and not MIRROR_SYNC.search(broken.group(0)):
                    raise  # not the mirror's fault (no space, no permission, no answer): the error says which
                kept = tuple(line for line in sources if not broken or line.split()[2] != broken.group(1))
                if not broken or len(kept) == len(sources) or not kept:
                    raise
                self.say(f"  {kind.label}: the {broken.group(1)} index of {kind.debian_arch} cannot be fetched "
                         f"whole; building without that suite")
                sources = kept

    def _newest(self, kind: LabKind) -> LabImage | None:
        built = sorted(self.root.glob(f"{kind.arch}-*/manifest.json"), key=lambda path: path.stat().st_mtime)
        return self._cached(kind, built[-1].parent.name.removeprefix(f"{kind.arch}-")) if built else None

    def _cached(self, kind: LabKind, key: str) -> LabImage | None:
        directory = self.root / f"{kind.arch}-{key}"
        if not (directory / "manifest.json").is_file():
            return None
        return LabImage(kind, directory / "vmlinuz", directory / "stage1.cpio.gz", directory / "root.ext4",
                        directory / "manifest.json", key)
