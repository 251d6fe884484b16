"""What a guest's own kernel says about the arch it runs, for images that print no ARCHMATRIX banner.

Each arch's lines were read from this machine's boot logs (Debian 6.1 and 6.12 kernels and the
tinyconfig ones built here). Every pattern of an arch must appear. They tell an arch family and,
where a line shows it, the word size; they cannot tell every byte order, and the verdict says so.
"""

from __future__ import annotations

import re

LINUX_VERSION = re.compile(r"Linux version (\S+)")
_SIXTY_FOUR_BIT = (r"\bDMA32\s+\[mem", "a 64-bit kernel (it has a DMA32 zone)")
_MIPS = (r"CPU0 revision is: [0-9a-f]+ \(MIPS", "a MIPS CPU")
_POWER = (r"\b(?:radix|hash)-mmu: ", "a 64-bit Power kernel (Book3S MMU)")

EVIDENCE: dict[str, tuple[tuple[str, str], ...]] = {
    "aarch64": ((r"CPU features: detected", "an arm64 kernel (its CPU features line)"),),
    "armv7l": ((r"CPU: ARMv7 Processor", "an ARMv7 CPU"),),
    "armv6l": ((r"CPU: ARMv6-compatible processor", "an ARMv6 CPU"),),
    "ppc64le": (_POWER,),
    "ppc64": (_POWER,),
    "s390x": ((r"setup: Linux is running .* in 64-bit mode", "s390x in 64-bit mode"),),
    "mips64el": (_MIPS, _SIXTY_FOUR_BIT),
    "mips64": (_MIPS, _SIXTY_FOUR_BIT),
    "mipsel": (_MIPS,),
    "mips": (_MIPS,),
    "riscv64": ((r"riscv: base ISA extensions", "a RISC-V kernel"), _SIXTY_FOUR_BIT),
    "x86_64": ((r"x86/(?:fpu|PAT): ", "an x86 kernel"), _SIXTY_FOUR_BIT),
}
# Arches whose kernel lines above cannot tell them from a sibling of the other byte order.
BYTE_ORDER_UNSEEN = {"ppc64le", "ppc64", "mips64el", "mips64", "mipsel", "mips"}


def kernel_evidence(console: str) -> dict:
    """The release the kernel names and, per catalog arch, which of its lines the console shows."""
    return kernel_evidence_of([console])


def kernel_evidence_of(pieces) -> dict:
    """kernel_evidence of a console read in pieces (each line looked for is whole in one of them)."""
    release = None
    seen: dict[str, set[str]] = {arch: set() for arch in EVIDENCE}
    for piece in pieces:
        version = LINUX_VERSION.search(piece)
        release = release or (version.group(1) if version else None)
        for arch, patterns in EVIDENCE.items():
            seen[arch].update(meaning for pattern, meaning in patterns if re.search(pattern, piece, re.MULTILINE))
    return {"release": release,
            "lines": {arch: [meaning for _, meaning in patterns if meaning in seen[arch]]
                      for arch, patterns in EVIDENCE.items()}}


def judge_arch(arch: str, evidence: dict) -> tuple[bool, str]:
    """Whether the kernel's lines show `arch`, and what they showed (or lacked)."""
    if evidence.get("release") is None:
        return False, "no 'Linux version' line on the console"
    patterns = EVIDENCE.get(arch)
    if patterns is None:
        return False, f"no kernel-line evidence is known for {arch} (archmatrix/core/kernel_evidence.py)"
    seen = evidence["lines"].get(arch, [])
    missing = [meaning for _, meaning in patterns if meaning not in seen]
    if missing:
        shown = [f"{other}: {', '.join(lines)}" for other, lines in evidence["lines"].items()
                 if lines and len(lines) == len(EVIDENCE[other])]
        return False, (f"Linux {evidence['release']}, but its lines do not show {'; '.join(missing)}"
                       + (f" (they fit {'; '.join(shown)})" if shown else ""))
    said = f"Linux {evidence['release']}, from the kernel's own lines: {'; '.join(seen)}"
    if arch in BYTE_ORDER_UNSEEN:
        said += " (its byte order is not in these lines)"
    return True, said
