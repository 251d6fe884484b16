"""Per-cell boot time through each host path, side by side in one run.

Boots the built-in arches (TCG) on this machine's libvirt three ways in each
round: `here` (qemu:///system: files staged, console stream), `viapool` (the
same daemon through its socket: files uploaded into a pool), and a trixie
container host (QEMU 10, libvirt 11, uploaded files). Serial, so that the
hosts take turns on the cores. Prints medians of domain start -> login prompt
and of placing the boot files, per host and arch.

Run: .venv/bin/python benchmarks/host_paths.py [--rounds 3] [--arch aarch64,s390x]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HOSTS = ("here=qemu:///system", "viapool=qemu+unix:///system?socket=/run/libvirt/libvirt-sock")


def one_round(arches: str, report_dir: Path) -> list[dict]:
    command = [sys.executable, "-m", "pytest", str(ROOT / "archmatrix" / "scenarios" / "test_guest.py"), "-q", "-p",
               "no:cacheprovider", "--accel", "tcg", "--arch", arches, "--report-dir", str(report_dir),
               "--container-host", "trixie"]
    for host in HOSTS:
        command += ["--libvirt-uri", host]
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True)
    return json.loads((report_dir / "matrix.json").read_text())["cells"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--arch", default="aarch64,ppc64le,s390x,mips64el,mipsel,x86_64")
    args = parser.parse_args()
    login: dict[tuple[str, str], list[float]] = {}
    placing: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.rounds):
        with tempfile.TemporaryDirectory(prefix="archmatrix-bench-") as directory:
            for cell in one_round(args.arch, Path(directory)):
                if cell["status"] == "pass":
                    key = (cell["host"], cell["arch"])
                    login.setdefault(key, []).append(cell["facts"]["login_s"])
                    placing.setdefault(key, []).append(cell["facts"]["boot_files_s"])
    hosts = sorted({host for host, _ in login}, key=["here", "viapool", "trixie"].index)
    print(f"medians of {args.rounds} rounds: domain start -> login prompt (placing boot files), seconds")
    print("| arch | " + " | ".join(hosts) + " |")
    print("|---|" + "---|" * len(hosts))
    for arch in args.arch.split(","):
        row = [f"{statistics.median(login[(h, arch)]):.2f} ({statistics.median(placing[(h, arch)]):.2f})"
               if (h, arch) in login else "-" for h in hosts]
        print(f"| {arch} | " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
