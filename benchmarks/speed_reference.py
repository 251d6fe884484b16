"""The speed probe's reference figures: its payloads' loops timed on this machine (archmatrix/hosts/speed_probe.py).

Boots each payload (x86_64, aarch64) under TCG on this machine's libvirt, alternately, `--rounds` times, and
prints each one's START-to-END seconds: fastest, median, slowest. The fastest is the reference (REFERENCE_S): the
machine's own speed with the least of other runs' load on its cores; the spread is what NOISE_BAND must cover.

Run (boots guests: under the machine's boot lock if it has one):
    .venv/bin/python benchmarks/speed_reference.py [--rounds 20]
"""

from __future__ import annotations

import argparse
import statistics

from archmatrix.guest.reaper import wait_for_reaped
from archmatrix.hosts.speed_probe import PAYLOAD_ARCHES, payload_plan, payload_seconds
from archmatrix.options import settings_for
from archmatrix.run.lifecycle import remove_run_dir
from archmatrix.run.pipeline import Run
from archmatrix.run.rundir import RunDir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    settings = settings_for([])
    run_dir = RunDir.planned()
    run = Run(settings, run_dir, list(settings.hosts), announce=False)
    times: dict[str, list[float]] = {arch: [] for arch in PAYLOAD_ARCHES}
    try:
        host = run.first_host()
        for _ in range(args.rounds):
            for arch in PAYLOAD_ARCHES:
                seconds, why_not = payload_seconds(host.connection(), payload_plan(arch, host.capabilities, 60.0),
                                                   host.site)
                if seconds is None:
                    raise SystemExit(f"the {arch} payload did not run to its end: {why_not}")
                times[arch].append(seconds)
                wait_for_reaped()  # its domain is gone before the next of its name starts
    finally:
        run.close()
        remove_run_dir(run_dir)
    print(f"START to END of each payload, {args.rounds} rounds, seconds")
    print("| payload | fastest | median | slowest | slowest / fastest |")
    print("|---|---|---|---|---|")
    for arch, seconds in times.items():
        print(f"| {arch} | {min(seconds):.3f} | {statistics.median(seconds):.3f} | {max(seconds):.3f} | "
              f"{max(seconds) / min(seconds):.2f} |")
    print("all: " + "; ".join(f"{arch} " + " ".join(f"{s:.3f}" for s in seconds) for arch, seconds in times.items()))


if __name__ == "__main__":
    main()
