"""What the reports keep of a cell's boot: its facts, from its plan and what its boot showed."""

from __future__ import annotations

from dataclasses import asdict

from archmatrix.core.observation import Observation
from archmatrix.core.plan import Plan


def cell_facts(plan: Plan, seen: Observation) -> dict:
    """What the reports keep of a cell's boot."""
    return {
        "emulator": seen.live_emulator,
        "emulator_resolved": seen.live_emulator_real,
        "machine": plan.machine,
        "machine_canonical": seen.live_machine,
        "cpu_model": plan.cpu_model,
        "kernel_console": plan.kernel_console,
        "first_output_s": seen.first_output_s,
        "last_output_s": seen.last_output_s,
        "banner_s": seen.banner_s,
        "login_s": seen.login_s,
        "guest": asdict(seen.banner) if seen.banner else None,
        "image": seen.image,
        "console_log": seen.console_log,
        "console_bytes": seen.console_bytes,
        "process_note": seen.process_note,
        "kernel_on_host": seen.kernel_on_host,
        "boot_files_s": seen.boot_files_s,
        "qemu_peak_rss_kib": seen.qemu_peak_rss_kib,
        "qemu_version": seen.qemu.qemu_version if seen.qemu else None,
        "removable_media": list(seen.qemu.removable_media) if seen.qemu else [],
        "ssh": asdict(seen.ssh) if seen.ssh else None,
        "guest_arch": asdict(seen.guest_arch) if seen.guest_arch else None,
        "network": asdict(seen.network) if seen.network else None,
        "boot_progress": asdict(seen.boot_progress) if seen.boot_progress else None,
        "plan": plan.summary(),
        **({"nova": asdict(seen.nova)} if seen.nova else {}),
    }
