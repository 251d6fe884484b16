"""archmatrix's own reading of what Nova's libvirt driver decides for an image's properties on a host, for when
Nova itself is not installed. Pure logic over the host's capabilities and domain capabilities.

Each rule cites where Nova 34 makes the decision (nova/virt/libvirt/ unless named otherwise), with its defaults
for nova.conf ([libvirt]cpu_mode, hw_machine_type and [vnc]/[spice] unset); scenarios/test_nova_agrees.py holds
every rule against Nova's own answer. Read Nova there before changing one.
"""

from __future__ import annotations

import os_traits

from archmatrix.core.capabilities import HostCapabilities
from archmatrix.core.firmware import NOVA_UEFI_FORCED
from archmatrix.nova.decisions import NovaDecisions, refusal
from archmatrix.nova.domcaps import DEFAULT_MACHINES, DomainCapabilities, host_supports_uefi
from archmatrix.nova.properties import check_keys, guest_arch_of, image_arch_of, rejected_value

# blockinfo.SUPPORTED_DEVICE_BUSES for the two virt types this reads.
SUPPORTED_BUSES = ("virtio", "scsi", "ide", "usb", "fdc", "sata")
# blockinfo.get_disk_bus_for_device_type: the CD-ROM of these image arches is SCSI.
SCSI_CDROM_ARCHES = ("ppc", "ppc64", "ppcle", "ppc64le", "s390", "s390x", "aarch64")
# driver._get_guest_cpu_config, "Try emulating": the <cpu> of a guest of another arch than the host's.
EMULATED_CPUS = {"aarch64": "cortex-a57", "ppc64le": "POWER8", "mipsel": "none"}
# scheduler/request_filter.transform_image_metadata: property -> trait prefix, in Nova's order.
PREFILTER = (("hw_cdrom_bus", "COMPUTE_STORAGE_BUS"), ("hw_disk_bus", "COMPUTE_STORAGE_BUS"),
             ("hw_video_model", "COMPUTE_GRAPHICS_MODEL"), ("hw_vif_model", "COMPUTE_NET_VIF_MODEL"),
             ("hw_architecture", "HW_ARCH"), ("hw_emulation_architecture", "COMPUTE_ARCH"),
             ("hw_viommu_model", "COMPUTE_VIOMMU"))


def prefilter_names(properties: dict[str, str]) -> list[str]:
    """The trait names the image prefilter computes from the properties, known to os-traits or not."""
    return [f"{prefix}_{properties[name].replace('-', '_').upper()}" for name, prefix in PREFILTER
            if name in properties]


def unknown_traits(properties: dict[str, str]) -> list[str]:
    return [trait for trait in prefilter_names(properties) if not hasattr(os_traits, trait)]


def prefilter_traits(properties: dict[str, str]) -> tuple[str, ...]:
    """The traits the image prefilter requires; none at all once one computed name is not in os-traits
    (Nova logs an error and gives up: e.g. hw_emulation_architecture=mips64el requires nothing)."""
    if unknown_traits(properties):
        return ()
    return tuple(sorted(set(prefilter_names(properties))))


def machine_of(properties: dict[str, str], host_arch: str) -> str | None:
    """utils.get_machine_type: hw_machine_type, else the default of hw_architecture or the HOST's arch."""
    if "hw_machine_type" in properties:
        return properties["hw_machine_type"]
    return DEFAULT_MACHINES.get(image_arch_of(properties, host_arch))


def listed_anywhere(host: HostCapabilities, machine: str | None) -> bool:
    """host._check_machine_type: the machine is one of any guest arch's (None never is).

    Nova reads only <arch><machine>; HostCapabilities also holds a <domain>'s own machines, which the libvirt
    versions recorded here (9.0, and 10.0's test data) never list apart.
    """
    return machine is not None and any(machine in offer.machines for offer in host.guests.values())


