"""Nova's own environment: a virtual environment with a pinned Nova and libvirt-python, one per Nova version,
made on first use and reused; and the bridge (archmatrix/nova/bridge/) run in it, JSON in and out.

Nova pins much of its world (oslo.*, SQLAlchemy, eventlet): it never shares archmatrix's environment. The pins
of a version are constraints/nova-VERSION.txt (a pip freeze of an environment where the bridge's checks passed);
a version without pins installs unpinned, and says so.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from archmatrix.cleanup.scratch import ScratchArea
from archmatrix.paths import default_nova_dir

DEFAULT_VERSION = "34.0.0"  # OpenStack 2026.2; 29.4.0 is 2024.1 (Caracal), also pinned
BRIDGE = Path(__file__).resolve().parent / "bridge"
CONSTRAINTS = Path(__file__).resolve().parent / "constraints"
INSTALL_TIMEOUT_S = 900.0
ASK_TIMEOUT_S = 300.0


class NovaError(RuntimeError):
    """Nova's environment could not be made, or the bridge could not answer; the message says which and why."""


def _no_progress(line: str) -> None:
    pass


@dataclass(frozen=True)
class NovaEnvironment:
    version: str
    root: Path  # the directory all of this version's environments live in

    @property
    def constraints(self) -> Path | None:
        path = CONSTRAINTS / f"nova-{self.version}.txt"
        return path if path.is_file() else None

    @property
    def key(self) -> str:
        """The environment's content key: the version, its pins and this Python; another key, another venv."""
        digest = hashlib.sha256(f"{self.version} {sys.version_info[:2]}".encode())
        digest.update(self.constraints.read_bytes() if self.constraints else b"unpinned")
        return digest.hexdigest()[:16]

    @property
    def path(self) -> Path:
        return self.root / f"nova-{self.version}-{self.key}"

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"

    @property
    def installed(self) -> bool:
        return (self.path / ".installed").is_file()

    def ensure(self, say: Callable[[str], None] = _no_progress) -> NovaEnvironment:
        """Install this version once (whichever process asks first); a failure names pip's last words."""
        if self.installed:
            return self
        scratch = ScratchArea(self.root)
        with scratch.lock(f"nova-{self.version}"):
            if self.installed:
                return self
            # A virtual environment records its own path: it is made where it stays, under the lock, and marked
            # done last (a half-made one, of a killed install, is made again).
            self._make(self.path, say)
            (self.path / ".installed").write_text(f"nova {self.version}\n")
        return self

    def _make(self, where: Path, say: Callable[[str], None]) -> None:
        started = time.monotonic()
        pins = ["-c", str(self.constraints)] if self.constraints else []
        say(f"nova {self.version}: making its environment in {where} "
            f"({'pinned by ' + self.constraints.name if pins else 'unpinned: no pins for this version'})")
        if where.exists():
            shutil.rmtree(where)
        steps = [[sys.executable, "-m", "venv", str(where)],
                 [str(where / "bin" / "pip"), "install", "--disable-pip-version-check", "-q", *pins,
                  f"nova=={self.version}", "libvirt-python"],
                 [str(where / "bin" / "python"), "-c", "import nova.virt.libvirt.driver, libvirt"]]
        for step in steps:
            try:
                result = subprocess.run(step, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                shutil.rmtree(where, ignore_errors=True)
                raise NovaError(f"installing nova {self.version}: {' '.join(step[:3])} did not finish within "
                                f"{INSTALL_TIMEOUT_S:.0f} s") from None
            if result.returncode != 0:
                shutil.rmtree(where, ignore_errors=True)
                said = [line for line in (result.stderr + result.stdout).splitlines()
                        if line.strip() and "is ignored: it is neither a file nor a directory" not in line][-4:]
                raise NovaError(f"installing nova {self.version} failed at {' '.join(step[:3])}: "
                                f"{' / '.join(said)}")
        size_mb = sum(f.stat().st_size for f in where.rglob("*") if f.is_file()) >> 20
        say(f"nova {self.version}: ready in {time.monotonic() - started:.0f} s, {size_mb} MB")

    def ask(self, request: dict, timeout_s: float = ASK_TIMEOUT_S) -> dict:
        """The bridge's answer to `request` (see archmatrix/nova/driver.py); NovaError if it gave none."""
        if not self.installed:
            raise NovaError(f"nova {self.version} is not installed in {self.root} (--nova installs it on first "
                            f"use; ./run test does too)")
        # Nova's domain-capabilities loop depends on set order: a fixed hash seed keeps its answers comparable.
        environment = {**os.environ, "PYTHONHASHSEED": "0"}
        try:
            result = subprocess.run([str(self.python), str(BRIDGE)], input=json.dumps(request), capture_output=True,
                                    text=True, timeout=timeout_s, env=environment)
        except subprocess.TimeoutExpired:
            raise NovaError(f"nova {self.version}'s driver did not answer within {timeout_s:.0f} s") from None
        try:
            response = json.loads(result.stdout)
        except ValueError:
            raise NovaError(f"nova {self.version}'s bridge gave no answer (exit {result.returncode}): "
                            f"{result.stderr.strip()[-800:]}") from None
        if "bridge_error" in response:
            raise NovaError(f"nova {self.version}'s bridge failed: {response['bridge_error']['exception']}: "
                            f"{response['bridge_error']['message']}")
        return response


def pinned_nova_versions() -> list[str]:
    """The Nova releases whose dependencies archmatrix pins (constraints/nova-VERSION.txt)."""
    return sorted((path.stem.removeprefix("nova-") for path in CONSTRAINTS.glob("nova-*.txt")), reverse=True)


def nova_environment(version: str = DEFAULT_VERSION, root: Path | None = None) -> NovaEnvironment:
    return NovaEnvironment(version, Path(root or default_nova_dir()))
