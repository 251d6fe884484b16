"""The pitfalls of Nova's decisions on a host: what Nova does (or refuses) that will not boot there, and what a
matrix has not proven. Linted the same whether Nova itself or archmatrix's own reading decided.

Every fix names a value the host accepts: a machine it lists for the guest arch, or the emulator to install
first (a machine no arch lists is refused by Nova with InvalidMachineType before any XML).
"""

from __future__ import annotations

from dataclasses import dataclass

from archmatrix.core.arches import ARCHES
from archmatrix.core.capabilities import HostCapabilities
from archmatrix.core.traits import trait_for
from archmatrix.nova.decisions import NovaDecisions
from archmatrix.nova.domcaps import DEFAULT_MACHINES, DomainCapabilities, offer_for
from archmatrix.nova.properties import guest_arch_of, image_arch_of
from archmatrix.nova.reading import SUPPORTED_BUSES, unknown_traits

# What to install for a guest arch's UEFI firmware (Debian); arches without one have no UEFI to install.
UEFI_PACKAGES = {"aarch64": "qemu-efi-aarch64", "x86_64": "ovmf", "i686": "ovmf", "armv7l": "qemu-efi-arm"}
# The buses a CD-ROM can be on, in the order to suggest them.
CDROM_BUSES = ("scsi", "sata", "ide", "usb")
# What libvirt 9.0 says of Nova's XML with such a bus (virsh domxml-to-native on this CI host).
LIBVIRT_SAYS = {"ide": 'libvirt refuses it: "IDE controllers are unsupported for this QEMU binary or machine type"',
                "sata": 'libvirt refuses it: "SATA is not supported with this QEMU binary"',
                "virtio": "libvirt refuses it: \"disk type of 'vdX' does not support ejectable media\"",
                "fdc": "libvirt refuses it: \"Invalid bus type 'fdc' for disk\""}
REFUSED = "libvirt refuses it"
# Pitfalls of what Nova would do that do not stop a boot of this harness: what a matrix has not proven, the
# scheduler's side, and the CD-ROM, which only a config drive or an ISO image has.
NOT_BLOCKING = ("trait-not-proven", "kvm-not-proven", "prefilter-requires-nothing", "cdrom-bus-not-on-machine")


@dataclass(frozen=True)
class Pitfall:
    code: str
    problem: str
    fix: str


def machine_advice(host: HostCapabilities, guest: str) -> str:
    """A hw_machine_type this host lists for the guest arch, or what to install before any can be named."""
    offer = host.offer_for(guest)
    package = ARCHES[guest].qemu_package if guest in ARCHES else f"the QEMU system emulator for {guest}"
    if offer is None:
        return (f"install {package} on the host first: until libvirt lists {guest} machines there, Nova refuses a "
                f"{guest} machine type with InvalidMachineType")
    default = DEFAULT_MACHINES.get(guest)
    if default in offer.machines:
        return f"set hw_machine_type={default}"
    family = ARCHES[guest].machine_family if guest in ARCHES else None
    if family in offer.machines:
        return f"set hw_machine_type={family} (Nova has no default for {guest}; the harness boots it on this)"
    return f"set hw_machine_type to a machine libvirt lists for {guest} here: {', '.join(sorted(offer.machines)[:6])}"


def _refusal_fix(refused_by: str, properties: dict[str, str], host: HostCapabilities, guest: str,
                 virt_type: str) -> str:
    if refused_by == "InvalidMachineType":
        return machine_advice(host, guest)
    if refused_by == "UEFINotSupported":
        # Not hw_firmware_type=bios for aarch64: libvirt refuses ACPI without UEFI there.
        bios = "" if guest == "aarch64" else ", or set hw_firmware_type=bios if the guest boots without UEFI"
        return (f"make libvirt list a pflash loader for the host's own arch ({host.host_arch}, virt_type "
                f"{virt_type}: Nova checks no other arch){bios}")
    if refused_by == "UnsupportedHardware":
        return f"hw_disk_bus and hw_cdrom_bus: one of {', '.join(SUPPORTED_BUSES)}"
    return "a value Nova accepts (see the message)"