def cpu_of(guest: str, host_arch: str) -> str:
    # _get_guest_cpu_model_config with cpu_mode unset, virt_type kvm and qemu alike: host-passthrough for aarch64
    # (libvirt has no host-model there), else host-model.
    if guest == host_arch:
        return "host-passthrough" if guest == "aarch64" else "host-model"
    # _get_guest_cpu_config: emulating drops the mode; a model for aarch64 and ppc64le, no <cpu> for mipsel.
    return EMULATED_CPUS.get(guest, "topology only")


def cdrom_bus_of(properties: dict[str, str], host_arch: str) -> str:
    """blockinfo.get_disk_bus_for_device_type(cdrom): hw_cdrom_bus, else by hw_architecture or the HOST's arch,
    never hw_emulation_architecture: SCSI for Power, s390 and aarch64; SATA on a q35 machine; else IDE."""
    if "hw_cdrom_bus" in properties:
        return properties["hw_cdrom_bus"]
    if image_arch_of(properties, host_arch) in SCSI_CDROM_ARCHES:
        return "scsi"
    machine = machine_of(properties, host_arch)
    return "sata" if machine and "q35" in machine else "ide"


def own_decisions(properties: dict[str, str], host: HostCapabilities, virt_type: str,
                  domcaps: DomainCapabilities | None) -> NovaDecisions:
    """What Nova's driver would write (or refuse) for these properties on `host` with [libvirt]virt_type.

    `domcaps` are the host's domain capabilities (domcaps.py); None: not read, so a UEFI refusal cannot be told.
    """
    check_keys(properties)
    rejected = rejected_value(properties)
    if rejected:  # ImageMeta.from_dict: before the scheduler's prefilter, which then requires nothing
        return refusal(f"ValueError: {rejected}")
    traits = prefilter_traits(properties)
    # blockinfo.get_disk_info, before any XML: the disk's bus, then the CD-ROM's.
    for name in ("hw_disk_bus", "hw_cdrom_bus"):
        if properties.get(name, "virtio") not in SUPPORTED_BUSES:
            return refusal(f"UnsupportedHardware: Requested hardware {properties[name]!r} is not supported by the "
                           f"{virt_type!r} virt driver", traits)
    guest, _ = guest_arch_of(properties, host.host_arch)
    machine = machine_of(properties, host.host_arch)
    # driver._configure_guest_by_virt_type: the machine must be listed for some arch, then UEFI checked.
    if not listed_anywhere(host, machine):
        return refusal(f"InvalidMachineType: '{machine}' is not valid/supported machine type (no arch of this "
                       f"host lists it)", traits)
    # aarch64 is UEFI unless the image says otherwise; UEFI needs the HOST arch's domain capabilities to list a
    # pflash loader (Host.supports_uefi), whatever the guest arch.
    firmware = properties.get("hw_firmware_type") or ("uefi" if guest in NOVA_UEFI_FORCED else "bios")
    if firmware == "uefi" and domcaps is not None and not host_supports_uefi(domcaps, host.host_arch, virt_type):
        return refusal(f"UEFINotSupported: UEFI is not supported (the host's {host.host_arch} domain capabilities "
                       f"for virt_type {virt_type} list no pflash loader)", traits)
    return NovaDecisions(
        guest_arch=guest,
        domain_type=virt_type if guest == host.host_arch else "qemu",  # emulating downgrades to qemu
        machine=machine, cpu=cpu_of(guest, host.host_arch), firmware=firmware,
        # _create_consoles: s390 has an SCLP console, every other arch a serial port.
        console="console pty sclp" if guest in ("s390", "s390x") else "serial pty",
        # _get_video_type: vga for Power; LibvirtConfigGuestVideo's virtio for the rest.
        video=properties.get("hw_video_model") or ("vga" if guest in ("ppc", "ppc64", "ppc64le") else "virtio"),
        disk_bus=properties.get("hw_disk_bus", "virtio"), cdrom_bus=cdrom_bus_of(properties, host.host_arch),
        required_traits=traits, refused=None)
