"""Which firmware boots each arch's built-in disk: catalog data, read by the plan and the disk builder."""

from __future__ import annotations

from dataclasses import dataclass

# Guest arches Nova's libvirt driver boots through UEFI whatever the image says (driver.py: aarch64 needs
# UEFI for ACPI). A user's disk without image properties boots as Nova would boot it.
NOVA_UEFI_FORCED = frozenset({"aarch64"})


@dataclass(frozen=True)
class FirmwareDisk:
    """How an arch's built-in disk boots."""

    firmware: str  # what boots it, for reports
    layout: str  # "esp" (UEFI), "prep" (SLOF), "eltorito" (s390-ccw)
    grub_package: str | None = None  # Debian package of the guest's arch with GRUB's modules for the target
    grub_target: str | None = None  # grub-mkimage -O
    efi_path: str | None = None  # UEFI's removable-media path

    @property
    def uefi(self) -> bool:
        """The domain boots with <os firmware='efi'>."""
        return self.layout == "esp"


FIRMWARE_DISKS = {
    "aarch64": FirmwareDisk("UEFI (AAVMF) and GRUB", "esp", "grub-efi-arm64-bin", "arm64-efi",
                            "EFI/BOOT/BOOTAA64.EFI"),
    "x86_64": FirmwareDisk("UEFI (OVMF) and GRUB", "esp", "grub-efi-amd64-bin", "x86_64-efi",
                           "EFI/BOOT/BOOTX64.EFI"),
    "ppc64le": FirmwareDisk("SLOF and GRUB from a PReP partition", "prep", "grub-ieee1275-bin", "powerpc-ieee1275"),
    "s390x": FirmwareDisk("the s390-ccw BIOS, El Torito", "eltorito"),
}


def no_firmware_disk_reason(arch: str) -> str | None:
    if arch in FIRMWARE_DISKS:
        return None
    return (f"no built-in firmware disk for {arch}: the harness builds them for {', '.join(FIRMWARE_DISKS)}; "
            f"its board boots only a kernel QEMU loads directly (or bring a disk: --image {arch}=DISK)")
