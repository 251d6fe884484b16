"""What OpenStack Nova's libvirt driver would do with an image's properties on a host, who said so, and the
pitfalls: Nova's decisions (from Nova itself, or archmatrix's own reading) with what the host makes of them.

The decisions come from archmatrix/nova/decisions.py (Nova's XML read back) or reading.py (the own reading);
properties.py reads and checks the image's properties, lint.py finds the pitfalls, render.py shows a plan.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from archmatrix.core.capabilities import HostCapabilities
from archmatrix.core.plan import NovaChoice
from archmatrix.nova.decisions import NovaDecisions, decisions_of
from archmatrix.nova.domcaps import DomainCapabilities, offer_for, queried
from archmatrix.nova.driver import NovaAnswer
from archmatrix.nova.lint import Pitfall, pitfalls_of
from archmatrix.nova.lint import blocking as blocking_pitfalls
from archmatrix.nova.properties import (  # noqa: F401 (the names options.py and the CLI import from here)
    PropertyError,
    check_properties,
    guest_arch_of,
    image_arch_of,
    read_properties,
)
from archmatrix.nova.reading import machine_of, own_decisions

OWN_READING = "archmatrix's own reading of Nova 34's libvirt driver"
BIOS = {"ppc64le": "SLOF (pseries)", "ppc64": "SLOF (pseries)", "s390x": "the s390-ccw BIOS",
        "x86_64": "SeaBIOS", "i686": "SeaBIOS"}
NOT_A_MODEL = ("host-model", "host-passthrough", "topology only", "none")


@dataclass(frozen=True)
class NovaPlan:
    answered_by: str  # "nova 34.0.0", or OWN_READING
    how: str  # how Nova was asked, or why the own reading answered
    decisions: NovaDecisions
    guest_arch: str  # also when Nova refused: the arch its properties name
    guest_arch_from: str  # which property (or the host) gave it
    emulator: str | None  # what libvirt picks for the guest arch and domain type (Nova never writes <emulator>)
    machine_from: str
    machine_canonical: str | None  # the alias as libvirt resolves it for the guest arch; None: not of that arch
    firmware_detail: str  # which firmware libvirt would choose from
    pitfalls: list[Pitfall] = field(default_factory=list)

    @property
    def from_nova(self) -> bool:
        return self.answered_by != OWN_READING

    @property
    def domain_type(self) -> str | None:
        return self.decisions.domain_type

    @property
    def machine(self) -> str | None:
        return self.decisions.machine

    @property
    def cpu(self) -> str | None:
        return self.decisions.cpu

    @property
    def firmware(self) -> str | None:
        """"uefi" or "bios"; None when Nova refuses."""
        return self.decisions.firmware

    @property
    def disk_bus(self) -> str | None:
        return self.decisions.disk_bus

    @property
    def refused(self) -> str | None:
        return self.decisions.refused


def make_plan(decisions: NovaDecisions, answered_by: str, how: str, properties: dict[str, str],
              host: HostCapabilities, virt_type: str, domcaps: DomainCapabilities | None = None,
              matrix_cells: dict[str, dict] | None = None) -> NovaPlan:
    """A plan of these decisions, whoever made them: what the host's libvirt makes of them, and the pitfalls."""
    guest, guest_from = guest_arch_of(properties, host.host_arch)
    guest = decisions.guest_arch or guest
    offer = host.offer_for(guest)
    domain_type = decisions.domain_type or ("qemu" if guest != host.host_arch else virt_type)
    machine = decisions.machine or machine_of(properties, host.host_arch)
    if "hw_machine_type" in properties:
        machine_from = "hw_machine_type"
    else:
        image_arch = image_arch_of(properties, host.host_arch)
        by = "hw_architecture" if "hw_architecture" in properties else "the host's arch"
        machine_from = f"Nova's default for {image_arch} ({by})"
    canonical = offer.machines.get(machine) if offer and machine else None
    return NovaPlan(
        answered_by=answered_by, how=how, decisions=decisions, guest_arch=guest, guest_arch_from=guest_from,
        emulator=(offer.domain_emulators.get(domain_type) or offer.emulator) if offer else None,
        machine_from=machine_from, machine_canonical=canonical,
        firmware_detail=_firmware_detail(decisions, guest, domain_type, machine, canonical, domcaps),
        pitfalls=pitfalls_of(decisions, properties, host, virt_type, domcaps, matrix_cells))


