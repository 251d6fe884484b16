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


def trait_rows(guest_arches: list[str], cells: list[dict],
               nova_traits: dict[str, list[str]] | None = None) -> list[dict]:
    """One row per arch the host's libvirt offers or the run tried.

    `nova_traits` (virt_type -> COMPUTE_ARCH_* traits), when Nova's own driver was asked (--nova): what Nova
    advertises comes from it; else from archmatrix's reading (a trait for every emulator libvirt lists).
    """
    by_arch: dict[str, dict[str, list[dict]]] = {}
    for cell in cells:  # a cell of Nova's domain proves its arch as much as archmatrix's own domain does
        by_arch.setdefault(cell["arch"], {}).setdefault(cell["accel"], []).append(cell)
    rows = []
    for arch in sorted(set(guest_arches) | set(by_arch)):
        tried = by_arch.get(arch, {})
        passed = {accel for accel, same in tried.items() if any(cell["status"] == "pass" for cell in same)}
        trait = trait_for(arch)
        if nova_traits is not None:
            advertised = trait is not None and trait in nova_traits.get("qemu", [])
        else:
            advertised = trait is not None and arch in guest_arches
        runs_with = "kvm" if "kvm" in passed else "tcg only" if "tcg" in passed else "not proven"
        if not tried:
            why = "not tried by this harness (no catalog entry or not selected)"
        elif passed:
            why = ""
        else:
            why = "; ".join(f"{cell['id']}: {cell['status']}: {cell['reason']}"
                            for _, same in sorted(tried.items()) for cell in same)
        rows.append({
            "arch": arch,
            "trait": trait,
            "advertised_by_nova_tcg": advertised,
            "advertised_by_nova_kvm": trait is not None and trait in (nova_traits or {}).get("kvm", []),
            "advertised_from": "Nova's own driver" if nova_traits is not None else "archmatrix's reading of Nova",
            "proved": bool(passed),
            "runs_with": runs_with,
            # Advertised to the scheduler, yet no guest of the arch booted here.
            "flagged": advertised and not passed,
            "why_not_proved": why,
        })
    return rows


def honest_traits(rows: list[dict]) -> list[str]:
    return sorted(row["trait"] for row in rows if row["trait"] and row["proved"])
