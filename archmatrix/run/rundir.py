"""A run's private directory: staged images, console logs, shared values, the guests' SSH key.

Planned when the run starts (an id and a path: nothing is created) and made by whichever process first needs it
(the first cell on any xdist worker), so that a pytest session that runs no cell creates nothing. Mode 0711:
QEMU (running as libvirt-qemu) can reach the files libvirt hands it, but cannot list the directory, and nobody
else can either.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path

from archmatrix.cleanup.names import RUN_DIR_PREFIX, write_owner_file
from archmatrix.cleanup.owner import Owner
from archmatrix.cleanup.scratch import held
from archmatrix.ssh.keys import KEY_FILE, RunKey

USES_LIBVIRT = "uses-libvirt"  # marker: this run started domains (its end sweeps its hosts)


class RunDirError(RuntimeError):
    """The run directory cannot be made or is not ours."""


@dataclass(frozen=True)
class RunDir:
    path: Path
    run_id: str
    owner: Owner  # the process that owns the run (the pytest controller): what its leftovers are told by

    @classmethod
    def planned(cls, parent: Path | None = None) -> RunDir:
        """A new run's id and directory, not yet made."""
        run_id = secrets.token_hex(4)
        name = f"{RUN_DIR_PREFIX}{run_id}-{secrets.token_hex(4)}"
        return cls(Path(parent or tempfile.gettempdir()) / name, run_id, Owner.of_this_process())

    def ensure(self) -> bool:
        """Make the directory, its owner file and the run's key pair, once across processes; True if this call made
        the directory."""
        made = False
        try:
            os.mkdir(self.path, 0o711)
            made = True
        except FileExistsError:
            info = os.lstat(self.path)
            if not os.path.isdir(self.path) or os.path.islink(self.path) or info.st_uid != os.getuid():
                raise RunDirError(f"{self.path} exists and is not this run's directory") from None
        os.chmod(self.path, 0o711)  # whatever the umask made of it
        with held(self.path / ".lock"):
            if not (self.path / "owner").exists():
                write_owner_file(self.path, self.owner)
            if not (self.path / KEY_FILE).exists():
                RunKey.create(self.path)  # the guests' SSH key pair, for every worker of the run
        return made

    @property
    def exists(self) -> bool:
        return (self.path / "owner").is_file()

    def to_dict(self) -> dict:
        return {"path": str(self.path), "run_id": self.run_id, "owner": self.owner.tag()}

    @classmethod
    def from_dict(cls, data: dict) -> RunDir:
        return cls(Path(data["path"]), data["run_id"], Owner.from_tag(data["owner"]))
