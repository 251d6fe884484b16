"""What OpenStack Nova's libvirt driver would do with an image's properties on a host, and its pitfalls.

Pure logic over the host's libvirt capabilities (and, for firmware, its domain
capabilities). Each decision cites where Nova makes it (openstack/nova master,
nova/virt/libvirt/); read there before changing one.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field
from pathlib import Path

from archmatrix.core.arches import ARCHES
from archmatrix.core.capabilities import HostCapabilities
from archmatrix.core.firmware import NOVA_UEFI_FORCED as UEFI_FORCED
from archmatrix.core.plan import NovaChoice
from archmatrix.inputs import InputError, reraised_as
from archmatrix.inputs.text import check_text

# nova/objects/fields.py Architecture.ALL (from nova/virt/arch.py): what hw_architecture and
# hw_emulation_architecture accept. riscv64 is not among them, though os-traits has COMPUTE_ARCH_RISCV64.
NOVA_ARCHES = ("alpha", "armv6", "armv7l", "armv7b", "aarch64", "cris", "i686", "ia64", "lm32", "m68k",
               "microblaze", "microblazeel", "mips", "mipsel", "mips64", "mips64el", "openrisc", "parisc",
               "parisc64", "ppc", "ppcle", "ppc64", "ppc64le", "ppcemb", "s390", "s390x", "sh4", "sh4eb", "sparc",
               "sparc64", "unicore32", "x86_64", "xtensa", "xtensaeb")
# utils.get_default_machine_type: keyed by hw_architecture or the host's arch, never the emulation arch.
DEFAULT_MACHINES = {"armv7l": "virt", "aarch64": "virt", "ppc64le": "pseries", "s390": "s390-ccw-virtio",
                    "s390x": "s390-ccw-virtio", "i686": "pc", "x86_64": "pc"}
# driver._get_guest_cpu_config: the CPU of an emulated guest (arch != host arch); mipsel gets no <cpu>.
EMULATED_CPUS = {"aarch64": "cortex-a57", "ppc64le": "POWER8"}
FIRMWARE_TYPES = ("bios", "uefi")
DISK_BUSES = ("virtio", "scsi", "ide", "usb", "fdc", "sata", "xen", "uml", "lxc")
VIDEO_MODELS = ("vga", "cirrus", "vmvga", "xen", "qxl", "virtio", "gop", "none", "bochs")
# The properties this planner reads; anything else is refused by name rather than silently ignored.
PROPERTIES = ("hw_architecture", "hw_emulation_architecture", "hw_machine_type", "hw_firmware_type",
              "hw_video_model", "hw_disk_bus", "hw_cdrom_bus")
TRAITS = {"aarch64": "COMPUTE_ARCH_AARCH64", "ppc64le": "COMPUTE_ARCH_PPC64LE", "mipsel": "COMPUTE_ARCH_MIPSEL",
          "s390x": "COMPUTE_ARCH_S390X", "riscv64": "COMPUTE_ARCH_RISCV64", "x86_64": "COMPUTE_ARCH_X86_64"}


class PropertyError(InputError):
    """An image property the planner cannot take; the message names it and what is valid."""


@dataclass(frozen=True)
class Pitfall:
    code: str
    problem: str
    fix: str


@dataclass(frozen=True)
class NovaPlan:
    guest_arch: str
    guest_arch_from: str  # which property (or the host) gave it
    domain_type: str
    emulator: str | None  # what libvirt picks for <type arch> and the domain type (Nova never writes <emulator>)
    machine: str | None  # None: no default, QEMU's own machine
    machine_from: str
    machine_resolved: str | None  # the alias as libvirt resolves it for the guest arch, None: not for this arch
    cpu: str
    firmware: str
    console: str
    video: str
    disk_bus: str
    cdrom_bus: str
    trait: str | None
    pitfalls: list[Pitfall] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


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


def check_properties(properties: dict[str, str]) -> None:
    for key, value in properties.items():
        with reraised_as(PropertyError):  # a value goes into a domain's XML and a report's lines
            check_text(value, f"image property {key}", "a value Nova accepts, without control characters")
        if key not in PROPERTIES:
            raise PropertyError(f"image property {key!r} is not one the planner knows; valid: {', '.join(PROPERTIES)}")
        valid = {"hw_architecture": NOVA_ARCHES, "hw_emulation_architecture": NOVA_ARCHES,
                 "hw_firmware_type": FIRMWARE_TYPES, "hw_video_model": VIDEO_MODELS,
                 "hw_disk_bus": DISK_BUSES, "hw_cdrom_bus": DISK_BUSES}.get(key)
        if valid and value not in valid:
            extra = " (Nova's architecture list has no riscv64)" if value == "riscv64" else ""
            raise PropertyError(f"{key}={value!r} is not a value Nova accepts{extra}; valid: {', '.join(valid)}")


def efi_firmware(domain_capabilities_xml: str | None) -> list[str]:
    """The UEFI loaders libvirt's domain capabilities offer (`<os><enum name='firmware'>` has `efi`)."""
    if not domain_capabilities_xml:
        return []
    root = ET.fromstring(domain_capabilities_xml)
    values = [value.text for value in root.findall("os/enum[@name='firmware']/value")]
    if "efi" not in values:
        return []
    return [value.text or "" for value in root.findall("os/loader/value")]


