"""Domain XML from a small spec, and the lifecycle of a transient domain.

The XML is built with xml.etree, never by formatting strings, so no name or
kernel argument can inject elements. Every domain carries a metadata tag
naming the harness run that owns it, so leftovers can be told from domains
that are not ours.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from archmatrix.cleanup.names import METADATA_NAMESPACE, PREFIX, tag_domain
from archmatrix.cleanup.owner import Owner
from archmatrix.core.arch import LibvirtConsole
from archmatrix.guest.reaper import destroy_later
from archmatrix.guest.user_network import user_mode_nic

if TYPE_CHECKING:
    import libvirt

QEMU_NAMESPACE = "http://libvirt.org/schemas/domain/qemu/1.0"
LIBVIRT_QEMU_LOG_DIR = Path("/var/log/libvirt/qemu")  # libvirt's per-domain QEMU log, <name>.log


# Arches whose KVM guests get the host's CPU, as Nova's default for aarch64 does: QEMU's default CPU of the virt
# board is a 32-bit Cortex-A15, which KVM on an arm64 host refuses ("KVM is not supported for this guest CPU
# type"). x86_64 keeps QEMU's default: host-passthrough made QEMU abort on this machine's broken KVM ("failed to
# set MSR 0x10a") where the default CPU shows the hang the KVM probe reports as claimed-but-broken.
KVM_NEEDS_HOST_CPU = frozenset({"aarch64"})
ACPI_ARCHES = frozenset({"x86_64", "aarch64"})


@dataclass(frozen=True)
class DomainSpec:
    name: str
    domain_type: str  # "qemu" (TCG) or "kvm"
    arch: str
    machine: str
    emulator: str
    cpu_model: str | None  # None: leave the CPU to the machine's default
    cpu_via_qemu_args: bool  # libvirt has no CPU driver for this arch: pass -cpu to QEMU
    memory_mib: int
    kernel: str | None  # None: the firmware boots `disk`
    initrd: str | None
    cmdline: str
    console: LibvirtConsole  # a pty: the harness reads it through libvirt's console stream
    run_id: str
    cell_id: str
    owner: Owner  # the process that starts it, on this machine's boot (archmatrix/cleanup/owner.py)
    tb_cache_mib: int | None = None  # TCG only: the translation cache's size
    dtb: str | None = None  # a device tree for boards with no firmware to describe them (raspi0)
    # A NIC on QEMU's user-mode network whose guest port 22 is forwarded to this port of the host's loopback.
    nic_device: str | None = None
    ssh_port: int | None = None
    # The port of the host's loopback serving the network check's file: the one thing of the host the guest reaches.
    file_port: int | None = None
    # A virtio RNG fed from the host's /dev/urandom (Nova's hw_rng_model=virtio): the guest's SSH server makes its
    # host key at boot, and a kernel with no other early entropy makes getrandom() wait about a second for it.
    rng: bool = False
    # "efi": libvirt picks a UEFI loader from the firmware descriptors (as Nova asks it to), not secure-boot
    # (Debian's kernel is not signed for the Microsoft keys the enrolled variant holds); its variable store
    # is `nvram`, a file of the run.
    firmware: str | None = None
    nvram: str | None = None
    # A disk the firmware boots from (then there is no kernel): a file of the run, as Nova's instance disk.
    disk: str | None = None
    disk_format: str = "raw"
    disk_bus: str = "virtio"
    # A lab host's (archmatrix/hosts/lab.py): more vCPUs, the CPU features and GIC its own KVM needs, and the
    # machine properties libvirt 9.0 has no element for (they reach QEMU as a second -machine, merged).
    vcpus: int = 1
    cpu_features: tuple[str, ...] = ()
    gic_version: str | None = None
    machine_options: str = ""


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attributes: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attributes)
    if text is not None:
        element.text = text
    return element


def domain_xml(spec: DomainSpec) -> str:
    domain = ET.Element("domain", type=spec.domain_type)
    _sub(domain, "name", spec.name)
    tag_domain(_sub(domain, "metadata"), spec.run_id, spec.cell_id, spec.owner)
    _sub(domain, "memory", str(spec.memory_mib), unit="MiB")
    _sub(domain, "vcpu", str(spec.vcpus))
    features = _sub(domain, "features")
    if spec.gic_version:
        _sub(features, "gic", version=spec.gic_version)
    if spec.firmware == "efi" and spec.arch in ACPI_ARCHES:
        # UEFI hands the OS ACPI tables; libvirt refuses UEFI without ACPI on x86 ("UEFI requires ACPI on this
        # architecture"). Nova's _set_features gives these arches acpi and apic.
        _sub(features, "acpi")
        if spec.arch == "x86_64":
            _sub(features, "apic")
    if spec.tb_cache_mib and spec.domain_type == "qemu":
        # QEMU reserves 1 GiB of translation cache per TCG guest by default (Nova's [libvirt]tb_cache_size).
        _sub(_sub(features, "tcg"), "tb-cache", str(spec.tb_cache_mib), unit="MiB")
    if not len(features):
        domain.remove(features)

    os_element = _sub(domain, "os", **({"firmware": spec.firmware} if spec.firmware else {}))
    _sub(os_element, "type", "hvm", arch=spec.arch, machine=spec.machine)
    if spec.firmware == "efi":
        firmware = _sub(os_element, "firmware")
        for feature in ("secure-boot", "enrolled-keys"):
            _sub(firmware, "feature", enabled="no", name=feature)
        if spec.nvram:
            _sub(os_element, "nvram", spec.nvram)
    if not spec.kernel:
        _sub(os_element, "boot", dev="hd")  # as Nova's driver writes it for an image-backed instance
    else:
        _sub(os_element, "kernel", spec.kernel)
        if spec.initrd:
            _sub(os_element, "initrd", spec.initrd)
        _sub(os_element, "cmdline", spec.cmdline)
        if spec.dtb:
            _sub(os_element, "dtb", spec.dtb)

    if spec.cpu_model and not spec.cpu_via_qemu_args:
        cpu = _sub(domain, "cpu", mode="custom", match="exact")
        _sub(cpu, "model", spec.cpu_model, fallback="forbid")
        for feature in spec.cpu_features:
            _sub(cpu, "feature", policy="require", name=feature)
    elif spec.domain_type == "kvm" and spec.arch in KVM_NEEDS_HOST_CPU:
        _sub(domain, "cpu", mode="host-passthrough")

    # Any stop of the guest (power-off, reboot after a panic, crash) ends the domain,
    # so a dead guest is seen at once instead of at the timeout.
    for event in ("on_poweroff", "on_reboot", "on_crash"):
        _sub(domain, event, "destroy")

    devices = _sub(domain, "devices")
    _sub(devices, "emulator", spec.emulator)
    if spec.disk:
        disk = _sub(devices, "disk", type="file", device="disk")
        _sub(disk, "driver", name="qemu", type=spec.disk_format)
        _sub(disk, "source", file=spec.disk)
        # An empty backing chain: libvirt neither probes the image's header for one nor hands a file it names to
        # the QEMU user (a user's disk is checked to be standalone; this holds even if it were not).
        _sub(disk, "backingStore")
        _sub(disk, "target", dev=DISK_TARGETS.get(spec.disk_bus, "sda"), bus=spec.disk_bus)
    if spec.rng:
        rng = _sub(devices, "rng", model="virtio")
        _sub(rng, "backend", "/dev/urandom", model="random")
        if _is_malta(spec.machine):
            _sub(rng, "address", type="pci", domain="0", bus="0", slot=MALTA_RNG_SLOT, function="0")
    for port in range(spec.console.port):  # ports before the console's lead nowhere
        _sub(_sub(devices, "serial", type="null"), "target", port=str(port))
    console = _sub(devices, spec.console.element, type="pty")
    target = _sub(console, "target", port=str(spec.console.port))
    if spec.console.target_type:
        target.set("type", spec.console.target_type)
    # Nothing the checks do not need: fewer devices, faster and more comparable boots.
    _sub(devices, "controller", type="usb", model="none")
    _sub(devices, "memballoon", model="none")

    return serialized(domain, qemu_arguments(spec))


def serialized(domain: ET.Element, qemu_args: list[str]) -> str:
    """A domain element as libvirt's XML, with `qemu_args` passed to QEMU past libvirt."""
    if qemu_args:
        commandline = _sub(domain, f"{{{QEMU_NAMESPACE}}}commandline")
        for value in qemu_args:
            _sub(commandline, f"{{{QEMU_NAMESPACE}}}arg", value=value)
    ET.register_namespace(PREFIX, METADATA_NAMESPACE)
    ET.register_namespace("qemu", QEMU_NAMESPACE)
    ET.indent(domain)
    return ET.tostring(domain, encoding="unicode") + "\n"


