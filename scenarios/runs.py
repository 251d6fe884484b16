"""Running the harness for real, as a user would, from inside the suite."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from archmatrix.cleanup.names import run_prefix
from archmatrix.report.json_report import load_matrix, schema_problems

ROOT = Path(__file__).resolve().parent.parent
# Set for the runs the suite starts: they must not take the suite lock (see conftest.py).
INNER_RUN = "ARCHMATRIX_INNER_RUN"  # the checkout's conftest.py reads it: such runs take no suite lock


# A command started in the background of a non-interactive shell (a CI wrapper's `cmd &`) inherits SIGINT
# ignored, and so would the runs these scenarios interrupt: Ctrl-C reaches a terminal's run, so theirs start
# as a terminal's would, with SIGINT at its default.
_SIGINT_AS_FROM_A_TERMINAL = ("import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
                              "os.execvp(sys.argv[1], sys.argv[1:])")


def interruptible(command: list[str]) -> list[str]:
    """`command`, started with SIGINT at its default whatever this process ignores."""
    return [sys.executable, "-c", _SIGINT_AS_FROM_A_TERMINAL, *command]


def real_run(report_dir: Path, *options: str, test_path: Path | None = None, env: dict | None = None,
             **popen) -> subprocess.Popen:
    """Start `pytest` on the product's scenarios (or `test_path`) with the harness's options."""
    command = [sys.executable, "-m", "pytest", str(test_path or ROOT / "archmatrix" / "scenarios" / "test_guest.py"),
               "-p", "no:cacheprovider", "--report-dir", str(report_dir), *options]
    environment = {**os.environ, INNER_RUN: "1", **(env or {})}
    return subprocess.Popen(interruptible(command), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=environment, **popen)


def run_id_of(line: str) -> str | None:
    """The run id from the harness's pytest header line."""
    if line.startswith("archmatrix: run "):
        return line.split()[2]
    return None


def domains_of(run_id: str, uri: str = "qemu:///system") -> list[str]:
    names = subprocess.run(["virsh", "-c", uri, "list", "--all", "--name"],
                           capture_output=True, text=True, check=True).stdout.split()
    return [name for name in names if name.startswith(run_prefix(run_id))]


def pools_of(run_id: str, uri: str = "qemu:///system") -> list[str]:
    names = subprocess.run(["virsh", "-c", uri, "pool-list", "--all", "--name"],
                           capture_output=True, text=True, check=True).stdout.split()
    return [name for name in names if name.startswith(f"archmatrix-pool-{run_id}-")]


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
    """An aarch64 + s390x run, signalled once s390x (the longer, so the first) has booted, while aarch64 boots."""
    process = real_run(report_dir, "--arch", "aarch64,s390x", "--accel", "tcg", "-v")
    run_id = read_until(process, "test_binary[s390x-tcg] PASSED")
    process.send_signal(signum)
    return process, run_id


def finish(process: subprocess.Popen, timeout: float = 600) -> tuple[str, str | None]:
    """Wait for a run; its output and run id."""
    output, _ = process.communicate(timeout=timeout)
    run_id = next((run_id_of(line) for line in output.splitlines() if run_id_of(line)), None)
    return output, run_id


def cells_of(report_dir: Path, host: str | None = None) -> dict[str, dict]:
    """A run's cells by id (of one host, when the run had several), from its schema-valid matrix.json."""
    document = load_matrix(report_dir / "matrix.json")
    assert schema_problems(document) == []
    return {cell["id"]: cell for cell in document["cells"] if host is None or cell["host"] == host}


def assert_nothing_left(run_id: str | None, uri: str = "qemu:///system") -> None:
    assert run_id, "the run printed no run id"
    assert domains_of(run_id, uri) == []
    assert pools_of(run_id, uri) == []
    assert qemu_processes_of(run_id) == []
    assert list(Path(tempfile.gettempdir()).glob(f"archmatrix-run-{run_id}-*")) == []