def guest_arch_of(properties: dict[str, str], host_arch: str) -> tuple[str, str]:
    """The guest arch Nova boots, and which property (or the host) gave it.

    driver._check_emulation_arch: hw_emulation_architecture, else utils.get_arch (hw_architecture, else the host).
    """
    for key in ("hw_emulation_architecture", "hw_architecture"):
        if key in properties:
            return properties[key], key
    return host_arch, "the host's arch (no hw_architecture)"


def machine_for(guest: str) -> str:
    """The machine to name for a guest arch: Nova's default, else the one this harness boots it on."""
    if guest in DEFAULT_MACHINES:
        return DEFAULT_MACHINES[guest]
    if guest in ARCHES:
        return f"{ARCHES[guest].machine_family} (Nova has no default for {guest}; the harness boots it on this)"
    return f"a machine of {guest}"


def plan_for_image(properties: dict[str, str], host: HostCapabilities, virt_type: str = "kvm",
                   domain_capabilities_xml: str | None = None, matrix_cells: dict[str, dict] | None = None) -> NovaPlan:
    """What Nova would boot on `host` (virt_type as in nova.conf) for these image properties.

    `domain_capabilities_xml` is libvirt's for the guest arch and machine (firmware); `matrix_cells` the
    host's last matrix cells of the guest arch by accelerator, if any (does what Nova would do work here?).
    """
    check_properties(properties)
    pitfalls: list[Pitfall] = []
    guest, guest_from = guest_arch_of(properties, host.host_arch)
    # driver._configure_guest_by_virt_type: emulating (guest arch != host arch) downgrades to qemu.
    domain_type = "qemu" if guest != host.host_arch else virt_type
    offer = host.offer_for(guest)
    emulator = (offer.domain_emulators.get(domain_type) or offer.emulator) if offer else None
    if offer is None:
        pitfalls.append(Pitfall("no-emulator", f"libvirt on this host lists no emulator for {guest} guests: the "
                                f"boot fails in libvirt", f"install the QEMU package for {guest}"))
    # utils.get_machine_type: hw_machine_type, else the default of utils.get_arch (hw_architecture or host).
    machine_arch = properties.get("hw_architecture", host.host_arch)
    if "hw_machine_type" in properties:
        machine, machine_from = properties["hw_machine_type"], "hw_machine_type"
    else:
        machine = DEFAULT_MACHINES.get(machine_arch)
        by = "hw_architecture" if "hw_architecture" in properties else "the host arch"
        machine_from = f"Nova's default for {machine_arch} ({by})"
        if guest != machine_arch and "hw_emulation_architecture" in properties:
            pitfalls.append(Pitfall(
                "machine-from-host-arch",
                f"hw_emulation_architecture={guest} without hw_machine_type: Nova takes the default machine of "
                f"{machine_arch} ({machine or 'none'}), not of {guest}",
                f"set hw_machine_type={machine_for(guest)}"))
    resolved = offer.machines.get(machine) if offer and machine else None
    if machine and offer and resolved is None:
        others = sorted(arch for arch, other in host.guests.items() if machine in other.machines)
        # host._check_machine_type accepts a machine listed for any arch of the host.
        where = f"it exists here only for {', '.join(others)}" if others else "no arch of this host has it"
        pitfalls.append(Pitfall(
            "machine-of-another-arch",
            f"machine type {machine!r} is not a machine of {guest}: {where}. "
            + ("Nova accepts it (it checks every arch's machines) and libvirt refuses the domain at boot"
               if others else "Nova refuses it (InvalidMachineType)"),
            f"hw_machine_type={machine_for(guest)}"))
    if guest != host.host_arch:  # driver._get_guest_cpu_config, "Try emulating"
        cpu = EMULATED_CPUS.get(guest) or ("none (no <cpu> element)" if guest == "mipsel"
                                           else "the first of [libvirt]cpu_models, or none")
    else:
        cpu = "host-model ([libvirt]cpu_mode's default)" if domain_type == "kvm" else "none ([libvirt]cpu_mode none)"
    # driver._configure_guest_by_virt_type: aarch64 is forced to UEFI; UEFI needs a loader for the arch.
    firmware = properties.get("hw_firmware_type") or ("uefi" if guest in UEFI_FORCED else "bios")
    if firmware == "bios":
        firmware += {"ppc64le": " (pseries: SLOF)", "ppc64": " (pseries: SLOF)", "s390x": " (the s390-ccw BIOS)",
                     "x86_64": " (SeaBIOS)", "i686": " (SeaBIOS)"}.get(guest, "")
    if firmware == "uefi":
        loaders = efi_firmware(domain_capabilities_xml)
        forced = "" if "hw_firmware_type" in properties else " (Nova forces UEFI for aarch64)"
        if not loaders:
            package = {"aarch64": "qemu-efi-aarch64", "x86_64": "ovmf", "armv7l": "qemu-efi-arm"}.get(guest, "UEFI")
            pitfalls.append(Pitfall("no-uefi-firmware", f"UEFI{forced}, but libvirt's domain capabilities for {guest} "
                                    f"offer no UEFI firmware: the boot fails (UEFINotSupported or in libvirt)",
                                    f"install Debian's {package} on the host and restart libvirtd"))
        firmware = f"uefi{forced}: " + (", ".join(loaders) or "none installed")
    # driver._add_video_driver and the console code: s390x's console is SCLP; ppc's video is vga.
    console = "<console type='pty'> target sclp" if guest in ("s390", "s390x") else "<serial type='pty'>"
    video = properties.get("hw_video_model") or ("vga" if guest.startswith("ppc") else "virtio")
    # driver._get_cpu_emulation_arch_traits: a trait for every arch libvirt has domain capabilities for.
    trait = TRAITS.get(guest)
    cells = matrix_cells or {}
    tcg, kvm = cells.get("tcg"), cells.get("kvm")
    if trait and tcg is not None and tcg.get("status") != "pass":
        pitfalls.append(Pitfall(
            "trait-not-proven",
            f"Nova reports {trait} on this host (with virt_type=qemu for every installed emulator), but the last "
            f"matrix's {guest}-tcg cell here is {tcg.get('status')}: {tcg.get('reason', '')}".strip(),
            "fix the host, or keep images with this property off it until a matrix proves the arch"))
    if domain_type == "kvm" and kvm is not None and kvm.get("status") != "pass":
        pitfalls.append(Pitfall(
            "kvm-not-proven",
            f"Nova would start a kvm domain, but the last matrix's {guest}-kvm cell here is {kvm.get('status')}: "
            f"{kvm.get('reason', '')}".strip(),
            "fix KVM on the host, or run it with [libvirt]virt_type=qemu"))
    return NovaPlan(
        guest_arch=guest, guest_arch_from=guest_from, domain_type=domain_type, emulator=emulator,
        machine=machine, machine_from=machine_from, machine_resolved=resolved, cpu=cpu, firmware=firmware,
        console=console, video=video + ("" if "hw_video_model" in properties else " (with graphics only)"),
        disk_bus=properties.get("hw_disk_bus", "virtio"),
        cdrom_bus=properties.get("hw_cdrom_bus", "Nova's default for the host arch (ide or sata on x86)"),
        trait=trait, pitfalls=pitfalls)


