"""Debian's source packages of the machine's release (busybox, dropbear): fetched through a private apt, unpacked once.

The sources are the machine's release's source packages, fetched through a private apt whose `deb-src` lines
come from the machine's own Debian suites (archmatrix/images/apt_sources.py: no mirror is named here), unpacked
once with Debian's patches applied (dpkg-source -x) under cache_root/src/userland.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from archmatrix.cleanup.scratch import ScratchArea
from archmatrix.files import sha256_of, write_atomically
from archmatrix.images.apt_indexes import mirror_sync_warnings
from archmatrix.images.apt_sources import configured_deb_src_lines
from archmatrix.images.debian import PackageFetchError, PrivateApt
from archmatrix.images.kernel_build import run_logged

Progress = Callable[[str], None]

SOURCE_PACKAGES = ("busybox", "dropbear")


@dataclass(frozen=True)
class SourcePackage:
    name: str
    version: str
    dsc_sha256: str
    tree: Path  # unpacked, Debian's patches applied

    def identity(self) -> dict[str, str]:
        return {"name": self.name, "version": self.version, "dsc_sha256": self.dsc_sha256}


def dsc_field(dsc: str, field: str) -> str | None:
    match = re.search(rf"^{field}: *(\S+) *$", dsc, re.MULTILINE)
    return match.group(1) if match else None


def dsc_of(print_uris: str, name: str) -> str | None:
    """The .dsc file name in `apt-get source --print-uris NAME` output ('URI' FILE SIZE HASH lines)."""
    for line in print_uris.splitlines():
        match = re.match(r"^'[^']+' (\S+\.dsc) \d+ ", line)
        if match and match.group(1).startswith(f"{name}_"):
            return match.group(1)
    return None


class SourceApt(PrivateApt):
    """A PrivateApt with `deb-src` lines only: it reads Sources indexes and fetches source packages."""

    def update(self) -> list[str]:
        result, failures = self._fetch_indexes()
        # apt exits 0 when it could fetch nothing at all (unreachable mirror): no index is the failure.
        if not any(path.is_file() for path in (self.root / "state/lists").glob("*_Sources*")):
            detail = (result.stderr or result.stdout).strip().splitlines()[-3:]
            raise PackageFetchError(f"apt-get update fetched no Sources index from {', '.join(self.sources or ())} "
                                    f"(exit {result.returncode}): {' / '.join(detail)}")
        return mirror_sync_warnings(failures)

    def dsc_name(self, name: str) -> str:
        """The .dsc apt would fetch for source package `name`: it names the version."""
        empty = self.root / "print-uris"  # with files in the directory apt says "skipping" instead of the URIs
        empty.mkdir(exist_ok=True)
        output = self._run("apt-get", ["source", "--print-uris", "--only-source", name], cwd=empty)
        dsc = dsc_of(output, name)
        if dsc is None:
            raise PackageFetchError(f"apt-get source --print-uris {name} names no .dsc: {output.strip()[-300:]}")
        return dsc

    def download_source(self, name: str, dest: Path) -> None:
        self._run("apt-get", ["source", "--download-only", "--only-source", name], cwd=dest)


def _unpacked(apt: SourceApt, root: Path, scratch_area: ScratchArea, name: str, log_path: Path,
              progress: Progress) -> SourcePackage:
    """Source package `name`, unpacked once under `root` (the caller holds the "userland-source" lock)."""
    dsc_name = apt.dsc_name(name)
    tree = root / dsc_name.removesuffix(".dsc")
    record = root / f"{tree.name}.json"  # written last: without it an unpack was killed midway
    if tree.is_dir() and record.is_file():
        return SourcePackage(tree=tree, **json.loads(record.read_text()))
    shutil.rmtree(tree, ignore_errors=True)
    started = time.monotonic()
    progress(f"downloading and unpacking Debian's {tree.name} source (once for every arch)")
    scratch = scratch_area.new("userland-source")
    try:
        apt.download_source(name, scratch)
        dsc = scratch / dsc_name
        version = dsc_field(dsc.read_text(errors="replace"), "Version") if dsc.is_file() else None
        if version is None:
            raise PackageFetchError(f"apt-get source {name} left no readable {dsc_name}")
        # dpkg-source checks the files against the .dsc (whose hash apt checked against the signed index)
        # and applies Debian's patches (CVE fixes among them).
        run_logged(["dpkg-source", "-x", str(dsc), str(scratch / "tree")], scratch, log_path,
                    f"dpkg-source -x {dsc_name}", progress, scratch)
        fields = {"name": name, "version": version, "dsc_sha256": sha256_of(dsc)}
        os.replace(scratch / "tree", tree)
        write_atomically(record, json.dumps(fields))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    progress(f"{tree.name} unpacked in {time.monotonic() - started:.0f} s")
    return SourcePackage(tree=tree, **fields)


def source_packages(cache_root: Path, log_path: Path, progress: Progress) -> tuple[list[SourcePackage], list[str]]:
    """busybox and dropbear sources of the machine's release, and apt's warnings (unverified indexes)."""
    if shutil.which("dpkg-source") is None:
        raise PackageFetchError("unpacking Debian's source packages needs dpkg-source; as root: "
                                "apt-get install dpkg-dev")
    host_arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True,
                               check=True).stdout.strip()
    root = cache_root / "src" / "userland"
    root.mkdir(parents=True, exist_ok=True)
    scratch_area = ScratchArea(cache_root)
    with scratch_area.lock("userland-source"):
        scratch_area.stale("userland-source")  # an unpack that was killed: the lock makes it no one's
        for stale in root.glob(".partial-*"):  # an unpack that was killed; the lock makes it no one's
            shutil.rmtree(stale, ignore_errors=True)
        apt = SourceApt(cache_root / "apt" / "sources", host_arch, sources=configured_deb_src_lines())
        progress("reading the Sources index of the machine's release")
        warnings = apt.update()
        return [_unpacked(apt, root, scratch_area, name, log_path, progress) for name in SOURCE_PACKAGES], warnings
