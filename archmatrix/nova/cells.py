"""Nova cells: a cell's domain written by Nova's own libvirt driver, booted as Nova would boot it.

Only what a deployment supplies is replaced in Nova's XML, and every replacement is kept as a diff: the root
disk's source (the arch's built-in firmware disk, or the user's --image disk, as a flat image backend stages
it) and the config drive's (built by Nova's own builder), the UEFI variable store's place, the VNC server's
listening (no TCP port: nothing listens unauthenticated), the console log's place, and the NIC
(Nova's comes from Neutron; here QEMU's user-mode network with the guest's SSH port forwarded to the host's
loopback, as the harness's own cells have it). The harness's tag joins Nova's metadata, so the domain is swept
and audited like every other.
"""

from __future__ import annotations

import difflib
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from archmatrix.cleanup.names import METADATA_NAMESPACE, PREFIX, tag_domain
from archmatrix.cleanup.owner import Owner
from archmatrix.guest.domain import QEMU_NAMESPACE
from archmatrix.guest.site import PlacedFiles
from archmatrix.guest.user_network import user_mode_nic

# What Nova's documentation and its nova-emulation job give the image of each arch it tested ("tested and
# validated": aarch64, ppc64le, s390x), and x86_64 with UEFI (its built-in disk boots through OVMF only) on q35.
# The arch itself goes in hw_emulation_architecture on a host of another arch, else in hw_architecture.
NOVA_EMULATION_PROPERTIES = {
    "aarch64": {"hw_firmware_type": "uefi", "hw_machine_type": "virt"},
    "ppc64le": {"hw_machine_type": "pseries"},
    "s390x": {"hw_machine_type": "s390-ccw-virtio", "hw_video_model": "virtio"},
    "x86_64": {"hw_firmware_type": "uefi", "hw_machine_type": "q35"},
}
CONFIG_DRIVE = "config-2.iso"  # what Nova's builder writes, as an attachment of the cell


def properties_for(arch: str, host_arch: str, user: dict[str, str]) -> dict[str, str]:
    """The arch's Nova properties on a host of `host_arch`, the user's --image-property on top."""
    named = {"hw_architecture" if arch == host_arch else "hw_emulation_architecture": arch}
    return {**named, **NOVA_EMULATION_PROPERTIES.get(arch, {}), **user}


@dataclass(frozen=True)
class Booted:
    """Nova's XML as the cell boots it, what was replaced, and the diff."""

    xml: str
    replaced: tuple[str, ...]
    diff: str


def _sub(parent: ET.Element, tag: str, **attributes: str) -> ET.Element:
    return ET.SubElement(parent, tag, attributes)


def booted_xml(nova_xml: str, files: PlacedFiles, run_id: str, cell_id: str, owner: Owner, ssh_port: int | None,
               nic_device: str | None, nic_address: str, file_port: int | None = None) -> Booted:
    """Nova's domain with what a deployment supplies put in (see the module's docstring)."""
    ET.register_namespace(PREFIX, METADATA_NAMESPACE)
    ET.register_namespace("qemu", QEMU_NAMESPACE)
    ET.register_namespace("nova", "http://openstack.org/xmlns/libvirt/nova/1.1")
    root = ET.fromstring(nova_xml)
    replaced = []
    metadata = root.find("metadata")
    tag_domain(metadata if metadata is not None else _sub(root, "metadata"), run_id, cell_id, owner)
    for disk in root.findall("devices/disk"):
        source = disk.find("source")
        if source is None:
            continue
        # Nova names the root disk "disk" (a CD-ROM when the image is an ISO) and the config drive "disk.config".
        root_disk = Path(source.get("file", "")).name == "disk"
        path = files.disk if root_disk else files.attached.get(CONFIG_DRIVE)
        if path and source.get("file") != path:
            replaced.append(f"{'root ' if root_disk else ''}{disk.get('device')} source {source.get('file')} -> "
                            f"{path}")
            source.set("file", path)
            driver = disk.find("driver")
            if root_disk and driver is not None and driver.get("type") != files.disk_format:
                replaced.append(f"disk format {driver.get('type')} -> {files.disk_format} (a flat image backend's)")
                driver.set("type", files.disk_format)
    os_element = root.find("os")
    if os_element.get("firmware") == "efi" or os_element.find("loader") is not None:
        nvram = str(Path(files.directory) / f"{cell_id}-VARS.fd")
        element = os_element.find("nvram")
        if element is None:
            element = _sub(os_element, "nvram")
        replaced.append(f"UEFI variable store -> {nvram} (the cell's own, removed with it)")
        element.text = nvram
    for graphics in root.findall("devices/graphics"):
        replaced.append(f"{graphics.get('type')} graphics listening on {graphics.get('listen')} -> not listening "
                        f"(no unauthenticated TCP port)")
        for key in ("listen", "autoport", "port"):
            graphics.attrib.pop(key, None)
        for listen in graphics.findall("listen"):
            graphics.remove(listen)
        _sub(graphics, "listen", type="none")
    for log in root.findall("devices/*/log"):
        path = str(Path(files.directory) / f"{cell_id}-console.log")
        replaced.append(f"console log {log.get('file')} -> {path} (beside the cell's disk, removed with it)")
        log.set("file", path)
    if ssh_port and nic_device:
        commandline = root.find(f"{{{QEMU_NAMESPACE}}}commandline")
        if commandline is None:
            commandline = _sub(root, f"{{{QEMU_NAMESPACE}}}commandline")
        for value in user_mode_nic(nic_device, ssh_port, file_port, nic_address):
            _sub(commandline, f"{{{QEMU_NAMESPACE}}}arg", value=value)
        replaced.append(f"NIC (Neutron's) -> {nic_device} on QEMU's restricted user-mode network, SSH forwarded "
                        f"to 127.0.0.1:{ssh_port}" + (f", the network check's file from 127.0.0.1:{file_port}"
                                                      if file_port else ""))
    ET.indent(root)
    xml = ET.tostring(root, encoding="unicode") + "\n"
    return Booted(xml, tuple(replaced), xml_diff(nova_xml, xml))


def xml_diff(nova: str, booted: str) -> str:
    """Nova's XML against the booted one, both as ElementTree writes them (so only real changes show)."""
    def normal(text: str) -> list[str]:
        root = ET.fromstring(text)
        ET.indent(root)
        return (ET.tostring(root, encoding="unicode") + "\n").splitlines(keepends=True)

    return "".join(difflib.unified_diff(normal(nova), normal(booted), "nova.xml", "booted.xml", n=1))