def _firmware_detail(decisions: NovaDecisions, guest: str, domain_type: str, machine: str | None,
                     canonical: str | None, domcaps: DomainCapabilities | None) -> str:
    if decisions.firmware is None:
        return "none: no XML"
    if decisions.firmware == "bios":
        return f"the machine's own{': ' + BIOS[guest] if guest in BIOS else ''}"
    offer = offer_for(domcaps, domain_type, guest, machine, canonical) if domcaps is not None and canonical else None
    if offer is None:
        return (f"<os firmware='efi'>: libvirt selects the firmware (its domain capabilities for {guest} "
                f"{machine} are not known here)")
    return ("<os firmware='efi'>: libvirt selects among " + ", ".join(offer.uefi_firmware) if offer.uefi_firmware
            else f"<os firmware='efi'>, but libvirt lists no UEFI firmware for {guest} {offer.machine}")


def plan_for_image(properties: dict[str, str], host: HostCapabilities, virt_type: str = "kvm",
                   domain_capabilities: DomainCapabilities | None = None,
                   matrix_cells: dict[str, dict] | None = None,
                   why: str = "Nova itself was not asked") -> NovaPlan:
    """archmatrix's own reading for `host` (virt_type as in nova.conf): refuses unknown keys (PropertyError).

    `domain_capabilities`: the host's (firmware_capabilities(), or recorded), None when not read.
    """
    decisions = own_decisions(properties, host, virt_type, domain_capabilities)
    return make_plan(decisions, OWN_READING, why, properties, host, virt_type, domain_capabilities, matrix_cells)


def plan_from_nova(answer: NovaAnswer, nova_version: str, how: str, properties: dict[str, str],
                   host: HostCapabilities, virt_type: str, domain_capabilities: DomainCapabilities | None = None,
                   matrix_cells: dict[str, dict] | None = None) -> NovaPlan:
    """Nova's own answer (through the bridge) as a plan."""
    return make_plan(decisions_of(answer), f"nova {nova_version}", how, properties, host, virt_type,
                     domain_capabilities, matrix_cells)


def blocking(plan: NovaPlan) -> list[Pitfall]:
    """What stops a cell with these properties before its boot: Nova's refusal, or what libvirt would refuse."""
    return blocking_pitfalls(plan.pitfalls)


def cpu_model_of(plan: NovaPlan) -> str | None:
    """The <cpu> model Nova would write, when it writes one."""
    return plan.cpu if plan.cpu not in NOT_A_MODEL else None


def choice_of(plan: NovaPlan) -> NovaChoice:
    """What a cell's plan follows of Nova's decisions."""
    return NovaChoice(machine=plan.machine, cpu_model=cpu_model_of(plan), uefi=plan.firmware == "uefi",
                      firmware=f"{plan.firmware} ({plan.firmware_detail})", disk_bus=plan.disk_bus,
                      said=f"Nova's plan: machine {plan.machine}, cpu {plan.cpu}, firmware {plan.firmware}")


def last_matrix_cells(matrix_path: Path | None, host_label: str | None, guest_arch: str) -> dict[str, dict]:
    """The guest arch's cells of the host in a matrix.json, by accelerator."""
    if matrix_path is None:
        return {}
    document = json.loads(Path(matrix_path).read_text())
    return {cell["accel"]: cell for cell in document.get("cells", [])
            if cell["arch"] == guest_arch and (host_label is None or cell["host"] == host_label)}


def firmware_capabilities(conn, host: HostCapabilities, properties: dict[str, str],
                          virt_type: str) -> dict[str, str]:
    """libvirt's domain capabilities the plan reads: the host arch's (Nova's UEFI check) and the guest machine's."""
    guest, _ = guest_arch_of(properties, host.host_arch)
    domain_type = "qemu" if guest != host.host_arch else virt_type
    return queried(conn, host, guest, domain_type, machine_of(properties, host.host_arch), virt_type)
