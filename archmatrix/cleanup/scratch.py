"""Build scratch: one convention for every builder, so that a killed build's scratch is found by anyone.

The scratch of a build called NAME lives in ROOT/tmp/NAME-XXXXXXXX while its builder holds ROOT/locks/NAME.lock
(an flock, released by the kernel when the builder dies): a directory there whose lock is free was left by a
build that was killed. The next build of NAME removes it; the audit counts it meanwhile.
"""

from __future__ import annotations

import fcntl
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def lock_is_free(lock_path: Path) -> bool:
    """No process holds `lock_path` (flock): what a live builder holds, a killed one left free."""
    with open(lock_path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(handle, fcntl.LOCK_UN)
        return True


@contextmanager
def held(lock_path: Path) -> Iterator[None]:
    """An exclusive flock on `lock_path` for the block (across processes: xdist workers, parallel runs)."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class ScratchArea:
    def __init__(self, root: Path):
        self.root = Path(root)

    def lock_path(self, name: str) -> Path:
        return self.root / "locks" / f"{name}.lock"

    def lock(self, name: str):
        """The builder NAME's lock: one build of NAME at a time."""
        return held(self.lock_path(name))

    def new(self, name: str) -> Path:
        """A new scratch directory for build NAME (its lock held by the caller), on the cache's file system."""
        (self.root / "tmp").mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f"{name}-", dir=self.root / "tmp"))

    def stale(self, name: str) -> list[Path]:
        """Remove NAME's scratch left by killed builds (its lock held by the caller); what was removed."""
        found = sorted((self.root / "tmp").glob(f"{name}-*")) if (self.root / "tmp").is_dir() else []
        found = [path for path in found if path.name.rsplit("-", 1)[0] == name]
        for path in found:
            shutil.rmtree(path, ignore_errors=True)
        return found

    def abandoned(self) -> list[Path]:
        """Scratch no live build owns: its builder's lock is free."""
        scratch = self.root / "tmp"
        if not scratch.is_dir():
            return []
        return sorted(path for path in scratch.iterdir()
                      if "-" in path.name and lock_is_free(self.lock_path(path.name.rsplit("-", 1)[0])))
