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
import shutil
import statistics
import tempfile
from pathlib import Path

import libvirt

from archmatrix.core.arches import ARCHES
from archmatrix.core.capabilities import parse_capabilities
from archmatrix.core.checks import DOMAIN_CHECKS, judge
from archmatrix.core.firmware import FIRMWARE_DISKS
from archmatrix.core.plan import make_plan
from archmatrix.files import write_atomically
from archmatrix.guest.events import ensure_event_loop
from archmatrix.guest.observe import boot_and_observe
from archmatrix.guest.reaper import wait_for_reaped
from archmatrix.guest.site import GuestSite
from archmatrix.guest.staging import StagedFiles
from archmatrix.hosts.inspectors import LocalInspector
from archmatrix.images.cache import ImageCache
from archmatrix.images.disk_build import firmware_disk_image


def one_boot(conn, caps, arch, image, boot: str, site) -> tuple[float, float]:
    plan = make_plan(arch, "tcg", caps, None, boot=boot)
    seen = boot_and_observe(conn, plan, image, site)
    failed = [verdict.check for verdict in (judge(check, plan, seen) for check in DOMAIN_CHECKS)
              if not verdict.passed]
    if failed:
        raise RuntimeError(f"{arch.name} from the {boot}: checks failed: {failed}: {seen.boot_failure}")
    return seen.banner_s, seen.login_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--arch", default=",".join(FIRMWARE_DISKS))
    parser.add_argument("--report-dir", type=Path, default=Path("reports"))
    args = parser.parse_args()
    ensure_event_loop()
    conn = libvirt.open("qemu:///system")
    caps = parse_capabilities(conn.getCapabilities())
    cache = ImageCache()
    run_dir = Path(tempfile.mkdtemp(prefix="archmatrix-run-firmware-bench-"))
    run_dir.chmod(0o711)
    rows = []
    try:
        for name in args.arch.split(","):
            arch = ARCHES[name]
            images = {"kernel": cache.get_or_build(arch)}
            images["disk"] = firmware_disk_image(cache, arch, images["kernel"])
            seen: dict[str, list[tuple[float, float]]] = {"kernel": [], "disk": []}
            for round_ in range(args.rounds):
                for boot, image in images.items():
                    site = GuestSite(f"fw{round_}{boot[0]}", run_dir, StagedFiles(run_dir), LocalInspector())
                    seen[boot].append(one_boot(conn, caps, arch, image, boot, site))
                    wait_for_reaped()
            row = {"arch": name, "firmware": FIRMWARE_DISKS[name].firmware, "rounds": args.rounds}
            for boot, times in seen.items():
                row[f"{boot}_banner_s"] = statistics.median(t[0] for t in times)
                row[f"{boot}_login_s"] = statistics.median(t[1] for t in times)
            row["disk_over_kernel"] = row["disk_login_s"] / row["kernel_login_s"]
            rows.append(row)
            print(f"{name:8} direct {row['kernel_login_s']:.2f} s  firmware {row['disk_login_s']:.2f} s  "
                  f"ratio {row['disk_over_kernel']:.2f}")
    finally:
        wait_for_reaped()
        shutil.rmtree(run_dir, ignore_errors=True)
        conn.close()
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
