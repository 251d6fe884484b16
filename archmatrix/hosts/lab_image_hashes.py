"""A cached lab host image is re-hashed before each use: a damaged one is rebuilt (or refused), never booted.

Its manifest records the sha256 of each file as the build left it (after the seeding boot, which writes
libvirt's capabilities cache into the root file system); each use hashes them again. Hashing the 260 MB root
file system, mostly holes, takes well under a second here, against the minutes a lab host takes to boot.
"""

from __future__ import annotations

import json
from pathlib import Path

from archmatrix.images.debian import sha256_of

IMAGE_FILES = ("vmlinuz", "stage1.cpio.gz", "root.ext4")


def file_hashes(directory: Path) -> dict[str, str]:
    """What the manifest records: each file of the image by name, its sha256."""
    return {name: sha256_of(Path(directory) / name) for name in IMAGE_FILES}


def damage_of(directory: Path) -> str | None:
    """Why the image in `directory` must not be booted (a file missing, or not matching its recorded hash, or no
    hash recorded), or None when every file is as it was built."""
    directory = Path(directory)
    try:
        recorded = json.loads((directory / "manifest.json").read_text())["sha256"]
        wanted = {name: recorded[name] for name in IMAGE_FILES}
    except (OSError, ValueError, KeyError, TypeError):
        return "its manifest records no hash of its files (it was built before they were recorded)"
    for name, sha256 in wanted.items():
        path = directory / name
        if not path.is_file():
            return f"{name} is missing"
        if sha256_of(path) != sha256:
            return f"{name} does not match the sha256 its manifest recorded ({str(sha256)[:12]}...)"
    return None
