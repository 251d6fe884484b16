"""libvirt's domain capabilities of a host, keyed as the bridge records them ("virt_type/arch/machine", machine
empty when none was named): what Nova checks for UEFI, and what the machine of a guest offers (firmware, buses).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass

from archmatrix.core.capabilities import HostCapabilities

# utils.get_default_machine_type: keyed by hw_architecture or the host's arch, never the emulation arch.
DEFAULT_MACHINES = {"armv7l": "virt", "aarch64": "virt", "ppc64le": "pseries", "s390": "s390-ccw-virtio",
                    "s390x": "s390-ccw-virtio", "i686": "pc", "x86_64": "pc"}

DomainCapabilities = Mapping[str, str]  # "virt_type/arch/machine" -> libvirt's domain capabilities XML


def key(virt_type: str, arch: str, machine: str | None) -> str:
    return f"{virt_type}/{arch}/{machine or ''}"


@dataclass(frozen=True)
class MachineOffer:
    """One answer of libvirt's getDomainCapabilities: what a machine of an arch offers."""

    machine: str  # the canonical name libvirt answered with
    firmware: tuple[str, ...]  # <os><enum name='firmware'>: "efi" when libvirt can select a UEFI firmware
    loaders: tuple[str, ...]  # <os><loader><value>: the firmware files libvirt found
    loader_types: tuple[str, ...]  # <os><loader><enum name='type'>: "pflash" is what Nova calls UEFI support
    disk_buses: tuple[str, ...]  # <devices><disk><enum name='bus'>: the buses the machine has

    @property
    def uefi_firmware(self) -> tuple[str, ...]:
        """The UEFI firmware files libvirt would choose from; empty: none installed for this arch and machine."""
        return self.loaders if "efi" in self.firmware else ()


def machine_offer(xml_text: str) -> MachineOffer:
    root = ET.fromstring(xml_text)

    def values(path: str) -> tuple[str, ...]:
        return tuple((value.text or "").strip() for value in root.findall(path))

    return MachineOffer(machine=(root.findtext("machine") or "").strip(),
                        firmware=values("os/enum[@name='firmware']/value"), loaders=values("os/loader/value"),
                        loader_types=values("os/loader/enum[@name='type']/value"),
                        disk_buses=values("devices/disk/enum[@name='bus']/value"))


def host_supports_uefi(domcaps: DomainCapabilities, host_arch: str, virt_type: str) -> bool:
    """Host.supports_uefi: some answer for the HOST's arch with [libvirt]virt_type lists a pflash loader.

    Nova looks at no other arch, and not at whether a firmware file is installed (libvirt lists pflash without).
    (Nova drops an arch whose machine queries partly fail, depending on set order; a recording that answers every
    query Nova makes, or a live host, does not meet that.)
    """
    prefix = f"{virt_type}/{host_arch}/"
    return any("pflash" in machine_offer(xml).loader_types for name, xml in domcaps.items() if name.startswith(prefix))


def offer_for(domcaps: DomainCapabilities, domain_type: str, arch: str, machine: str | None,
              canonical: str | None) -> MachineOffer | None:
    """The answer for this arch and machine (asked by its name, or answered under its canonical name), if any."""
    if machine and key(domain_type, arch, machine) in domcaps:
        return machine_offer(domcaps[key(domain_type, arch, machine)])
    prefix = f"{domain_type}/{arch}/"
    for name, xml in domcaps.items():
        if name.startswith(prefix):
            offer = machine_offer(xml)
            if offer.machine and offer.machine in (machine, canonical):
                return offer
    return None


def queried(conn, host: HostCapabilities, guest_arch: str, domain_type: str, machine: str | None,
            virt_type: str) -> dict[str, str]:
    """What the own reading needs from a live libvirt: the host arch's answers Nova checks for UEFI (its default
    machine and the canonical aliases, with [libvirt]virt_type) and the guest's machine (firmware, buses).

    A query libvirt refuses is left out, as Nova leaves it out. libvirt 9 answers none on a read-only connection.
    """
    import libvirt

    asks = set()
    host_offer = host.offer_for(host.host_arch)
    if host_offer is not None:
        aliases = {name for name, canonical in host_offer.machines.items() if name != canonical}
        asks |= {(virt_type, host.host_arch, name) for name in {DEFAULT_MACHINES.get(host.host_arch)} | aliases}
    if host.offer_for(guest_arch) is not None:
        asks.add((domain_type, guest_arch, machine))
    answers = {}
    for virt, arch, name in sorted(asks, key=lambda ask: tuple(part or "" for part in ask)):
        try:
            answers[key(virt, arch, name)] = conn.getDomainCapabilities(None, arch, name, virt, 0)
        except libvirt.libvirtError:
            continue
    return answers