def pitfalls_of(decisions: NovaDecisions, properties: dict[str, str], host: HostCapabilities, virt_type: str,
                domcaps: DomainCapabilities | None = None,
                matrix_cells: dict[str, dict] | None = None) -> list[Pitfall]:
    """`domcaps`: the host's domain capabilities (firmware and buses of the guest's machine), None if not read;
    `matrix_cells`: the host's last matrix cells of the guest arch by accelerator, if any."""
    found: list[Pitfall] = []
    guest = decisions.guest_arch or guest_arch_of(properties, host.host_arch)[0]
    offer = host.offer_for(guest)
    if decisions.refused:
        found.append(Pitfall("nova-refuses", f"Nova raises {decisions.refused_by} for this image when it builds the "
                             f"domain, before it writes any XML",
                             _refusal_fix(decisions.refused_by, properties, host, guest, virt_type)))
    unknown = unknown_traits(properties)
    if unknown and decisions.refused_by != "ValueError":  # a ValueError comes before the prefilter
        found.append(Pitfall(
            "prefilter-requires-nothing",
            f"os-traits has no {', '.join(unknown)}: Nova's image prefilter then requires no trait at all for this "
            f"image (it logs an error and gives up), so the scheduler may place it on a host that cannot run "
            f"{guest}",
            "keep such images on the right hosts another way (e.g. a host aggregate with "
            "AggregateImagePropertiesIsolation)"))
    if offer is None:
        found.append(Pitfall("no-emulator", f"libvirt on this host lists no emulator for {guest} guests: "
                             + ("libvirt refuses the domain" if not decisions.refused else "nothing boots them"),
                             f"install {ARCHES[guest].qemu_package if guest in ARCHES else 'QEMU for ' + guest}"))
    image_arch = image_arch_of(properties, host.host_arch)
    if "hw_emulation_architecture" in properties and "hw_machine_type" not in properties and guest != image_arch:
        default = DEFAULT_MACHINES.get(image_arch)
        found.append(Pitfall(
            "machine-from-host-arch",
            f"hw_emulation_architecture={guest} without hw_machine_type: Nova takes the default machine of "
            f"{image_arch} ({default or 'none, which it refuses'}), not of {guest}",
            machine_advice(host, guest)))
    if decisions.refused:
        return found + _unproven(decisions, guest, matrix_cells)
    machine = decisions.machine
    if offer is not None and machine and machine not in offer.machines:
        others = sorted(arch for arch, other in host.guests.items() if machine in other.machines)
        found.append(Pitfall(
            "machine-of-another-arch",
            f"machine type {machine!r} is not a machine of {guest}: it exists here only for {', '.join(others)}. "
            f"Nova accepts it (it checks every arch's machines) and libvirt refuses the domain",
            machine_advice(host, guest)))
    machine_offer = None
    if offer is not None and domcaps is not None and machine in offer.machines:
        machine_offer = offer_for(domcaps, decisions.domain_type, guest, machine, offer.machines[machine])
    if decisions.firmware == "uefi" and machine_offer is not None and not machine_offer.uefi_firmware:
        forced = "" if "hw_firmware_type" in properties else " (Nova's default for aarch64)"
        package = UEFI_PACKAGES.get(guest)
        found.append(Pitfall(
            "no-uefi-firmware",
            f"UEFI{forced}, but libvirt's domain capabilities for {guest} {machine} offer no UEFI firmware. Nova "
            f"does not refuse: it checks only the host arch's domain capabilities for a pflash loader (libvirt "
            f"lists one even with no firmware installed), writes <os firmware='efi'>, and libvirt refuses to start "
            f"it: \"Unable to find any firmware to satisfy 'efi'\"",
            f"install Debian's {package} on the host and restart libvirtd" if package else
            f"drop hw_firmware_type=uefi: there is no UEFI firmware for {guest}"))
    if decisions.firmware == "bios" and guest == "aarch64":
        found.append(Pitfall(
            "aarch64-without-uefi",
            "hw_firmware_type=bios for an aarch64 guest: Nova writes it with <acpi/> and no UEFI, and libvirt refuses "
            "it: \"ACPI requires UEFI on this architecture\"",
            "drop hw_firmware_type=bios (Nova boots aarch64 through UEFI by default)"))
    if machine_offer is not None and machine_offer.disk_buses:
        found += _buses(decisions, properties, guest, machine, machine_offer.disk_buses)
    return found + _unproven(decisions, guest, matrix_cells)


