"""A plan shown to a person (text) or a program (JSON): who answered first, then Nova's decisions, then the
pitfalls."""

from __future__ import annotations

from dataclasses import asdict

from archmatrix.nova.plan import NovaPlan


def plan_dict(plan: NovaPlan) -> dict:
    decisions = plan.decisions
    return {
        "answered_by": plan.answered_by, "from_nova": plan.from_nova, "how": plan.how,
        "guest_arch": plan.guest_arch, "guest_arch_from": plan.guest_arch_from,
        "domain_type": decisions.domain_type, "emulator": plan.emulator,
        "machine": decisions.machine, "machine_from": plan.machine_from, "machine_canonical": plan.machine_canonical,
        "cpu": decisions.cpu, "firmware": decisions.firmware, "firmware_detail": plan.firmware_detail,
        "console": decisions.console, "video": decisions.video, "disk_bus": decisions.disk_bus,
        "cdrom_bus": decisions.cdrom_bus, "required_traits": list(decisions.required_traits),
        "refused": decisions.refused, "pitfalls": [asdict(pitfall) for pitfall in plan.pitfalls],
    }


def render(plan: NovaPlan) -> str:
    decisions = plan.decisions
    lines = [f"answered by:  {plan.answered_by} ({plan.how})"]
    if decisions.refused:
        lines.append(f"REFUSED:      {decisions.refused}")
    lines.append(f"guest arch:   {plan.guest_arch} (from {plan.guest_arch_from})")
    if not decisions.refused:
        canonical = (f" -> {plan.machine_canonical}" if plan.machine_canonical
                     else f" (not a machine of {plan.guest_arch})")
        lines += [
            f"domain type:  {decisions.domain_type}",
            f"emulator:     {plan.emulator or 'none listed by libvirt'} (libvirt's for the arch and domain type)",
            f"machine:      {decisions.machine or 'none: QEMU default'} (from {plan.machine_from}){canonical}",
            f"cpu:          {decisions.cpu}",
            f"firmware:     {decisions.firmware}: {plan.firmware_detail}",
            f"console:      {decisions.console}",
            f"video:        {decisions.video}",
            f"disk bus:     {decisions.disk_bus}",
            f"cdrom bus:    {decisions.cdrom_bus} (config drive, ISO images)",
        ]
    traits = " ".join(decisions.required_traits)
    lines.append(f"prefilter:    {'requires ' + traits if traits else 'requires no trait'}")
    if plan.pitfalls:
        lines.append("pitfalls:")
        for pitfall in plan.pitfalls:
            lines += [f"  [{pitfall.code}] {pitfall.problem}", f"      fix: {pitfall.fix}"]
    else:
        lines.append("pitfalls: none found")
    return "\n".join(lines) + "\n"
