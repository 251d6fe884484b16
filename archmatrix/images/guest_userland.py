"""What a built-in image takes from Debian packages besides busybox: the NIC's kernel modules, and
the dynamically linked SSH server with exactly the libraries it needs.

Both are resolved at build time from the packages themselves (a module's `depends=`, a
program's PT_INTERP and DT_NEEDED), so a missing piece fails the build by name.
"""

from __future__ import annotations

import lzma
import posixpath
import re
from pathlib import PurePosixPath

from archmatrix.images.deb_files import Symlink, resolve_member
from archmatrix.images.elf_deps import ElfError, elf_needs

MODULE_DIR = "lib/modules/archmatrix"  # in the image: the modules, and `order`, the order init.sh loads them in
_MODULE_FILE = re.compile(r"^(?:usr/)?lib/modules/([^/]+)/kernel/.*/([^/]+)\.ko(\.xz)?$")
_LIBRARY_DIR = re.compile(r"^(?:usr/)?lib(?:32|64)?(?:/[^/]+-linux-[^/]+)?$")  # lib, usr/lib64, lib/<triplet>


class UserlandError(RuntimeError):
    """A module or library the image needs is not in the packages it is taken from."""


def module_name(file_stem: str) -> str:
    return file_stem.replace("-", "_")


def is_module_member(path: str) -> bool:
    return bool(_MODULE_FILE.match(path))


def _depends(module: bytes) -> list[str]:
    """The `depends=` field of a module's .modinfo section (NUL-separated key=value strings)."""
    match = re.search(rb"(?:^|\0)depends=([^\0]*)\0", module)
    return [module_name(name) for name in match.group(1).decode().split(",") if name] if match else []


def _decompressed(path: str, data: bytes) -> bytes:
    return lzma.decompress(data) if path.endswith(".xz") else data


class ModuleIndex:
    """The modules of a kernel package: which exist as files, which are built in."""

    def __init__(self, names: list[str], builtin_text: str):
        self.files = {}
        for path in names:
            match = _MODULE_FILE.match(path)
            if match:
                self.files[module_name(match.group(2))] = path
        self.builtin = {module_name(PurePosixPath(line.strip()).name.removesuffix(".ko"))
                        for line in builtin_text.splitlines() if line.strip()}

    def has(self, name: str) -> bool:
        """Built in, or a module file of the package."""
        return module_name(name) in self.builtin or module_name(name) in self.files


def modules_in_load_order(wanted: tuple[str, ...], index: ModuleIndex, read) -> dict[str, bytes]:
    """Image files for `wanted` modules and their dependencies, dependencies first, plus the `order` file.

    `read(paths)` returns the bytes of those package members (one pass over the package per level of
    dependencies). A module built into the kernel needs no file; one that is neither built in nor in
    the package fails the build.
    """
    modules: dict[str, bytes] = {}
    needed_by: dict[str, str] = {}
    frontier = sorted({module_name(name) for name in wanted} - index.builtin)
    while frontier:
        for name in frontier:
            if name not in index.files:
                why = f" (needed by {needed_by[name]})" if name in needed_by else ""
                raise UserlandError(f"kernel module {name}{why} is neither built into the kernel nor in its package")
        got = read([index.files[name] for name in frontier])
        for name in frontier:
            modules[name] = _decompressed(index.files[name], got[index.files[name]])
        following = set()
        for name in frontier:
            for dependency in _depends(modules[name]):
                if dependency not in modules and dependency not in index.builtin:
                    needed_by.setdefault(dependency, name)
                    following.add(dependency)
        frontier = sorted(following)
    order: list[str] = []

    def visit(name: str, chain: tuple[str, ...]) -> None:
        if name in order or name not in modules:
            return
        if name in chain:
            raise UserlandError(f"module dependency loop: {' -> '.join(chain + (name,))}")
        for dependency in _depends(modules[name]):
            visit(dependency, chain + (name,))
        order.append(name)

    for name in sorted(modules):
        visit(name, ())
    files = {f"{MODULE_DIR}/{name}.ko": modules[name] for name in order}
    if order:
        files[f"{MODULE_DIR}/order"] = "".join(f"{name}.ko\n" for name in order).encode()
    return files


def is_library_member(path: str) -> bool:
    """Shared libraries and the dynamic loader, wherever Debian puts them (not gconv's or others' subdirs)."""
    parent, name = posixpath.split(path)
    return ".so" in name and bool(_LIBRARY_DIR.match(parent))


def with_libraries(programs: dict[str, bytes], libraries: dict[str, bytes | Symlink],
                   packages: list[str]) -> dict[str, bytes]:
    """Image files: each program's interpreter and its libraries, followed recursively, as regular files.

    Libraries land where their package puts them (the loader searches Debian's multiarch directories);
    the interpreter lands at the path the programs name, so it is found even in an image that lacks
    Debian's merged-/usr symlinks.
    """
    by_soname: dict[str, str] = {}
    for path in sorted(libraries):
        by_soname.setdefault(posixpath.basename(path), path)
    files: dict[str, bytes] = {}
    pending = [(path, data) for path, data in programs.items()]
    seen: set[str] = set()
    while pending:
        who, data = pending.pop()
        try:
            needs = elf_needs(data)
        except ElfError as error:
            raise UserlandError(f"{who}: {error}") from None
        if needs.interpreter and needs.interpreter.lstrip("/") not in files:
            target = needs.interpreter.lstrip("/")
            found = resolve_member(libraries, target) or resolve_member(libraries, "usr/" + target)
            if found is None:
                raise UserlandError(f"{who} needs the loader {needs.interpreter}, which is in none of "
                                    f"{', '.join(packages)}")
            files[target] = found[1]
        for soname in needs.needed:
            if soname in seen:
                continue
            seen.add(soname)
            found = resolve_member(libraries, by_soname[soname]) if soname in by_soname else None
            if found is None:
                raise UserlandError(f"{who} needs {soname}, which is in none of {', '.join(packages)}")
            files[by_soname[soname]] = found[1]
            pending.append((soname, found[1]))
    return files
