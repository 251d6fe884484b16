"""What makes libvirt refuse a domain Nova wrote, and what a deployment can change so that it boots.

Each entry was measured: Nova 34's XML refused by libvirt 9.0 (Debian 12) with these words, and the same cell
booted through every check once the remedy was applied (scenarios/test_nova_cells.py keeps the remedies true).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Remedy:
    libvirt_says: str  # a part of libvirt's error message
    why: str  # which of Nova's decisions it is
    remedy: str  # what the image or nova.conf can change; empty when nothing can

    def text(self) -> str:
        return f"{self.why}; {self.remedy}" if self.remedy else self.why


REMEDIES = (
    Remedy("IDE controllers are unsupported for this QEMU binary or machine type",
           "Nova put the config drive's CD-ROM on IDE: it picks the CD-ROM bus from hw_architecture, else the "
           "host's arch, never from hw_emulation_architecture, and this machine has no IDE bus",
           "set the image property hw_cdrom_bus=scsi (or boot without a config drive: --nova-without-config-drive)"),
    Remedy("USB is disabled for this domain",
           "Nova gave the guest a USB tablet (nova.conf [DEFAULT] pointer_model=usbtablet), and this machine has "
           "no USB",
           "set the image property hw_input_bus=virtio"),
    Remedy("loader attribute 'secure' cannot be specified when firmware autoselection is enabled",
           "Nova writes <os firmware='efi'> with <loader secure='no'/> for every UEFI guest that does not ask for "
           "secure boot, which this libvirt refuses (Nova still accepts libvirt 8.0 as its minimum)",
           "no image property avoids it while the guest needs UEFI (aarch64 always does); a libvirt that accepts "
           "the attribute with firmware autoselection does (see the container hosts' Nova cells)"),
    Remedy("Unable to find any firmware to satisfy",
           "Nova left the UEFI firmware to libvirt's autoselection, and the host has no firmware descriptor for "
           "the guest arch",
           "install the arch's UEFI firmware on the host (qemu-efi-aarch64 for aarch64, ovmf for x86_64)"),
)


def remedy_for(libvirt_error: str) -> str:
    """Why libvirt refused Nova's domain and what would boot it, or "" when the refusal is not a known one."""
    for known in REMEDIES:
        if known.libvirt_says in libvirt_error:
            return known.text()
    return ""
