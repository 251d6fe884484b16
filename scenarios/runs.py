"""Running the harness for real, as a user would, from inside the suite."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Set for the runs the suite starts: they must not take the suite lock (see conftest.py).
INNER_RUN = "EMUV_INNER_RUN"


def real_run(report_dir: Path, *options: str, test_path: Path | None = None, env: dict | None = None,
             **popen) -> subprocess.Popen:
    """Start `pytest` on the product's scenarios (or `test_path`) with the harness's options."""
    command = [sys.executable, "-m", "pytest", str(test_path or ROOT / "scenarios" / "test_guest.py"),
               "-p", "no:cacheprovider", "--report-dir", str(report_dir), *options]
    environment = {**os.environ, INNER_RUN: "1", **(env or {})}
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=environment, **popen)


def run_id_of(line: str) -> str | None:
    """The run id from the harness's pytest header line."""
    if line.startswith("emulation verifier: run "):
        return line.split()[3]
    return None


def domains_of(run_id: str) -> list[str]:
    names = subprocess.run(["virsh", "-c", "qemu:///system", "list", "--all", "--name"],
                           capture_output=True, text=True, check=True).stdout.split()
    return [name for name in names if name.startswith(f"emuv-{run_id}-")]


def qemu_processes_of(run_id: str) -> list[str]:
    result = subprocess.run(["pgrep", "-af", f"guest=emuv-{run_id}-"], capture_output=True, text=True)
    return result.stdout.splitlines()