# What Nova would do here but what would not boot: a cell with such properties stops before its boot.
NOT_BLOCKING = ("trait-not-proven", "kvm-not-proven")


def blocking(plan: NovaPlan) -> list[Pitfall]:
    return [pitfall for pitfall in plan.pitfalls if pitfall.code not in NOT_BLOCKING]


def cpu_model_of(plan: NovaPlan) -> str | None:
    """The <cpu> model Nova would write, when it writes one."""
    return plan.cpu if plan.cpu in EMULATED_CPUS.values() else None


def choice_of(plan: NovaPlan) -> NovaChoice:
    """What a cell's plan follows of Nova's decisions."""
    return NovaChoice(machine=plan.machine, cpu_model=cpu_model_of(plan), uefi=plan.firmware.startswith("uefi"),
                      firmware=plan.firmware, disk_bus=plan.disk_bus,
                      said=f"Nova's plan: machine {plan.machine}, cpu {plan.cpu}, firmware {plan.firmware}")


def render(plan: NovaPlan) -> str:
    lines = [
        f"guest arch:   {plan.guest_arch} (from {plan.guest_arch_from})",
        f"domain type:  {plan.domain_type}",
        f"emulator:     {plan.emulator or 'none listed by libvirt'}",
        f"machine:      {plan.machine or 'none: QEMU default'} (from {plan.machine_from})"
        + (f" -> {plan.machine_resolved}" if plan.machine_resolved else ""),
        f"cpu:          {plan.cpu}",
        f"firmware:     {plan.firmware}",
        f"console:      {plan.console}",
        f"video:        {plan.video}",
        f"disk bus:     {plan.disk_bus}; cdrom bus: {plan.cdrom_bus}",
        f"trait needed: {plan.trait or 'none in os-traits'}",
    ]
    if plan.pitfalls:
        lines.append("pitfalls:")
        for pitfall in plan.pitfalls:
            lines += [f"  [{pitfall.code}] {pitfall.problem}", f"      fix: {pitfall.fix}"]
    else:
        lines.append("pitfalls: none found")
    return "\n".join(lines) + "\n"


def last_matrix_cells(matrix_path: Path | None, host_label: str | None, guest_arch: str) -> dict[str, dict]:
    """The guest arch's cells of the host in a matrix.json, by accelerator."""
    if matrix_path is None:
        return {}
    document = json.loads(Path(matrix_path).read_text())
    return {cell["accel"]: cell for cell in document.get("cells", [])
            if cell["arch"] == guest_arch and (host_label is None or cell["host"] == host_label)}


def firmware_capabilities(conn, host, properties: dict[str, str], virt_type: str) -> str | None:
    """libvirt's domain capabilities for the guest arch Nova would boot (its firmware), or None."""
    import libvirt

    guest, _ = guest_arch_of(properties, host.host_arch)
    offer = host.offer_for(guest)
    if offer is None:
        return None
    machine = properties.get("hw_machine_type")
    # Asked of the guest arch's own machine when the image's is not one of it (a pitfall of its own).
    asked = machine if machine in offer.machines else DEFAULT_MACHINES.get(guest)
    try:
        return conn.getDomainCapabilities(None, guest, asked, "qemu" if guest != host.host_arch else virt_type, 0)
    except libvirt.libvirtError:
        return None
