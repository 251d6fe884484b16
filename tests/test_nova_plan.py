"""`archmatrix nova-plan`: Nova's decisions for image properties, on recorded real capabilities; each pitfall shown."""

import json

import pytest

from archmatrix.nova.plan import PropertyError, plan_for_image, read_properties, render
from tests.helpers import AARCH64_KVM_HOST, FIXTURES, THIS_HOST, capabilities

NO_FIRMWARE = (FIXTURES / "domcaps" / "aarch64-virt-qemu-no-firmware.xml").read_text()
AAVMF = (FIXTURES / "domcaps" / "aarch64-virt-qemu-aavmf.xml").read_text()
HERE = capabilities(THIS_HOST)  # x86_64, Debian 12: QEMU 7.2 emulators of every arch


def codes(plan):
    return [pitfall.code for pitfall in plan.pitfalls]


def test_the_nova_emulation_jobs_aarch64_image_plans_cleanly_with_firmware_installed():
    props = {"hw_emulation_architecture": "aarch64", "hw_firmware_type": "uefi", "hw_machine_type": "virt"}
    plan = plan_for_image(props, HERE, "kvm", AAVMF)
    assert (plan.domain_type, plan.emulator, plan.machine_resolved, plan.cpu) == (
        "qemu", "/usr/bin/qemu-system-aarch64", "virt-7.2", "cortex-a57")
    assert plan.firmware == "uefi: /usr/share/AAVMF/AAVMF_CODE.ms.fd, /usr/share/AAVMF/AAVMF_CODE.fd"
    assert plan.trait == "COMPUTE_ARCH_AARCH64" and plan.pitfalls == []


def test_emulation_arch_without_machine_type_gets_the_host_archs_machine():
    plan = plan_for_image({"hw_emulation_architecture": "aarch64", "hw_firmware_type": "uefi"}, HERE, "kvm", AAVMF)
    assert plan.machine == "pc" and "machine-from-host-arch" in codes(plan)
    assert "set hw_machine_type=virt" in render(plan)
    assert "machine-of-another-arch" in codes(plan)  # and pc is an x86 machine: libvirt refuses it late


def test_the_blueprints_example_an_x86_64_guest_on_an_aarch64_host():
    aarch64_host = capabilities(AARCH64_KVM_HOST)
    plan = plan_for_image({"hw_emulation_architecture": "x86_64"}, aarch64_host, "kvm")
    assert plan.domain_type == "qemu" and plan.machine == "virt"  # aarch64's default, not x86_64's
    pitfall = next(p for p in plan.pitfalls if p.code == "machine-from-host-arch")
    assert pitfall.fix == "set hw_machine_type=pc"
    assert "no-emulator" in codes(plan)  # that host lists no qemu-system-x86_64


def test_a_machine_type_of_another_arch_is_named_with_where_it_exists():
    plan = plan_for_image({"hw_emulation_architecture": "s390x", "hw_machine_type": "pseries"}, HERE)
    pitfall = next(p for p in plan.pitfalls if p.code == "machine-of-another-arch")
    assert "it exists here only for ppc64, ppc64le. Nova accepts it" in pitfall.problem
    assert pitfall.fix == "hw_machine_type=s390-ccw-virtio"


def test_aarch64_without_uefi_firmware_installed():
    plan = plan_for_image({"hw_emulation_architecture": "aarch64", "hw_machine_type": "virt"}, HERE, "kvm",
                          NO_FIRMWARE)
    assert codes(plan) == ["no-uefi-firmware"]
    assert "Nova forces UEFI for aarch64" in plan.firmware and "qemu-efi-aarch64" in plan.pitfalls[0].fix


def test_a_trait_nova_would_report_though_no_guest_of_the_arch_booted():
    cell = {"arch": "mipsel", "accel": "tcg", "status": "fail", "reason": "no banner: timeout after 120 s"}
    plan = plan_for_image({"hw_emulation_architecture": "mipsel"}, HERE, "qemu", matrix_cells={"tcg": cell})
    assert "trait-not-proven" in codes(plan) and "COMPUTE_ARCH_MIPSEL" in plan.pitfalls[-1].problem
    assert plan.cpu == "none (no <cpu> element)" and plan.machine == "pc"  # the host arch's default
    fix = next(p.fix for p in plan.pitfalls if p.code == "machine-from-host-arch")
    assert fix.startswith("set hw_machine_type=malta (Nova has no default for mipsel")
    proven = plan_for_image({"hw_emulation_architecture": "mipsel"}, HERE, "qemu",
                            matrix_cells={"tcg": cell | {"status": "pass"}})
    assert "trait-not-proven" not in codes(proven)


def test_properties_from_openstack_json_or_key_value_lines_and_bad_ones_named():
    shown = json.dumps({"name": "cirros", "properties": {"hw_emulation_architecture": "s390x", "os_distro": "x"}})
    assert read_properties(shown, "image.json") == {"hw_emulation_architecture": "s390x"}
    assert read_properties("# comment\nhw_machine_type = virt\n", "f") == {"hw_machine_type": "virt"}
    with pytest.raises(PropertyError, match="f:1: 'hw_machine_type virt' is not KEY=VALUE"):
        read_properties("hw_machine_type virt", "f")
    with pytest.raises(PropertyError, match="Nova's architecture list has no riscv64"):
        plan_for_image({"hw_emulation_architecture": "riscv64"}, HERE)
    with pytest.raises(PropertyError, match="image property 'hw_frobnicate' is not one the planner knows"):
        plan_for_image({"hw_frobnicate": "1"}, HERE)
    with pytest.raises(PropertyError, match="hw_firmware_type='efi' is not a value Nova accepts; valid: bios, uefi"):
        plan_for_image({"hw_firmware_type": "efi"}, HERE)


def test_kvm_that_the_last_matrix_found_broken():
    kvm = {"arch": "x86_64", "accel": "kvm", "status": "unsupported",
           "reason": "x86_64-kvm unsupported on vm: KVM claimed-but-broken: a KVM guest printed nothing within 5 s"}
    plan = plan_for_image({"hw_architecture": "x86_64"}, HERE, "kvm", matrix_cells={"kvm": kvm})
    assert plan.domain_type == "kvm" and codes(plan) == ["kvm-not-proven"]
    assert "claimed-but-broken" in plan.pitfalls[0].problem and "virt_type=qemu" in plan.pitfalls[0].fix
