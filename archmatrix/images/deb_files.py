"""Files read out of a .deb package: the one member that matches, or every member wanted, symlinks resolved."""

from __future__ import annotations

import posixpath
import subprocess
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from archmatrix.images.debian import PackageFetchError


def extract_member(deb: Path, pattern: str, dest: Path) -> str:
    """Write the one file of `deb` matching glob `pattern` to `dest`; return its path in the package."""
    # We stop reading at the member we want; dpkg-deb then dies of SIGPIPE, which is expected.
    with subprocess.Popen(
        ["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    ) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        found = None
        with tarfile.open(fileobj=proc.stdout, mode="r|") as archive:
            for member in archive:
                name = member.name.removeprefix("./")
                if member.isfile() and Path(name).match(pattern):
                    source = archive.extractfile(member)
                    assert source is not None
                    dest.write_bytes(source.read())
                    found = name
                    break
        proc.stdout.close()
        errors = proc.stderr.read().decode(errors="replace").strip()
        if proc.wait() != 0 and found is None:
            raise PackageFetchError(f"dpkg-deb could not read {deb}: {errors}")
    if found is None:
        raise PackageFetchError(f"{deb.name} holds no file matching {pattern!r}")
    return found


@dataclass(frozen=True)
class Symlink:
    target: str  # as stored in the package, relative or absolute


def read_members(deb: Path, wanted: Callable[[str], bool]) -> dict[str, bytes | Symlink]:
    """Every regular file and symlink of `deb` whose path (no leading ./) `wanted` accepts."""
    found: dict[str, bytes | Symlink] = {}
    with subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        with tarfile.open(fileobj=proc.stdout, mode="r|") as archive:
            for member in archive:
                name = member.name.removeprefix("./")
                if not wanted(name):
                    continue
                if member.issym():
                    found[name] = Symlink(member.linkname)
                elif member.isfile():
                    source = archive.extractfile(member)
                    assert source is not None
                    found[name] = source.read()
        errors = proc.stderr.read().decode(errors="replace").strip()
        if proc.wait() != 0:
            raise PackageFetchError(f"dpkg-deb could not read {deb}: {errors}")
    return found


def resolve_member(tree: dict[str, bytes | Symlink], path: str, hops: int = 10) -> tuple[str, bytes] | None:
    """The file at `path` in `tree` (symlinks followed within it): its real path and bytes, or None."""
    for _ in range(hops):
        entry = tree.get(path)
        if isinstance(entry, bytes):
            return path, entry
        if entry is None:
            return None
        base = "" if entry.target.startswith("/") else str(PurePosixPath(path).parent)
        path = posixpath.normpath(posixpath.join(base, entry.target.lstrip("/")))
    return None
