"""What this host offers: emulators, machine types, and whether KVM really works.

Parsing libvirt's capabilities XML is pure (tested offline against recorded
hosts). The KVM probe is not: it boots the smallest guest of the host's own
arch with KVM, because /dev/kvm existing, libvirt claiming <domain
type='kvm'/> and domcapabilities answering all hold on hosts where a KVM
guest hangs after the kernel's decompressor.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

KVM_WORKS = "works"
KVM_BROKEN = "claimed-but-broken"
KVM_NOT_OFFERED = "not-offered"
KVM_NO_DEVICE = "no-dev-kvm"


@dataclass(frozen=True)
class GuestOffer:
    """What libvirt offers for one guest arch."""

    arch: str
    emulator: str  # default emulator path for the arch
    machines: dict[str, str]  # every name QEMU accepts -> canonical name (aliases and canonicals)
    domain_emulators: dict[str, str]  # domain type ("qemu", "kvm") -> emulator path

    def machine_family_names(self) -> list[str]:
        return sorted(self.machines)


@dataclass(frozen=True)
class HostCapabilities:
    host_arch: str
    cpu_model: str | None
    guests: dict[str, GuestOffer] = field(default_factory=dict)

    def offer_for(self, arch: str) -> GuestOffer | None:
        return self.guests.get(arch)


def parse_capabilities(xml_text: str) -> HostCapabilities:
    root = ET.fromstring(xml_text)
    host_arch = root.findtext("host/cpu/arch") or ""
    guests: dict[str, GuestOffer] = {}
    for guest in root.findall("guest"):
        if guest.findtext("os_type") != "hvm":
            continue
        arch_element = guest.find("arch")
        if arch_element is None:
            continue
        arch = arch_element.get("name", "")
        emulator = arch_element.findtext("emulator") or ""
        machines = _machines(arch_element)
        domain_emulators = {}
        for domain in arch_element.findall("domain"):
            domain_type = domain.get("type", "")
            domain_emulators[domain_type] = domain.findtext("emulator") or emulator
            machines.update(_machines(domain))
        guests[arch] = GuestOffer(arch, emulator, machines, domain_emulators)
    return HostCapabilities(host_arch=host_arch, cpu_model=root.findtext("host/cpu/model"), guests=guests)


def _machines(element: ET.Element) -> dict[str, str]:
    machines = {}
    for machine in element.findall("machine"):
        name = (machine.text or "").strip()
        canonical = machine.get("canonical") or name
        machines[name] = canonical
        machines[canonical] = canonical
    return machines


@dataclass(frozen=True)
class KvmVerdict:
    status: str  # one of the KVM_* constants
    reason: str

    @property
    def works(self) -> bool:
        return self.status == KVM_WORKS


def kvm_precondition(host: HostCapabilities, dev_kvm: str | None = "/dev/kvm") -> KvmVerdict | None:
    """The verdict when no probe boot is needed (or possible), else None; dev_kvm None: not looked for."""
    if dev_kvm is not None and not os.path.exists(dev_kvm):
        return KvmVerdict(KVM_NO_DEVICE, f"{dev_kvm} does not exist: the kernel offers no KVM on this host")
    offer = host.offer_for(host.host_arch)
    if offer is None or "kvm" not in offer.domain_emulators:
        return KvmVerdict(
            KVM_NOT_OFFERED,
            f"libvirt's capabilities offer no <domain type='kvm'> for the host arch {host.host_arch}",
        )
    return None


def kvm_offered_for(host: HostCapabilities, guest_arch: str) -> str | None:
    """Why libvirt would not run `guest_arch` with KVM here, or None if it offers it."""
    offer = host.offer_for(guest_arch)
    if offer is None or "kvm" not in offer.domain_emulators:
        if guest_arch == host.host_arch:
            return (f"libvirt offers no KVM for {guest_arch} guests on this {host.host_arch} host "
                    f"(its QEMU found no usable /dev/kvm); TCG is the only way")
        return (
            f"libvirt offers no KVM for {guest_arch} guests on this {host.host_arch} host "
            f"(KVM runs only guests of the host's own arch); TCG is the only way"
        )
    return None
