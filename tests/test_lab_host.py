"""Lab hosts without booting one: their catalog, their domain, their image's recipe key."""

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from archmatrix.cleanup.names import domain_tag
from archmatrix.cleanup.owner import Owner
from archmatrix.guest.domain import domain_xml
from archmatrix.hosts.lab import lab_domain_spec
from archmatrix.hosts.lab_catalog import LAB_KINDS, UnknownLabHostError, lab_kind
from archmatrix.hosts.lab_recipe import packages_of, recipe_files, recipe_key
from archmatrix.hosts.spec import LABEL, HostSpec
from archmatrix.ssh.keys import fingerprint_of_line

QEMU = "{http://libvirt.org/schemas/domain/qemu/1.0}"
OWNER = Owner("1", "2", "b00t", "m4chine")


def lab_domain_xml(*args, **kwargs) -> str:
    """The lab's domain as the guest path writes it (archmatrix/guest/domain.py)."""
    return domain_xml(lab_domain_spec(*args, **kwargs))


def _domain(virtualization=True, port=40000):
    kind = lab_kind("aarch64")
    return ET.fromstring(lab_domain_xml(kind, "archmatrix-run1-lab_aarch64", "run1", OWNER, Path("/r/vmlinuz"),
                                        Path("/r/stage1.cpio.gz"), Path("/r/root.ext4"), "console=ttyAMA0 quiet",
                                        port, virtualization))


def _qemu_args(root) -> list[str]:
    return [arg.get("value") for arg in root.iter(f"{QEMU}arg")]


def test_the_aarch64_lab_gets_el2_a_gic_v3_and_its_ssh_port_on_the_loopback_only():
    root = _domain()
    assert root.get("type") == "qemu" and root.findtext("devices/emulator") == "/usr/bin/qemu-system-aarch64"
    assert root.find("features/gic").get("version") == "3"
    assert root.find("cpu/model").text == "cortex-a57"
    arguments = _qemu_args(root)
    assert arguments[:2] == ["-machine", "virtualization=on"]
    assert "user,id=archmatrix-net0,restrict=on,hostfwd=tcp:127.0.0.1:40000-:22" in arguments  # nothing of this host
    assert root.find("devices/disk/source").get("file") == "/r/root.ext4"
    # Tagged like every harness domain: swept and audited the same way.
    assert domain_tag(ET.tostring(root, encoding="unicode")) == {"run": "run1", "cell": "lab-aarch64",
                                                                 **OWNER.tag()}


def test_the_planted_fault_drops_only_the_virtualization_extensions():
    with_el2, without = _qemu_args(_domain()), _qemu_args(_domain(virtualization=False))
    assert "virtualization=on" not in without
    assert [arg for arg in with_el2 if arg not in ("-machine", "virtualization=on")] == without


def test_every_lab_kind_is_either_usable_or_says_why_not():
    assert lab_kind("aarch64").label == "lab_aarch64" and LABEL.match(lab_kind("aarch64").label)
    for arch, kind in LAB_KINDS.items():
        if kind.unsupported:
            with pytest.raises(UnknownLabHostError, match=f"--lab-host '{arch}': .+; valid: aarch64, ppc64le, x86_64"):
                lab_kind(arch)
    assert "SIE" in LAB_KINDS["s390x"].unsupported


def test_the_aarch64_lab_offers_the_arm_and_x86_emulators_from_debian_packages():
    packages = packages_of(lab_kind("aarch64"))
    assert {"qemu-system-arm", "qemu-system-x86", "libvirt-daemon", "linux-image-arm64"} <= set(packages)


def test_the_image_key_follows_package_versions_and_recipe_files():
    kind = lab_kind("aarch64")
    versions = {"libvirt0": "9.0.0-4+deb12u2", "qemu-system-arm": "1:7.2+dfsg-7+deb12u18+b3"}
    key = recipe_key(kind, versions)
    assert key == recipe_key(kind, dict(versions))
    assert key != recipe_key(kind, {**versions, "libvirt0": "9.0.0-4+deb12u3"})
    assert "lab/start.sh" in recipe_files() and "etc/udhcpc.script" in recipe_files()


def test_a_lab_host_is_a_remote_host_with_a_longer_boot_bound():
    spec = HostSpec("lab_aarch64", "qemu+ext:///system?command=/x", "lab", details={"timeout_factor": 4.0})
    assert not spec.is_local and spec.timeout_factor == 4.0
    assert HostSpec.from_dict(spec.to_dict()).timeout_factor == 4.0  # as xdist workers get it
    assert HostSpec("here", "qemu:///system", "local").timeout_factor == 1.0


def test_the_pinned_fingerprint_is_openssh_s():
    # The lab's key line from a real boot, and `ssh-keygen -lf` of it.
    line = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB2BZay1xOI5YyCUzPU9wGLKEUL3ecVL3PMhL6YemBUf"
    assert fingerprint_of_line(line) == "SHA256:ykBScepVy/jOyLtlzW3lQdpXL7vK8/FNU4WWV2qNMq4"


def test_the_x86_64_lab_gets_amd_svm_and_its_nic_where_q35_has_a_free_slot():
    kind = lab_kind("x86_64")
    root = ET.fromstring(lab_domain_xml(kind, "archmatrix-run1-lab_x86_64", "run1", OWNER, Path("/r/vmlinuz"),
                                        Path("/r/stage1.cpio.gz"), Path("/r/root.ext4"), "console=ttyS0", 40000))
    assert root.find("os/type").get("machine") == "q35" and root.find("features") is None
    assert [(f.get("policy"), f.get("name")) for f in root.findall("cpu/feature")] == [("require", "svm")]
    arguments = _qemu_args(root)
    assert "-machine" not in arguments and any(arg.endswith("bus=pcie.0,addr=0x1e") for arg in arguments)
    without = ET.fromstring(lab_domain_xml(kind, "n", "run1", OWNER, Path("/k"), Path("/i"), Path("/d"), "", None,
                                           virtualization=False))
    assert without.findall("cpu/feature") == []


def test_a_lab_hosts_cells_are_expected_to_take_longest_so_they_start_first():
    from archmatrix.core.plan import CellKey
    from archmatrix.options import Settings
    from archmatrix.run.order import expected_cell_s

    settings = Settings(arches=(), accels=("tcg", "kvm"), hosts=(), image_cache=Path("/c"), report_dir=Path("/r"))
    lab = HostSpec("lab_aarch64", "qemu+ext:///system?command=/x", "lab",
                   details={"timeout_factor": 4.0, "tcg_slowdown": lab_kind("aarch64").tcg_slowdown})
    here_ppc = expected_cell_s(CellKey("ppc64le", "tcg", "here"), settings)
    lab_aarch64 = expected_cell_s(CellKey("aarch64", "tcg", lab.label), settings, lab)
    lab_kvm = expected_cell_s(CellKey("aarch64", "kvm", lab.label), settings, lab)
    # This machine's slowest cell goes after every lab cell; inside the lab, TCG (80-120 s) before KVM (about 55).
    assert lab_aarch64 > lab_kvm > here_ppc