def _buses(decisions: NovaDecisions, properties: dict[str, str], guest: str, machine: str,
           buses: tuple[str, ...]) -> list[Pitfall]:
    """The disk's and the CD-ROM's bus against the buses libvirt's domain capabilities list for the machine."""
    found = []
    disk, cdrom = decisions.disk_bus, decisions.cdrom_bus
    if disk and disk not in buses:
        fix = next((f"set hw_disk_bus={bus}" for bus in SUPPORTED_BUSES if bus in buses), "another machine")
        found.append(Pitfall("disk-bus-not-on-machine", f"the root disk is on {disk}, and {guest} {machine} has no "
                             f"{disk} bus (its buses: {', '.join(buses)}): {LIBVIRT_SAYS.get(disk, REFUSED)}", fix))
    if cdrom and (cdrom not in buses or cdrom not in CDROM_BUSES):
        why = (f"{guest} {machine} has no {cdrom} bus (its buses: {', '.join(buses)})" if cdrom not in buses else
               f"a {cdrom} disk is no CD-ROM")
        taken = "" if "hw_cdrom_bus" in properties else (" (Nova's default: by hw_architecture, else the HOST's "
                                                         "arch, never hw_emulation_architecture)")
        said = LIBVIRT_SAYS.get(cdrom, REFUSED)
        fix = next((f"set hw_cdrom_bus={bus}" for bus in CDROM_BUSES if bus in buses), "another machine")
        found.append(Pitfall("cdrom-bus-not-on-machine",
                             f"Nova puts a config drive (and an ISO image) on a CD-ROM on {cdrom}{taken}, and {why}: "
                             f"with either, {said}", fix))
    return found


def _unproven(decisions: NovaDecisions, guest: str, matrix_cells: dict[str, dict] | None) -> list[Pitfall]:
    cells = matrix_cells or {}
    found = []
    tcg, kvm = cells.get("tcg"), cells.get("kvm")
    trait = trait_for(guest)
    if trait and tcg is not None and tcg.get("status") != "pass":
        found.append(Pitfall(
            "trait-not-proven",
            f"Nova reports {trait} on this host (with virt_type=qemu for every installed emulator), but the last "
            f"matrix's {guest}-tcg cell here is {tcg.get('status')}: {tcg.get('reason', '')}".strip(),
            "fix the host, or keep images with this property off it until a matrix proves the arch"))
    if decisions.domain_type == "kvm" and kvm is not None and kvm.get("status") != "pass":
        found.append(Pitfall(
            "kvm-not-proven",
            f"Nova would start a kvm domain, but the last matrix's {guest}-kvm cell here is {kvm.get('status')}: "
            f"{kvm.get('reason', '')}".strip(),
            "fix KVM on the host, or run it with [libvirt]virt_type=qemu"))
    return found


def blocking(pitfalls: list[Pitfall]) -> list[Pitfall]:
    """The pitfalls that stop a boot: everything but what a matrix has not proven."""
    return [pitfall for pitfall in pitfalls if pitfall.code not in NOT_BLOCKING]
