"""What a guest's /proc/cpuinfo shows for the CPU QEMU built, per QEMU CPU type (QOM), measured in guests here.

The guest-arch check asks QEMU which CPU it built (QMP) and looks for that CPU's
signature in what the guest's own kernel reports, so a guest that runs on
another CPU than the plan's is caught from both sides.
"""

from __future__ import annotations

import re

# QEMU CPU type -> a line /proc/cpuinfo shows for it (re.MULTILINE), as Linux 6.1/6.12 print it under QEMU 7.2.
SIGNATURES = {
    "cortex-a57-arm-cpu": r"^CPU part\s*:\s*0xd07$",  # Arm's part number of the Cortex-A57
    "cortex-a15-arm-cpu": r"^CPU part\s*:\s*0xc0f$",
    "power8_v2.0-powerpc64-cpu": r"^cpu\s*:\s*POWER8\b",
    "power9_v2.0-powerpc64-cpu": r"^cpu\s*:\s*POWER9\b",
    "power10_v2.0-powerpc64-cpu": r"^cpu\s*:\s*POWER10\b",
    "qemu-s390x-cpu": r"^machine\s*:\s*8561$",  # QEMU 7.2's "qemu" model reports the z15's machine type
    "5KEc-mips64-cpu": r"^cpu model\s*:\s*MIPS 5KE\b",
    "24Kf-mips-cpu": r"^cpu model\s*:\s*MIPS 24Kc\b.*\bFPU\b",  # Linux names the 24Kf "24Kc ... FPU"
    "rv64-riscv-cpu": r"^isa\s*:\s*rv64imafdc",
    "qemu64-x86_64-cpu": r"^model name\s*:\s*QEMU Virtual CPU version",
    "qemu32-i386-cpu": r"^model name\s*:\s*QEMU Virtual CPU version",
    # What libvirt made of Nova's host-model under TCG on this machine's AMD CPU (QEMU 10.0, trixie host).
    "EPYC-x86_64-cpu": r"^model name\s*:\s*AMD EPYC Processor$",
}


def signature_for(cpu_type: str | None) -> str | None:
    return SIGNATURES.get(cpu_type or "")


def shows(cpuinfo: str, signature: str) -> str | None:
    """The line of /proc/cpuinfo that matches the signature, or None."""
    found = re.search(signature, cpuinfo, re.MULTILINE)
    return found.group(0).strip() if found else None


def built_as_planned(cpu_type: str | None, cpu_model: str | None) -> bool:
    """QEMU's CPU type is the plan's model (cortex-a57 -> cortex-a57-arm-cpu, POWER8 -> power8_v2.0-powerpc64-cpu);
    any type for a machine default."""
    if cpu_model is None:
        return cpu_type is not None
    name, model = (cpu_type or "").lower(), cpu_model.lower()
    return name.startswith(model) and name[len(model):len(model) + 1] in ("-", "_")
