"""Running the harness for real, as a user would, from inside the suite."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from harness.guest.domain import run_prefix

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
    return [name for name in names if name.startswith(run_prefix(run_id))]


def pools_of(run_id: str, uri: str = "qemu:///system") -> list[str]:
    names = subprocess.run(["virsh", "-c", uri, "pool-list", "--all", "--name"],
                           capture_output=True, text=True, check=True).stdout.split()
    return [name for name in names if name.startswith(f"emuv-pool-{run_id}-")]


def qemu_processes_of(run_id: str) -> list[str]:
    result = subprocess.run(["pgrep", "-af", f"guest={run_prefix(run_id)}"], capture_output=True, text=True)
    return result.stdout.splitlines()


def read_until(process: subprocess.Popen, marker: str | None = None) -> str | None:
    """Read a run's output until its run id (and then `marker`, if given) appear; return the run id."""
    run_id = None
    for line in process.stdout:
        run_id = run_id or run_id_of(line)
        if run_id and (marker is None or marker in line):
            break
    return run_id


def interrupt_mid_run(report_dir: Path, signum: int) -> tuple[subprocess.Popen, str | None]:
    """An aarch64 + s390x run, signalled once aarch64 has booted, while s390x boots."""
    process = real_run(report_dir, "--arch", "aarch64,s390x", "--accel", "tcg", "-v")
    run_id = read_until(process, "test_binary[aarch64-tcg] PASSED")
    process.send_signal(signum)
    return process, run_id
