"""Boot time to the guest's banner: raw QEMU (the floor) against the harness, side by side.

For each built-in arch, alternately: (a) raw `qemu-system-*` with the same kernel,
initrd, machine, CPU and console, -nodefaults, started here; (b) the harness's
boot through libvirt (domain start to banner, as the matrix reports it).
Prints medians and the ratio. Run: .venv/bin/python benchmarks/boot_overhead.py [--rounds 3] [ARCH ...]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import libvirt

from harness.arches import ARCHES
from harness.capabilities import parse_capabilities
from harness.guest.events import ensure_event_loop
from harness.guest.observe import BANNER, boot_and_observe
from harness.guest.reaper import wait_for_reaped
from harness.guest.site import GuestSite
from harness.guest.staging import StagedFiles
from harness.hosts.inspectors import LocalInspector
from harness.images.cache import ImageCache
from harness.plan import make_plan

MACHINE_OPTIONS = {"aarch64": "virt", "ppc64le": "pseries", "s390x": "s390-ccw-virtio", "mips64el": "malta",
                   "mipsel": "malta", "x86_64": "q35"}


def raw_qemu_banner_s(arch, image, timeout_s: float = 120) -> float:
    """Seconds from starting QEMU to the banner on its serial console."""
    command = [f"/usr/bin/{arch.emulator}", "-nodefaults", "-display", "none", "-m", str(arch.memory_mib),
               "-machine", MACHINE_OPTIONS[arch.name], "-kernel", str(image.kernel), "-initrd", str(image.initrd),
               "-append", f"console={arch.kernel_console} panic=-1", "-no-reboot"]
    if arch.tcg_cpu:
        command += ["-cpu", arch.tcg_cpu]
    if arch.libvirt_console.target_type == "sclp":
        command += ["-chardev", "stdio,id=c0", "-device", "sclpconsole,chardev=c0"]
    elif arch.name == "ppc64le":
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("arches", nargs="*", default=list(MACHINE_OPTIONS))
    args = parser.parse_args()
    ensure_event_loop()  # before the connection: the console stream needs it
    conn = libvirt.open("qemu:///system")
    caps = parse_capabilities(conn.getCapabilities())
    cache = ImageCache()
    run_dir = Path(tempfile.mkdtemp(prefix="emuv-run-bench-"))
    run_dir.chmod(0o711)
    try:
        print(f"{'arch':10} {'raw QEMU s':>11} {'harness s':>10} {'ratio':>6}   (medians of {args.rounds})")
        for name in args.arches:
            arch = ARCHES[name]
            image = cache.get_or_build(arch)
            plan = make_plan(arch, "tcg", caps, None)
            raw, harness = [], []
            for round_ in range(args.rounds):
                raw.append(raw_qemu_banner_s(arch, image))
                site = GuestSite(f"bench{round_}", run_dir, StagedFiles(run_dir), LocalInspector())
                seen = boot_and_observe(conn, plan, image, site)
                harness.append(seen.banner_s)
            r, h = statistics.median(raw), statistics.median(harness)
            print(f"{name:10} {r:11.2f} {h:10.2f} {h / r:6.2f}")
    finally:
        wait_for_reaped()
        shutil.rmtree(run_dir, ignore_errors=True)
        conn.close()


if __name__ == "__main__":
    main()