DISK_TARGETS = {"virtio": "vda", "ide": "hda", "xen": "xvda"}  # sd* for the SCSI-like buses (scsi, sata, usb)


def qemu_arguments(spec: DomainSpec) -> list[str]:
    """What reaches QEMU past libvirt (the domain is then "tainted: custom-argv").

    The NIC: libvirt 9.0 forwards ports of a `user` interface only with the passt backend, which
    is not installed with it (nor in the container hosts); QEMU's own user-mode network (slirp)
    forwards them on every QEMU the harness meets. The forward is bound to the loopback only, and the guest
    reaches nothing of the host but the network check's file (archmatrix/guest/user_network.py).
    """
    arguments = ["-cpu", spec.cpu_model] if spec.cpu_model and spec.cpu_via_qemu_args else []
    if spec.machine_options:
        arguments += ["-machine", spec.machine_options]
    if spec.nic_device and spec.ssh_port:
        arguments += user_mode_nic(spec.nic_device, spec.ssh_port, spec.file_port, nic_address(spec))
    return arguments


def nic_address(spec: DomainSpec) -> str:
    """Where the NIC goes beside a disk or RNG libvirt places.

    libvirt puts its device at the first free address it knows of (behind a root port at slot 1 of a PCIe root
    bus, slot 1 of a PCI bus, CCW device number fe.0.0000), and QEMU would put the NIC libvirt does not know of
    there too.
    """
    if not spec.disk and not spec.rng:
        return ""
    return nic_address_beside_libvirts(spec.machine, spec.nic_device)


