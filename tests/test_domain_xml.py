"""The domain XML builder, against golden files checked by eye once and then kept."""

import dataclasses
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from archmatrix.cleanup.names import domain_tag
from archmatrix.cleanup.owner import Owner
from archmatrix.core.arches import ARCHES
from archmatrix.core.plan import make_plan
from archmatrix.guest.domain import QEMU_NAMESPACE, domain_xml
from archmatrix.guest.observe import domain_spec
from archmatrix.guest.site import PlacedFiles
from tests.helpers import THIS_HOST, capabilities

GOLDEN = Path(__file__).parent / "fixtures" / "golden"


def spec_for(arch: str, cmdline_extra: str = ""):
    plan = make_plan(ARCHES[arch], "tcg", capabilities(THIS_HOST), None)
    spec = domain_spec(plan, PlacedFiles("/run/k", "/run/i", owned=True), "0123abcd")
    changes = {"owner": Owner("4242", "31337", "b0071d", "m4ch1ne")}
    if cmdline_extra:
        changes["cmdline"] = spec.cmdline + cmdline_extra
    return dataclasses.replace(spec, **changes)


@pytest.mark.parametrize("arch", ["aarch64", "s390x", "mips64el", "ppc64le", "x86_64"])
def test_domain_xml_matches_golden_file(arch):
    golden = GOLDEN / f"{arch}-tcg.xml"
    produced = domain_xml(spec_for(arch))
    if os.environ.get("ARCHMATRIX_UPDATE_GOLDEN"):
        golden.write_text(produced)
    assert produced == golden.read_text()


def test_s390x_console_is_an_sclp_console_not_a_serial():
    root = ET.fromstring(domain_xml(spec_for("s390x")))
    assert root.find("devices/serial") is None
    assert root.find("devices/console/target").get("type") == "sclp"


def test_cpu_goes_to_qemu_only_where_libvirt_has_no_cpu_driver():
    mips = ET.fromstring(domain_xml(spec_for("mips64el")))
    assert mips.find("cpu") is None
    args = [a.get("value") for a in mips.find(f"{{{QEMU_NAMESPACE}}}commandline")]
    assert args == ["-cpu", "5KEc"]
    aarch64 = ET.fromstring(domain_xml(spec_for("aarch64")))
    assert aarch64.findtext("cpu/model") == "cortex-a57"
    assert aarch64.find(f"{{{QEMU_NAMESPACE}}}commandline") is None


def test_kernel_arguments_cannot_inject_elements():
    hostile = " </cmdline></os><devices><disk type='file'/></devices><os><cmdline>"
    root = ET.fromstring(domain_xml(spec_for("aarch64", hostile)))
    assert root.find("devices/disk") is None
    assert root.findtext("os/cmdline").endswith(hostile)


def test_metadata_tag_names_run_and_cell():
    assert domain_tag(domain_xml(spec_for("aarch64"))) == {
        "run": "0123abcd", "cell": "aarch64-tcg", "pid": "4242", "pidstart": "31337", "boot": "b0071d",
        "machine": "m4ch1ne"}
    assert domain_tag("<domain><name>someone-elses</name></domain>") is None


@pytest.mark.parametrize("arch", ["aarch64", "s390x", "mips64el", "ppc64le", "x86_64"])
def test_guests_have_no_libvirt_network_and_no_display(arch):
    # No libvirt NIC, no VNC/SPICE, no redirected devices: the only way in is the SSH port below.
    root = ET.fromstring(domain_xml(spec_for(arch)))
    for device in ("interface", "graphics", "redirdev", "channel"):
        assert root.find(f"devices/{device}") is None


@pytest.mark.parametrize(("arch", "device"), [
    ("aarch64", "virtio-net-pci,netdev=archmatrix-net0,romfile=,bus=pcie.0,addr=0x1e"),
    ("mipsel", "virtio-net-pci,netdev=archmatrix-net0,romfile="),
    ("s390x", "virtio-net-ccw,netdev=archmatrix-net0,devno=fe.0.0100")])
