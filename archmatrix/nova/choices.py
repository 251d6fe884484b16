"""What a domain XML of Nova's chose, read back: machine, CPU, firmware, buses, console, devices.

One reading of Nova's XML for every use: a Nova cell's plan follows it, nova-plan prints it, the matrix shows it.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass


@dataclass(frozen=True)
class DomainChoices:
    domain_type: str
    arch: str
    machine: str | None
    cpu: str  # "host-model", "host-passthrough", a model name, or "none"
    firmware: str  # "efi" (with its loader's attributes), "bios"
    console: str  # "serial pty", "console pty sclp", ...
    video: str | None
    disk_bus: str | None
    cdrom_bus: str | None
    devices: tuple[str, ...]  # what else Nova put in: acpi, apic, usb, tablet, keyboard, graphics vnc, rng, ...

    def said(self) -> str:
        """One line a person reads in a matrix column."""
        return (f"machine {self.machine or 'QEMU default'}, cpu {self.cpu}, firmware {self.firmware}, disk "
                f"{self.disk_bus or 'none'}, cdrom {self.cdrom_bus or 'none'}")


def choices_of(xml_text: str) -> DomainChoices:
    root = ET.fromstring(xml_text)
    os_type = root.find("os/type")
    cpu = root.find("cpu")
    if cpu is None:
        cpu_said = "none"
    elif cpu.get("mode") in ("host-model", "host-passthrough"):
        cpu_said = cpu.get("mode")
    else:
        cpu_said = cpu.findtext("model") or "topology only"
    loader = root.find("os/loader")
    if root.find("os").get("firmware") == "efi" or (loader is not None and loader.get("type") == "pflash"):
        attributes = " ".join(f"{key}={value}" for key, value in sorted((loader.attrib if loader is not None
                                                                        else {}).items()))
        firmware = f"efi{' (loader ' + attributes + ')' if attributes else ''}"
    else:
        firmware = "bios"
    console = next((f"{element.tag} {element.get('type')}" + (f" {target.get('type')}" if (
        target := element.find("target")) is not None and target.get("type") else "")
        for element in root.findall("devices/*") if element.tag in ("serial", "console")), "none")
    buses = {disk.get("device"): disk.find("target").get("bus") for disk in root.findall("devices/disk")
             if disk.find("target") is not None}
    devices = [tag for tag in ("acpi", "apic", "vmcoreinfo") if root.find(f"features/{tag}") is not None]
    devices += [f"usb {c.get('model') or 'controller'}" for c in root.findall("devices/controller[@type='usb']")]
    devices += [f"{i.get('type')} ({i.get('bus')})" for i in root.findall("devices/input")]
    devices += [f"graphics {g.get('type')}" for g in root.findall("devices/graphics")]
    devices += [f"rng {r.get('model')}" for r in root.findall("devices/rng")]
    devices += [f"memballoon {m.get('model')}" for m in root.findall("devices/memballoon")]
    devices += ["iothreads"] if root.find("iothreads") is not None else []
    video = root.find("devices/video/model")
    return DomainChoices(
        domain_type=root.get("type"), arch=os_type.get("arch"), machine=os_type.get("machine"), cpu=cpu_said,
        firmware=firmware, console=console, video=video.get("type") if video is not None else None,
        disk_bus=buses.get("disk"), cdrom_bus=buses.get("cdrom"), devices=tuple(devices))
