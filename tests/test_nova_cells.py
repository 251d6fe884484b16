"""Nova cells, offline: Nova's recorded XML for this host kind, booted with only a deployment's parts replaced."""

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from archmatrix.cleanup.owner import Owner
from archmatrix.guest.site import PlacedFiles
from archmatrix.nova.cells import CONFIG_DRIVE, booted_xml, properties_for
from archmatrix.nova.choices import choices_of
from archmatrix.nova.remedies import REMEDIES, remedy_for

RECORDED = json.loads((Path(__file__).parent / "fixtures/nova/cells-x86_64-debian12.json").read_text())
TCG = {case_id: case["xml"] for run in RECORDED["runs"] if run["virt_type"] == "qemu"
       for case_id, case in run["cases"].items()}
OWNER = Owner("1234", "5678", "boot", "machine")


def _booted(cell_id: str, directory: str = "/run/cell"):
    files = PlacedFiles(kernel=None, initrd=None, owned=True, disk=f"{directory}/disk.raw",
                        attached={CONFIG_DRIVE: f"{directory}/config-2.iso"})
    return booted_xml(TCG[cell_id], files, "run1", cell_id, OWNER, 40022, "virtio-net-pci", ",bus=pcie.0,addr=0x1e")


def _without(root: ET.Element, paths: list[str]) -> str:
    for path in paths:
        for element in root.findall(path):
            for parent in root.iter():
                if element in list(parent):
                    parent.remove(element)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode")


@pytest.mark.parametrize("cell_id", sorted(TCG))
def test_only_a_deployments_parts_of_novas_domain_are_replaced(cell_id):
    booted = _booted(cell_id)
    # What a deployment supplies: disk and drive sources, the console log's and UEFI store's places, VNC's
    # listening, the NIC (QEMU arguments) and the harness's tag. Everything else is Nova's, byte for byte.
    replaced_parts = ["devices/disk/source", "devices/*/log", "devices/graphics", "os/nvram", "metadata",
                      "{http://libvirt.org/schemas/domain/qemu/1.0}commandline"]
    assert _without(ET.fromstring(booted.xml), replaced_parts) == _without(ET.fromstring(TCG[cell_id]),
                                                                           replaced_parts)
    root = ET.fromstring(booted.xml)
    sources = {disk.get("device"): disk.find("source").get("file") for disk in root.findall("devices/disk")}
    assert sources == {"disk": "/run/cell/disk.raw", "cdrom": "/run/cell/config-2.iso"}
    assert root.find("devices/graphics/listen").get("type") == "none", "no unauthenticated VNC port"
    assert all(log.get("file").startswith("/run/cell/") for log in root.findall("devices/*/log"))
    assert "hostfwd=tcp:127.0.0.1:40022-:22" in booted.xml
    assert root.find("metadata/{urn:archmatrix:run:1}run").get("cell") == cell_id
    assert all("/var/lib/nova" not in line for line in booted.xml.splitlines()), "no path of Nova's host is left"
    assert booted.diff.startswith("--- nova.xml") and len(booted.replaced) >= 4


def test_a_uefi_guest_gets_its_own_variable_store_beside_its_disk():
    root = ET.fromstring(_booted("aarch64-tcg-nova").xml)
    assert root.find("os").get("firmware") == "efi"
    assert root.find("os/nvram").text == "/run/cell/aarch64-tcg-nova-VARS.fd"
    assert root.find("os/loader").get("secure") == "no", "Nova's loader is left as Nova wrote it"


def test_novas_choices_for_the_documented_properties_on_an_x86_64_host():
    said = {cell_id: choices_of(xml) for cell_id, xml in TCG.items()}
    assert said["aarch64-tcg-nova"].machine == "virt" and said["aarch64-tcg-nova"].firmware.startswith("efi")
    assert said["s390x-tcg-nova"].machine == "s390-ccw-virtio"
    assert said["ppc64le-tcg-nova"].machine == "pseries"
    # Nova's CD-ROM bus follows the host's arch, not hw_emulation_architecture: IDE for every emulated guest.
    assert {cell_id: choice.cdrom_bus for cell_id, choice in said.items()} == {
        "aarch64-tcg-nova": "ide", "ppc64le-tcg-nova": "ide", "s390x-tcg-nova": "ide", "x86_64-tcg-nova": "sata"}


def test_properties_are_the_documented_ones_with_the_users_on_top():
    assert properties_for("aarch64", "x86_64", {}) == {"hw_emulation_architecture": "aarch64",
                                                       "hw_firmware_type": "uefi", "hw_machine_type": "virt"}
    assert properties_for("aarch64", "aarch64", {})["hw_architecture"] == "aarch64"  # the host's own arch
    assert properties_for("s390x", "x86_64", {"hw_input_bus": "virtio"})["hw_input_bus"] == "virtio"
    assert properties_for("riscv64", "x86_64", {}) == {"hw_emulation_architecture": "riscv64"}


@pytest.mark.parametrize("remedy", REMEDIES, ids=lambda remedy: remedy.libvirt_says[:30])
def test_each_known_refusal_names_nova_s_decision(remedy):
    text = remedy_for(f"unsupported configuration: {remedy.libvirt_says} (more)")
    assert text.startswith("Nova")
    assert remedy_for("some refusal nobody has seen") == ""
