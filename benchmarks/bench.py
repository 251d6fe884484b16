"""The floor against the harness, side by side in one run, and how many guests at once a host takes.

For each built-in arch, alternately in each round:
  raw     `qemu-system-*` started here with the same kernel, initrd, machine, CPU and console
          (-nodefaults), from its start to the banner: the floor;
  quiet   the same with `quiet` on the kernel's command line: what the kernel's messages through the
          emulated UART cost (the harness keeps them: its console check reads the kernel's own lines);
  cell    the harness's whole cell: placing the boot files, the domain created paused, its console
          stream, resume, QMP questions, banner and login prompt, the five verdicts, and the domain
          destroyed and its files removed (what a user waits for, end to end);
  tuxrun  TuxRun on the same kernel to a shell, when `tuxrun` is installed (else left out, and said).
Then, with --scale ARCH, N guests of ARCH at once (N = 1, 2, 4, ...) until the median boot to the
banner is twice that of one guest alone. Last, the peak resident memory of this process (the harness).

Writes reports/bench.json and reports/bench.md (medians, ratios cell/raw). Run:
  .venv/bin/python benchmarks/bench.py [--rounds 3] [--arch aarch64,s390x] [--scale aarch64]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import resource
import shutil
import statistics
import subprocess
import threading
import time
from pathlib import Path

from archmatrix.core.arches import ARCHES
from archmatrix.core.checks import DOMAIN_CHECKS
from archmatrix.core.plan import CellKey, make_plan
from archmatrix.files import write_atomically
from archmatrix.guest.observe import BANNER, boot_and_observe
from archmatrix.guest.reaper import wait_for_reaped
from archmatrix.images.cache import ImageCache
from archmatrix.options import settings_for
from archmatrix.run.lifecycle import remove_run_dir
from archmatrix.run.pipeline import Run, judge_cell
from archmatrix.run.rundir import RunDir

MACHINE_OPTIONS = {"aarch64": "virt", "ppc64le": "pseries", "ppc64": "pseries", "s390x": "s390-ccw-virtio",
                   "mips64el": "malta", "mipsel": "malta", "mips": "malta", "riscv64": "virt", "x86_64": "q35"}


def raw_qemu_banner_s(arch, image, kernel_args: str = "", timeout_s: float = 120) -> float:
    """Seconds from starting QEMU to the banner on its serial console."""
    command = [f"/usr/bin/{arch.emulator}", "-nodefaults", "-display", "none", "-m", str(arch.memory_mib),
               "-machine", MACHINE_OPTIONS[arch.name], "-kernel", str(image.kernel), "-initrd", str(image.initrd),
               "-append", f"console={arch.kernel_console} panic=-1 {kernel_args}".strip(), "-no-reboot",
               "-accel", "tcg,tb-size=64"]
    if arch.tcg_cpu:
        command += ["-cpu", arch.tcg_cpu]
    if arch.libvirt_console.target_type == "sclp":
        command += ["-chardev", "stdio,id=c0", "-device", "sclpconsole,chardev=c0"]
    elif arch.name.startswith("ppc64"):
        command += ["-chardev", "stdio,id=c0", "-device", "spapr-vty,chardev=c0"]
    else:
        command += ["-serial", "stdio"]
    started = time.monotonic()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seen = b""
    try:
        while time.monotonic() - started < timeout_s:
            chunk = process.stdout.read1(65536)
            if not chunk:
                break
            seen = (seen + chunk)[-65536:]
            if BANNER.search(seen):
                return time.monotonic() - started
        raise RuntimeError(f"raw {arch.name} printed no banner: {seen[-300:]!r}")
    finally:
        process.kill()
        process.wait()


def whole_cell_s(settings, arch_name: str) -> tuple[float, float, int | None]:
    """Seconds from wanting the cell to its verdicts and teardown, through the run's pipeline as pytest's fixtures
    go through it (a fresh run each time: one boot per cell and run); its banner time and QEMU peak RSS."""
    spec = settings.hosts[0]
    run = Run(settings, RunDir.planned(), [spec])
    try:
        run.host(spec.label)  # connecting is the run's, not the cell's
        started = time.monotonic()
        cell = CellKey(arch_name, "tcg", spec.label)
        # No SSH phase (comparable with earlier figures): the boot's five checks.
        judged = judge_cell(run, cell, DOMAIN_CHECKS, with_ssh=False)
        wait_for_reaped()
        elapsed = time.monotonic() - started
    finally:
        run.close()
        remove_run_dir(run.run_dir)
    failed = {check: detail for check, (outcome, detail) in judged["outcomes"].items() if outcome != "pass"}
    if failed:
        raise RuntimeError(f"{arch_name}: checks failed: {failed}")
    seen = judged["observation"]
    return elapsed, seen.banner_s, seen.qemu_peak_rss_kib


def tuxrun_s(arch, image) -> float | None:
    """TuxRun to a shell on the same kernel and initrd, if it is installed."""
    if shutil.which("tuxrun") is None:
        return None
    started = time.monotonic()
    result = subprocess.run(["tuxrun", "--runtime", "null", "--device", f"qemu-{arch.name}", "--kernel",
                             str(image.kernel), "--rootfs", str(image.initrd)], capture_output=True, timeout=600)
    return time.monotonic() - started if result.returncode == 0 else None


def boot_many(host, image, arch, count: int) -> tuple[list[float], list[str]]:
    """Boot `count` guests of `arch` at once on the run's host; their banner times, and the failures."""
    times: list[float] = []
    errors: list[str] = []

    def boot(index: int) -> None:
        plan = dataclasses.replace(make_plan(arch, "tcg", host.capabilities, None), cell_id=f"scale{count}-{index}")
        seen = boot_and_observe(host.connection(), plan, image, host.site, with_ssh=False)
        if seen.banner_s:
            times.append(seen.banner_s)
        else:
            errors.append(seen.boot_failure or seen.start_error)

    threads = [threading.Thread(target=boot, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wait_for_reaped()
    return times, errors


def scale(settings, arch_name: str) -> list[dict]:
    """N guests at once, N doubling, until the median banner time is twice that of one guest."""
    arch = ARCHES[arch_name]
    run = Run(settings, RunDir.planned(), list(settings.hosts))
    try:
        host, image = run.first_host(), run.images.of(arch)
        return _scaled(host, image, arch, arch_name)
    finally:
        run.close()
        remove_run_dir(run.run_dir)


def _scaled(host, image, arch, arch_name: str) -> list[dict]:
    rows, single, count = [], None, 1
    while count <= 32:
        times, errors = boot_many(host, image, arch, count)
        median = statistics.median(times) if times else None
        single = single or median
        rows.append({"guests": count, "median_banner_s": median, "failed": len(errors)})
        print(f"scale {arch_name}: {count} at once, median banner {median} s, {len(errors)} failed")
        if errors or median is None or median >= 2 * single:
            break
        count *= 2
    return rows


def markdown(results: list[dict], scaled: list[dict], rounds: int, harness_peak_mib: int | None = None) -> str:
    lines = [f"Medians of {rounds} rounds, alternating, one guest at a time (TCG).", "",
             "| arch | raw QEMU to banner s | the same, `quiet` s | harness whole cell s | cell / raw | "
             "harness banner s | QEMU peak RSS MiB | TuxRun s |", "|---|---|---|---|---|---|---|---|"]
    for row in results:
        tux = f"{row['tuxrun_s']:.2f}" if row["tuxrun_s"] else "not installed"
        lines.append(f"| {row['arch']} | {row['raw_s']:.2f} | {row['raw_quiet_s']:.2f} | {row['cell_s']:.2f} | "
                     f"{row['cell_over_raw']:.2f} | "
                     f"{row['banner_s']:.2f} | {row['peak_rss_mib']} | {tux} |")
    if scaled:
        lines += ["", "| guests at once | median banner s | failed |", "|---|---|---|"]
        lines += [f"| {r['guests']} | {r['median_banner_s']:.2f} | {r['failed']} |" for r in scaled]
    if harness_peak_mib is not None:
        lines += ["", f"The harness itself (this process, which ran every cell as an xdist worker would): peak RSS "
                      f"{harness_peak_mib} MiB."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--arch", default=",".join(MACHINE_OPTIONS))
    parser.add_argument("--scale", default=None, metavar="ARCH", help="also boot N guests of ARCH at once")
    parser.add_argument("--report-dir", type=Path, default=Path("reports"))
    args = parser.parse_args()
    settings = settings_for(["--accel", "tcg"])
    cache = ImageCache(settings.image_cache)
    results = []
    for name in args.arch.split(","):
        arch = ARCHES[name]
        image = cache.get_or_build(arch)
        raw, quiet, cell, banner, rss, tux = [], [], [], [], [], []
        for _ in range(args.rounds):
            raw.append(raw_qemu_banner_s(arch, image))
            quiet.append(raw_qemu_banner_s(arch, image, "quiet"))
            elapsed, banner_s, peak = whole_cell_s(settings, name)
            cell.append(elapsed)
            banner.append(banner_s)
            rss.append(peak or 0)
            tux.append(tuxrun_s(arch, image))
        row = {"arch": name, "raw_s": statistics.median(raw), "raw_quiet_s": statistics.median(quiet),
               "cell_s": statistics.median(cell),
               "banner_s": statistics.median(banner), "peak_rss_mib": round(statistics.median(rss) / 1024),
               "tuxrun_s": statistics.median(tux) if all(tux) else None, "rounds": args.rounds}
        row["cell_over_raw"] = row["cell_s"] / row["raw_s"]
        results.append(row)
        print(f"{name:10} raw {row['raw_s']:.2f} s  quiet {row['raw_quiet_s']:.2f} s  cell {row['cell_s']:.2f} s  "
              f"ratio {row['cell_over_raw']:.2f}")
    scaled = scale(settings, args.scale) if args.scale else []
    harness_peak_mib = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)  # Linux: KiB
    args.report_dir.mkdir(parents=True, exist_ok=True)
    write_atomically(args.report_dir / "bench.json", json.dumps(
        {"arches": results, "scale": scaled, "harness_peak_rss_mib": harness_peak_mib}, indent=2))
    write_atomically(args.report_dir / "bench.md", markdown(results, scaled, args.rounds, harness_peak_mib))
    print(f"wrote {args.report_dir / 'bench.json'} and {args.report_dir / 'bench.md'}")


if __name__ == "__main__":
    main()