def test_ssh_port_is_forwarded_from_the_loopback_only(arch, device):
    # Beside the RNG libvirt places, the NIC takes an address libvirt leaves free.
    plan = make_plan(ARCHES[arch], "tcg", capabilities(THIS_HOST), None)
    spec = domain_spec(plan, PlacedFiles("/run/k", "/run/i", owned=True), "0123abcd", ssh_port=40022,
                       ssh_key="AAAAC3NzaC1lZDI1NTE5AAAAIB")
    root = ET.fromstring(domain_xml(spec))
    arguments = [arg.get("value") for arg in root.iter(f"{{{QEMU_NAMESPACE}}}arg")]
    assert arguments[-4:] == ["-netdev", "user,id=archmatrix-net0,restrict=on,hostfwd=tcp:127.0.0.1:40022-:22",
                              "-device", device]
    assert root.findtext("os/cmdline").startswith("archmatrix.ssh_key=AAAAC3NzaC1lZDI1NTE5AAAAIB console=")


def test_the_guest_network_reaches_only_the_network_checks_file_of_the_host():
    # restrict=on: no connection out of the guest's network but the guestfwd (10.0.2.2 no longer reaches the
    # host's loopback); the one guestfwd is the check's file, served on the host's loopback.
    plan = make_plan(ARCHES["aarch64"], "tcg", capabilities(THIS_HOST), None)
    spec = domain_spec(plan, PlacedFiles("/run/k", "/run/i", owned=True), "0123abcd", ssh_port=40022,
                       ssh_key="AAAAC3NzaC1lZDI1NTE5AAAAIB", file_port=41234)
    root = ET.fromstring(domain_xml(spec))
    arguments = [arg.get("value") for arg in root.iter(f"{{{QEMU_NAMESPACE}}}arg")]
    netdev = arguments[arguments.index("-netdev") + 1].split(",")
    assert netdev == ["user", "id=archmatrix-net0", "restrict=on", "hostfwd=tcp:127.0.0.1:40022-:22",
                      "guestfwd=tcp:10.0.2.100:80-tcp:127.0.0.1:41234"]
    assert not [option for option in netdev if option.startswith(("restrict=off", "net=", "host="))]


def test_a_file_port_without_an_ssh_port_makes_no_nic():
    plan = make_plan(ARCHES["aarch64"], "tcg", capabilities(THIS_HOST), None)
    spec = domain_spec(plan, PlacedFiles("/run/k", "/run/i", owned=True), "0123abcd", file_port=41234)
    assert spec.file_port is None and ET.fromstring(domain_xml(spec)).find(f"{{{QEMU_NAMESPACE}}}commandline") is None


def test_no_ssh_port_no_nic_and_no_key():
    root = ET.fromstring(domain_xml(spec_for("aarch64")))
    assert root.find(f"{{{QEMU_NAMESPACE}}}commandline") is None
    assert "archmatrix.ssh_key" not in root.findtext("os/cmdline")
    assert root.find("devices/rng") is None


@pytest.mark.parametrize("arch", ["aarch64", "s390x", "mipsel", "ppc64", "x86_64"])
def test_a_guest_reached_over_ssh_gets_a_virtio_rng_fed_from_the_hosts_urandom(arch):
    # As Nova's hw_rng_model=virtio: the guest's SSH server makes its host key from the kernel's entropy at boot.
    plan = make_plan(ARCHES[arch], "tcg", capabilities(THIS_HOST), None)
    spec = domain_spec(plan, PlacedFiles("/run/k", "/run/i", owned=True), "0123abcd", ssh_port=40022,
                       ssh_key="AAAAC3NzaC1lZDI1NTE5AAAAIB")
    rng = ET.fromstring(domain_xml(spec)).find("devices/rng")
    assert rng.get("model") == "virtio"
    assert rng.find("backend").attrib == {"model": "random"} and rng.findtext("backend") == "/dev/urandom"
    # On malta in one of the four slots that have an interrupt (the NIC QEMU places takes slot 18).
    address = rng.find("address")
    assert (address.get("slot") if address is not None else None) == ("0x13" if arch == "mipsel" else None)


def test_uefi_as_nova_asks_for_it_lets_libvirt_pick_a_loader_without_secure_boot():
    plan = dataclasses.replace(make_plan(ARCHES["aarch64"], "tcg", capabilities(THIS_HOST), None), firmware="efi")
    spec = domain_spec(plan, PlacedFiles("/run/cell/kernel", "/run/cell/initrd", owned=True), "0123abcd", name="d")
    root = ET.fromstring(domain_xml(spec))
    assert root.find("os").get("firmware") == "efi" and root.find("os/loader") is None
    assert {f.get("name"): f.get("enabled") for f in root.iter("feature")} == {"secure-boot": "no",
                                                                            "enrolled-keys": "no"}
    assert root.findtext("os/nvram") == "/run/cell/d-VARS.fd"  # a file of the run, gone with it


