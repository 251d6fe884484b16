"""Files and directories a person names: what archmatrix reads must be a readable regular file, what it
writes must be (or become) a writable directory.

A FIFO is refused by name before it is opened: reading one blocks until a writer comes, which is
forever. So are a directory, a device (/dev/zero never ends) and a socket. A check that creates a
directory to try it removes again what it created if the directory cannot be written.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path

from archmatrix.inputs import InputError, at
from archmatrix.inputs.text import check_text

READABLE = "a readable regular file"
WRITABLE = "a directory that exists or can be created, and can be written"
LARGEST_TEXT = 16 * 1024 * 1024  # bytes: a hosts file, image properties or a matrix is far smaller
KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
         (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def _kind(mode: int) -> str:
    return next((name for test, name in KINDS if test(mode)), "not a regular file")


def check_input_file(path: str | os.PathLike, where: str, missing_ok: bool = False) -> Path:
    """A regular file that can be read: its kind is judged by name (stat), and only a regular file is opened."""
    check_text(os.fspath(path), where, READABLE)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        if missing_ok:
            return Path(path)
        dangling = os.path.islink(path)
        raise InputError(f"{at(where)}{path} {'is a symbolic link to nothing' if dangling else 'does not exist'}; "
                         f"valid: {READABLE}") from None
    except OSError as error:
        raise InputError(f"{at(where)}{path} cannot be read: {error.strerror}; valid: {READABLE}") from None
    if not stat.S_ISREG(mode):
        raise InputError(f"{at(where)}{path} is {_kind(mode)}; valid: {READABLE}")
    # Read for real: as root os.access says yes to a file of mode 000, and /proc/self/mem is a regular file
    # whose first byte cannot be read. Opening a regular file never waits.
    _read(path, where, 1)
    return Path(path)


def _read(path: str | os.PathLike, where: str, size: int) -> bytes:
    try:
        # O_NONBLOCK: were the name swapped for a FIFO since it was looked at, open() would not wait for a writer.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        with open(fd, "rb") as stream:
            mode = os.fstat(fd).st_mode
            if not stat.S_ISREG(mode):
                raise InputError(f"{at(where)}{path} is {_kind(mode)}; valid: {READABLE}")
            return stream.read(size)
    except OSError as error:
        raise InputError(f"{at(where)}{path} cannot be read: {error.strerror or error}; valid: {READABLE}") from None


def read_input(path: str | os.PathLike, where: str, largest: int = LARGEST_TEXT) -> bytes:
    """The bytes of a file check_input_file accepts, up to `largest`."""
    check_input_file(path, where)
    data = _read(path, where, largest + 1)
    if len(data) > largest:
        raise InputError(f"{at(where)}{path} is larger than {largest} bytes; valid: {READABLE} of at most that")
    return data


def read_input_text(path: str | os.PathLike, where: str, largest: int = LARGEST_TEXT) -> str:
    """The UTF-8 text of a file check_input_file accepts."""
    data = read_input(path, where, largest)
    try:
        return data.decode()
    except UnicodeDecodeError as error:
        raise InputError(f"{at(where)}{path} is not UTF-8 text (byte {data[error.start]:#04x} at offset "
                         f"{error.start}); valid: {READABLE} of UTF-8 text") from None


def check_writable_dir(path: str | os.PathLike, where: str, keep: bool = True) -> Path:
    """A directory that exists or can be created, in which a file can be written.

    Tried for real (as root, os.access says yes to nearly everything, /proc included). What the try
    created is removed if the directory cannot be written, and also when `keep` is false: then only
    whether it could be is known, and its writer creates it. Two runs may check one new directory at once
    (a shared image cache): a directory the other made, or removed, meanwhile is tried again.
    """
    check_text(os.fspath(path), where, WRITABLE)
    for _ in range(RACE_TRIES - 1):
        try:
            return _try_writable(path, where, keep)
        except (FileNotFoundError, FileExistsError):
            continue  # another checker created or removed a directory on the path meanwhile
    try:
        return _try_writable(path, where, keep)
    except OSError as error:
        raise InputError(f"{at(where)}{path} cannot be written: {error.strerror or error}; valid: {WRITABLE}") from None


RACE_TRIES = 20


def _try_writable(path: str | os.PathLike, where: str, keep: bool) -> Path:
    """check_writable_dir's one try; FileNotFoundError or FileExistsError when a concurrent try interfered."""
    target = Path(os.path.abspath(path))
    missing = []
    while not os.path.lexists(target) and target != target.parent:
        missing.append(target)
        target = target.parent
    created: list[Path] = []
    try:
        for directory in reversed(missing):
            directory.mkdir()
            created.append(directory)
        if not stat.S_ISDIR(os.stat(path).st_mode):  # FileNotFoundError: removed meanwhile, tried again
            raise NotADirectoryError(0, "Not a directory")
        with tempfile.NamedTemporaryFile(dir=path, prefix=".archmatrix-write-check-"):
            pass
    except (FileNotFoundError, FileExistsError):
        _remove(created)
        raise
    except OSError as error:
        _remove(created)
        raise InputError(f"{at(where)}{path} cannot be written: {error.strerror or error}; valid: {WRITABLE}") from None
    if not keep:
        _remove(created)
    return Path(path)


def check_output_file(path: str | os.PathLike, where: str) -> Path:
    """A file to write: none there yet or a regular file, in a directory check_writable_dir accepts."""
    valid = "a regular file, or a new one, in a directory that can be written"
    check_text(os.fspath(path), where, valid)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        mode = None
    except OSError as error:
        raise InputError(f"{at(where)}{path} cannot be written: {error.strerror}; valid: {valid}") from None
    if mode is not None and not stat.S_ISREG(mode):
        raise InputError(f"{at(where)}{path} is {_kind(mode)}; valid: {valid}")
    check_writable_dir(Path(path).parent, where, keep=False)
    return Path(path)


def _remove(created: list[Path]) -> None:
    for directory in reversed(created):
        with contextlib.suppress(OSError):
            directory.rmdir()
