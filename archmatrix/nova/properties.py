"""An image's properties as Nova reads them: where they come from, which values Nova's objects accept, and the
arches they name.

Values are checked against the enums of nova/objects/fields.py (Nova 34), which `ImageMeta.from_dict` applies
before any driver code runs: a value outside them is a ValueError there, and the instance never reaches the
scheduler.
"""

from __future__ import annotations

import json

from archmatrix.inputs import InputError, reraised_as
from archmatrix.inputs.text import check_text

# nova/objects/fields.py Architecture.ALL (from nova/virt/arch.py): what hw_architecture and
# hw_emulation_architecture accept. riscv64 is not among them, though os-traits has COMPUTE_ARCH_RISCV64.
NOVA_ARCHES = ("alpha", "armv6", "armv7l", "armv7b", "aarch64", "cris", "i686", "ia64", "lm32", "m68k",
               "microblaze", "microblazeel", "mips", "mipsel", "mips64", "mips64el", "openrisc", "parisc",
               "parisc64", "ppc", "ppcle", "ppc64", "ppc64le", "ppcemb", "s390", "s390x", "sh4", "sh4eb", "sparc",
               "sparc64", "unicore32", "x86_64", "xtensa", "xtensaeb")
FIRMWARE_TYPES = ("bios", "uefi")  # FirmwareType.ALL
DISK_BUSES = ("virtio", "scsi", "ide", "usb", "fdc", "sata", "xen", "uml", "lxc")  # DiskBus.ALL
VIDEO_MODELS = ("vga", "cirrus", "vmvga", "xen", "qxl", "virtio", "gop", "none", "bochs")  # VideoModel.ALL
# The properties nova-plan reads; anything else is refused by name rather than silently ignored.
PROPERTIES = ("hw_architecture", "hw_emulation_architecture", "hw_machine_type", "hw_firmware_type",
              "hw_video_model", "hw_disk_bus", "hw_cdrom_bus", "hw_input_bus", "hw_pointer_model")
INPUT_BUSES = ("usb", "virtio")  # InputBus.ALL; the input devices are Nova's to decide: the own reading ignores them
POINTER_MODELS = ("usbtablet",)  # PointerModelType.ALL
VALID = {"hw_architecture": NOVA_ARCHES, "hw_emulation_architecture": NOVA_ARCHES,
         "hw_firmware_type": FIRMWARE_TYPES, "hw_video_model": VIDEO_MODELS,
         "hw_disk_bus": DISK_BUSES, "hw_cdrom_bus": DISK_BUSES, "hw_input_bus": INPUT_BUSES,
         "hw_pointer_model": POINTER_MODELS}


class PropertyError(InputError):
    """An image property the planner cannot take; the message names it and what is valid."""


PROPERTIES_FORMS = "`openstack image show -f json` output, or KEY=VALUE lines"


def read_properties(text: str, source: str) -> dict[str, str]:
    """`openstack image show -f json` output (its "properties", or the whole object), or key=value lines."""
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            document = json.loads(stripped)
        except ValueError as error:
            raise PropertyError(f"{source}: not valid JSON: {error}; valid: {PROPERTIES_FORMS}") from None
        values = document.get("properties", document) if isinstance(document, dict) else None
        if not isinstance(values, dict):
            raise PropertyError(f"{source}: not a JSON object; valid: {PROPERTIES_FORMS}")
        return {key: str(value) for key, value in values.items() if key.startswith("hw_")}
    properties = {}
    for number, line in enumerate(stripped.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise PropertyError(f"{source}:{number}: {line!r} is not KEY=VALUE; valid: {PROPERTIES_FORMS}")
        properties[key.strip()] = value.strip()
    return properties


def check_keys(properties: dict[str, str]) -> None:
    for key, value in properties.items():
        with reraised_as(PropertyError):  # a value goes into a domain's XML and a report's lines
            check_text(value, f"image property {key}", "a value Nova accepts, without control characters")
        if key not in PROPERTIES:
            raise PropertyError(f"image property {key!r} is not one the planner knows; valid: {', '.join(PROPERTIES)}")


def rejected_value(properties: dict[str, str]) -> str | None:
    """Why Nova's ImageMeta refuses these properties (a ValueError there), or None."""
    for key, value in properties.items():
        valid = VALID.get(key)
        if valid and value not in valid:
            extra = " (Nova's architecture list has no riscv64)" if value == "riscv64" else ""
            return f"{key}={value!r} is not a value Nova accepts{extra}; valid: {', '.join(valid)}"
    return None


def check_properties(properties: dict[str, str]) -> None:
    """Known keys, each with a value Nova accepts: else PropertyError naming it and what is valid."""
    check_keys(properties)
    rejected = rejected_value(properties)
    if rejected:
        raise PropertyError(rejected)


def guest_arch_of(properties: dict[str, str], host_arch: str) -> tuple[str, str]:
    """The guest arch Nova boots, and which property (or the host) gave it.

    driver._check_emulation_arch: hw_emulation_architecture, else utils.get_arch (hw_architecture, else the host).
    """
    for key in ("hw_emulation_architecture", "hw_architecture"):
        if key in properties:
            return properties[key], key
    return host_arch, "the host's arch (no hw_architecture)"


def image_arch_of(properties: dict[str, str], host_arch: str) -> str:
    """utils.get_arch: hw_architecture, else the host's arch; never hw_emulation_architecture.

    Nova keys the default machine type and the CD-ROM bus by it.
    """
    return properties.get("hw_architecture", host_arch)