def test_an_aarch64_kvm_guest_gets_the_hosts_cpu_and_an_x86_64_one_qemus_default():
    # Measured on the aarch64 lab host: without a CPU, QEMU's virt board takes a Cortex-A15 KVM refuses.
    def kvm_cpu(arch):
        spec = dataclasses.replace(spec_for(arch), domain_type="kvm", cpu_model=None)
        return ET.fromstring(domain_xml(spec)).find("cpu")

    assert kvm_cpu("aarch64").get("mode") == "host-passthrough"
    assert kvm_cpu("x86_64") is None


def disk_spec(arch: str, disk_format: str = "raw", **plan_changes):
    plan = make_plan(ARCHES[arch], "tcg", capabilities(THIS_HOST), None, boot="disk")
    plan = dataclasses.replace(plan, **plan_changes)
    files = PlacedFiles(None, None, owned=True, disk=f"/run/cell/disk.{disk_format}", disk_format=disk_format)
    spec = domain_spec(plan, files, "0123abcd", name="d", ssh_port=40022, ssh_key="AAAAC3")
    return dataclasses.replace(spec, owner=Owner("4242", "31337", "b0071d", "m4ch1ne"))


def test_a_disk_domain_xml_matches_golden_file():
    # A user's qcow2 boots with an empty backing chain: libvirt neither probes nor labels a file its header names.
    golden = GOLDEN / "aarch64-tcg-disk-qcow2.xml"
    produced = domain_xml(disk_spec("aarch64", "qcow2", firmware="efi"))
    if os.environ.get("ARCHMATRIX_UPDATE_GOLDEN"):
        golden.write_text(produced)
    assert produced == golden.read_text()


@pytest.mark.parametrize("arch, firmware", [("aarch64", "efi"), ("x86_64", "efi"), ("ppc64le", None),
                                            ("s390x", None)])
def test_a_disk_boot_has_no_kernel_and_boots_the_disk_through_the_arch_firmware(arch, firmware):
    root = ET.fromstring(domain_xml(disk_spec(arch)))
    assert root.find("os/kernel") is None and root.find("os/cmdline") is None and root.find("os/initrd") is None
    assert root.find("os/boot").get("dev") == "hd"
    assert root.find("os").get("firmware") == firmware
    disk = root.find("devices/disk")
    assert disk.find("source").get("file") == "/run/cell/disk.raw" and disk.find("driver").get("type") == "raw"
    assert disk.find("target").attrib == {"dev": "vda", "bus": "virtio"}


def test_uefi_on_x86_64_comes_with_acpi_and_apic_as_nova_sets_them():
    # libvirt refuses the domain otherwise: "UEFI requires ACPI on this architecture" (seen here).
    features = ET.fromstring(domain_xml(disk_spec("x86_64"))).find("features")
    assert features.find("acpi") is not None and features.find("apic") is not None
    assert ET.fromstring(domain_xml(spec_for("x86_64"))).find("features/acpi") is None  # a direct boot: none


@pytest.mark.parametrize("arch, address", [("aarch64", ",bus=pcie.0,addr=0x1e"), ("x86_64", ",bus=pcie.0,addr=0x1e"),
                                           ("ppc64le", ",bus=pci.0,addr=0x1e"), ("s390x", ",devno=fe.0.0100")])
def test_beside_a_disk_the_nic_takes_an_address_libvirt_leaves_free(arch, address):
    # Seen here without it: "PCI: slot 1 function 0 not available for pcie-root-port, in use by virtio-net-pci",
    # and on s390x "Device fe.0.0000 already exists".
    root = ET.fromstring(domain_xml(disk_spec(arch)))
    device = [arg.get("value") for arg in root.iter(f"{{{QEMU_NAMESPACE}}}arg")][-1]
    assert device.endswith(address)


def test_a_disk_bus_from_nova_properties_is_the_disks_bus():
    disk = ET.fromstring(domain_xml(disk_spec("x86_64", disk_bus="sata"))).find("devices/disk/target")
    assert disk.attrib == {"dev": "sda", "bus": "sata"}
