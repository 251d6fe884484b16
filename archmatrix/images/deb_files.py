"""Files read out of a .deb package: the one member that matches, or every member wanted, symlinks resolved."""

from __future__ import annotations

import posixpath
import subprocess
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from archmatrix.images.debian import PackageFetchError


def _first_match(archive: tarfile.TarFile, pattern: str, dest: Path) -> str | None:
    for member in archive:
        name = member.name.removeprefix("./")
        if member.isfile() and Path(name).match(pattern):
            source = archive.extractfile(member)
            assert source is not None
            dest.write_bytes(source.read())
            return name
    return None


@dataclass(frozen=True)
class Symlink:
    target: str  # as stored in the package, relative or absolute


def _all_matches(archive: tarfile.TarFile, wanted: Callable[[str], bool]) -> dict[str, bytes | Symlink]:
    found: dict[str, bytes | Symlink] = {}
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
    return found


def _no_match(deb: Path, pattern: str) -> PackageFetchError:
    return PackageFetchError(f"{deb.name} holds no file matching {pattern!r}")


def extract_member(deb: Path, pattern: str, dest: Path) -> str:
    """Write the one file of `deb` matching glob `pattern` to `dest`; return its path in the package."""
    # We stop reading at the member we want; dpkg-deb then dies of SIGPIPE, which is expected.
    with subprocess.Popen(
        ["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    ) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        with tarfile.open(fileobj=proc.stdout, mode="r|") as archive:
            found = _first_match(archive, pattern, dest)
        proc.stdout.close()
        errors = proc.stderr.read().decode(errors="replace").strip()
        if proc.wait() != 0 and found is None:
            raise PackageFetchError(f"dpkg-deb could not read {deb}: {errors}")
    if found is None:
        raise _no_match(deb, pattern)
    return found


def read_members(deb: Path, wanted: Callable[[str], bool]) -> dict[str, bytes | Symlink]:
    """Every regular file and symlink of `deb` whose path (no leading ./) `wanted` accepts."""
    with subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        with tarfile.open(fileobj=proc.stdout, mode="r|") as archive:
            found = _all_matches(archive, wanted)
        errors = proc.stderr.read().decode(errors="replace").strip()
        if proc.wait() != 0:
            raise PackageFetchError(f"dpkg-deb could not read {deb}: {errors}")
    return found


class DataTar:
    """A package read several times (a kernel's: its file, its dtb, the module index, then a pass per level of
    module dependencies): its data is decompressed once into `path`, then read at random.

    Each stream of the package costs a whole decompression (3-4 CPU-s for a 60 MB kernel package), which a
    fresh machine's first run paid five times per kernel. The file goes when the context ends.
    """

    def __init__(self, deb: Path, path: Path):
        self.deb = deb
        self.path = path
        self._archive: tarfile.TarFile | None = None

    def __enter__(self) -> DataTar:
        with open(self.path, "wb") as out:
            result = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(self.deb)], stdout=out,
                                    stderr=subprocess.PIPE, check=False)
        if result.returncode != 0:
            self.path.unlink(missing_ok=True)
            raise PackageFetchError(f"dpkg-deb could not read {self.deb}: "
                                    f"{result.stderr.decode(errors='replace').strip()}")
        self._archive = tarfile.open(self.path, mode="r:")
        return self

    def __exit__(self, *exc_info) -> None:
        if self._archive is not None:
            self._archive.close()
        self.path.unlink(missing_ok=True)

    def _members(self) -> tarfile.TarFile:
        assert self._archive is not None, "DataTar is used inside its with block"
        return self._archive

    def extract_member(self, pattern: str, dest: Path) -> str:
        """As extract_member() above."""
        found = _first_match(self._members(), pattern, dest)
        if found is None:
            raise _no_match(self.deb, pattern)
        return found

    def read_members(self, wanted: Callable[[str], bool]) -> dict[str, bytes | Symlink]:
        """As read_members() above."""
        return _all_matches(self._members(), wanted)


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
