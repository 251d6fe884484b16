"""What a Nova compute on this host would advertise, against what the run proved.

Nova (libvirt driver, virt_type=qemu) reports a COMPUTE_ARCH_* trait for every
guest arch in the host's capabilities, whether or not a guest of that arch
boots; and no trait tells KVM from TCG. The trait names come from os-traits.
"""

from __future__ import annotations

import os_traits

ARCH_TRAIT_PREFIX = "COMPUTE_ARCH_"


def trait_for(arch: str) -> str | None:
    """The os-traits name for a libvirt guest arch, or None where os-traits has none."""
    name = ARCH_TRAIT_PREFIX + arch.upper()
    return name if name in os_traits.get_traits(ARCH_TRAIT_PREFIX) else None


def trait_rows(guest_arches: list[str], cells: list[dict]) -> list[dict]:
    """One row per arch the host's libvirt offers or the run tried."""
    by_arch: dict[str, dict[str, dict]] = {}
    for cell in cells:
        by_arch.setdefault(cell["arch"], {})[cell["accel"]] = cell
    rows = []
    for arch in sorted(set(guest_arches) | set(by_arch)):
        tried = by_arch.get(arch, {})
        passed = {accel for accel, cell in tried.items() if cell["status"] == "pass"}
        trait = trait_for(arch)
        advertised = trait is not None and arch in guest_arches
        runs_with = "kvm" if "kvm" in passed else "tcg only" if "tcg" in passed else "not proven"
        if not tried:
            why = "not tried by this harness (no catalog entry or not selected)"
        elif passed:
            why = ""
        else:
            why = "; ".join(f"{accel}: {cell['status']}: {cell['reason']}" for accel, cell in sorted(tried.items()))
        rows.append({
            "arch": arch,
            "trait": trait,
            "advertised_by_nova_tcg": advertised,
            "proved": bool(passed),
            "runs_with": runs_with,
            # Advertised to the scheduler, yet no guest of the arch booted here.
            "flagged": advertised and not passed,
            "why_not_proved": why,
        })
    return rows


def honest_traits(rows: list[dict]) -> list[str]:
    return sorted(row["trait"] for row in rows if row["trait"] and row["proved"])
