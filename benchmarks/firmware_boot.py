"""Firmware boot against direct kernel boot, side by side in one run.

For each arch with a built-in firmware disk, alternately in each round: the built-in image booted directly
(libvirt's <kernel>) and the same kernel and init from its firmware disk (--boot-from disk), both judged by
the five checks of the boot. Reports medians of the domain start to the banner and to the login prompt.

Writes reports/firmware-boot.json and reports/firmware-boot.md. Run:
  .venv/bin/python benchmarks/firmware_boot.py [--rounds 3] [--arch aarch64,x86_64,ppc64le,s390x]
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from archmatrix.core.checks import DOMAIN_CHECKS
from archmatrix.core.firmware import FIRMWARE_DISKS
from archmatrix.core.plan import CellKey
from archmatrix.files import write_atomically
from archmatrix.options import settings_for
from archmatrix.run.lifecycle import remove_run_dir
from archmatrix.run.pipeline import Run, judge_cell
from archmatrix.run.rundir import RunDir


def one_boot(arch_name: str, boot: str) -> tuple[float, float]:
    """One cell through the run's pipeline, its built-in image booted directly or from its firmware disk (a fresh
    run each time: one boot per cell and run); its banner and login times."""
    settings = settings_for(["--accel", "tcg", "--boot-from", boot])
    spec = settings.hosts[0]
    run = Run(settings, RunDir.planned(), [spec])
    try:
        judged = judge_cell(run, CellKey(arch_name, "tcg", spec.label), DOMAIN_CHECKS, with_ssh=False)
    finally:
        run.close()
        remove_run_dir(run.run_dir)
    failed = {check: detail for check, (outcome, detail) in judged["outcomes"].items() if outcome != "pass"}
    if failed:
        raise RuntimeError(f"{arch_name} from the {boot}: checks failed: {failed}")
    seen = judged["observation"]
    return seen.banner_s, seen.login_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--arch", default=",".join(FIRMWARE_DISKS))
    parser.add_argument("--report-dir", type=Path, default=Path("reports"))
    args = parser.parse_args()
    rows = []
    for name in args.arch.split(","):
        seen: dict[str, list[tuple[float, float]]] = {"kernel": [], "disk": []}
        for _ in range(args.rounds):
            for boot in seen:
                seen[boot].append(one_boot(name, boot))
        row = {"arch": name, "firmware": FIRMWARE_DISKS[name].firmware, "rounds": args.rounds}
        for boot, times in seen.items():
            row[f"{boot}_banner_s"] = statistics.median(t[0] for t in times)
            row[f"{boot}_login_s"] = statistics.median(t[1] for t in times)
        row["disk_over_kernel"] = row["disk_login_s"] / row["kernel_login_s"]
        rows.append(row)
        print(f"{name:8} direct {row['kernel_login_s']:.2f} s  firmware {row['disk_login_s']:.2f} s  "
              f"ratio {row['disk_over_kernel']:.2f}")
    args.report_dir.mkdir(parents=True, exist_ok=True)
    write_atomically(args.report_dir / "firmware-boot.json", json.dumps(rows, indent=2))
    write_atomically(args.report_dir / "firmware-boot.md", markdown(rows))
    print(f"wrote {args.report_dir / 'firmware-boot.json'} and {args.report_dir / 'firmware-boot.md'}")


def markdown(rows: list[dict]) -> str:
    lines = ["| arch | firmware | direct: banner / login s | from the disk: banner / login s | login, disk / direct |",
             "|---|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row['arch']} | {row['firmware']} | {row['kernel_banner_s']:.2f} / "
                     f"{row['kernel_login_s']:.2f} | {row['disk_banner_s']:.2f} / {row['disk_login_s']:.2f} | "
                     f"{row['disk_over_kernel']:.2f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
