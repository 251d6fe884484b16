"""Nova's decisions for one image on one host, in one shape whoever made them: Nova itself (read back from the
domain XML it wrote, or its refusal) or archmatrix's own reading of Nova's code. Compared field by field.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from archmatrix.nova.choices import choices_of
from archmatrix.nova.driver import NovaAnswer
from archmatrix.nova.environment import NovaError


@dataclass(frozen=True)
class NovaDecisions:
    """Every field but `refused` and `required_traits` is None when Nova refuses: it wrote no XML."""

    guest_arch: str | None  # <os><type arch>
    domain_type: str | None  # <domain type>
    machine: str | None  # <os><type machine>, as Nova wrote it (an alias such as "virt")
    cpu: str | None  # "host-model", "host-passthrough", a model name, "topology only", "none" (no <cpu>)
    firmware: str | None  # "uefi" (<os firmware='efi'>) or "bios"
    console: str | None  # "serial pty", "console pty sclp"
    video: str | None  # <video><model type>
    disk_bus: str | None  # the root disk's bus
    cdrom_bus: str | None  # the config drive's (and an ISO image's) bus
    required_traits: tuple[str, ...]  # what the scheduler's image prefilter requires (empty: nothing)
    refused: str | None  # Nova's exception, "InvalidMachineType: ...", before any XML

    @property
    def refused_by(self) -> str | None:
        """The exception's name: what two answers are compared by (their messages are worded differently)."""
        return self.refused.split(":", 1)[0] if self.refused else None

    def compared(self) -> dict[str, object]:
        """The fields compared between Nova and the own reading."""
        values = {field.name: getattr(self, field.name) for field in fields(self) if field.name != "refused"}
        return {**values, "refused": self.refused_by}


def refusal(refused: str, required_traits: tuple[str, ...] = ()) -> NovaDecisions:
    return NovaDecisions(None, None, None, None, None, None, None, None, None, required_traits, refused)


def decisions_of(answer: NovaAnswer) -> NovaDecisions:
    """Nova's answer to a case as decisions: read from its XML (choices.py), or its refusal.

    An answer with neither is no decision of Nova's (the bridge could not complete the case): an error naming it.
    """
    traits = tuple(sorted(answer.required_traits))
    if answer.refused:
        return refusal(answer.refused, traits)
    if answer.xml is None:
        raise NovaError(f"case {answer.case_id}: Nova gave no decision, the bridge could not complete it: "
                        f"{answer.error}")
    chosen = choices_of(answer.xml)
    return NovaDecisions(
        guest_arch=chosen.arch, domain_type=chosen.domain_type, machine=chosen.machine, cpu=chosen.cpu,
        firmware="uefi" if chosen.firmware.startswith("efi") else "bios", console=chosen.console,
        video=chosen.video, disk_bus=chosen.disk_bus, cdrom_bus=chosen.cdrom_bus, required_traits=traits,
        refused=None)
