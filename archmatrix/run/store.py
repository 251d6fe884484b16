"""Values computed once per run and shared by every process of it (xdist workers).

Each value is a JSON file in the run directory, computed by whichever process
asks first while the others wait on a lock. So a guest is booted once per
cell, and KVM probed once per run, however the tests are spread.
"""

from __future__ import annotations

import fcntl
import json
from collections.abc import Callable
from pathlib import Path

from archmatrix.files import write_atomically


class RunStore:
    def __init__(self, run_dir: Path):
        self.directory = Path(run_dir) / "shared"
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)

    def get_or_compute(self, key: str, compute: Callable[[], dict]) -> dict:
        path = self.directory / f"{key}.json"
        with open(self.directory / f"{key}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if path.exists():
                return json.loads(path.read_text())
            value = compute()  # an exception stores nothing: the next asker tries again
            write_atomically(path, json.dumps(value), mode=0o600)  # the run's own: nobody else reads it
            return value