def nic_address_beside_libvirts(machine: str, nic_device: str | None) -> str:
    """The NIC's address on a machine where libvirt has placed devices of its own."""
    if _is_malta(machine):
        return ""  # QEMU places it in slot 18, the first it fills itself on malta; libvirt's RNG is in slot 19
    if nic_device and nic_device.endswith("-ccw"):
        return ",devno=fe.0.0100"
    if nic_device and nic_device.endswith("-pci"):
        # Slot 0x1e is free on q35 (0x1f is its LPC bridge), pc, virt and pseries.
        return f",bus={_root_bus(machine)},addr=0x1e"
    return ""


def _root_bus(machine: str) -> str:
    """QEMU's name for the machine's root PCI bus (the names libvirt's own -device arguments use)."""
    return "pcie.0" if machine.startswith(("q35", "pc-q35", "virt")) else "pci.0"


# The malta board has interrupts for its four PCI slots only, 18 to 21 (Linux's arch/mips/pci/fixup-malta.c): a
# device in libvirt's first free slot, 1, gets none, and its driver's probe fails with EINVAL (seen here).
MALTA_RNG_SLOT = "0x13"


def _is_malta(machine: str) -> bool:
    return machine.startswith("malta")


@contextmanager
def running_domain(conn: libvirt.virConnect, xml: str) -> Iterator[libvirt.virDomain]:
    """Start a transient domain paused; destroy it on the way out, whatever happened.

    Paused, so its console can be opened before the guest prints its first byte:
    the caller resumes it. After a normal exit it is destroyed in the background
    (archmatrix/guest/reaper.py); after an exception (Ctrl-C among them) at once.
    """
    import libvirt

    domain = conn.createXML(xml, libvirt.VIR_DOMAIN_START_PAUSED)
    try:
        yield domain
    except BaseException:
        try:
            domain.destroy()
        except libvirt.libvirtError:
            pass  # already gone: it powered off, rebooted after a panic, or crashed
        raise
    destroy_later(domain)
