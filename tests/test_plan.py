"""Guest-arch-driven planning against recorded capabilities of three kinds of host."""

import pytest

from archmatrix.core.arches import ARCHES
from archmatrix.core.capabilities import KVM_BROKEN, KVM_WORKS, KvmVerdict
from archmatrix.core.plan import CellUnsupported, PlanError, make_plan
from archmatrix.core.timeouts import Timeouts
from tests.helpers import AARCH64_KVM_HOST, S390X_KVM_HOST, THIS_HOST, capabilities

WORKS = KvmVerdict(KVM_WORKS, "a KVM guest reached its banner")
BROKEN = KvmVerdict(KVM_BROKEN, "the kernel printed nothing")


@pytest.mark.parametrize(
    "arch, emulator, canonical",
    [
        ("aarch64", "/usr/bin/qemu-system-aarch64", "virt-7.2"),
        ("ppc64le", "/usr/bin/qemu-system-ppc64le", "pseries-7.2"),
        ("s390x", "/usr/bin/qemu-system-s390x", "s390-ccw-virtio-7.2"),
        ("mips64el", "/usr/bin/qemu-system-mips64el", "malta"),
        ("x86_64", "/usr/bin/qemu-system-x86_64", "pc-q35-7.2"),
    ],
)
def test_emulator_and_machine_come_from_the_guest_arch(arch, emulator, canonical):
    plan = make_plan(ARCHES[arch], "tcg", capabilities(THIS_HOST), None)
    assert (plan.domain_type, plan.emulator, plan.machine_canonical) == ("qemu", emulator, canonical)
    assert plan.cpu_model == ARCHES[arch].tcg_cpu


def test_foreign_arch_kvm_is_unsupported_with_libvirts_reason():
    with pytest.raises(CellUnsupported, match="libvirt offers no KVM for aarch64 guests on this x86_64 host"):
        make_plan(ARCHES["aarch64"], "kvm", capabilities(THIS_HOST), WORKS)


def test_native_kvm_needs_the_probe_to_pass():
    host = capabilities(THIS_HOST)
    with pytest.raises(CellUnsupported, match="KVM claimed-but-broken: the kernel printed nothing"):
        make_plan(ARCHES["x86_64"], "kvm", host, BROKEN)
    plan = make_plan(ARCHES["x86_64"], "kvm", host, WORKS)
    assert plan.domain_type == "kvm" and plan.cpu_model is None


def test_on_an_aarch64_host_aarch64_is_native_and_x86_64_is_not_there():
    host = capabilities(AARCH64_KVM_HOST)
    plan = make_plan(ARCHES["aarch64"], "kvm", host, WORKS)
    assert (plan.domain_type, plan.emulator, plan.machine_canonical) == (
        "kvm", "/usr/bin/qemu-system-aarch64", "virt-10.0")
    with pytest.raises(CellUnsupported, match="install the Debian package qemu-system-x86"):
        make_plan(ARCHES["x86_64"], "tcg", host, None)


def test_on_an_s390x_host_s390x_kvm_is_planned():
    plan = make_plan(ARCHES["s390x"], "kvm", capabilities(S390X_KVM_HOST), WORKS)
    assert plan.machine_canonical == "s390-ccw-virtio-10.0" and plan.domain_type == "kvm"


def test_a_machine_of_another_arch_is_rejected_with_this_emulators_choices():
    # Nova accepts a machine type that exists for any arch; we check the guest's emulator.
    host = capabilities(THIS_HOST)
    assert "pseries" in host.offer_for("ppc64le").machines
    with pytest.raises(PlanError) as error:
        make_plan(ARCHES["aarch64"], "tcg", host, None, machine="pseries")
    message = str(error.value)
    assert "'pseries'" in message and "qemu-system-aarch64" in message and "virt-7.2" in message


def test_a_requested_machine_becomes_the_expected_family():
    plan = make_plan(ARCHES["x86_64"], "tcg", capabilities(THIS_HOST), None, machine="pc")
    assert plan.machine == plan.machine_family == "pc" and plan.machine_canonical.startswith("pc-i440fx-")


def test_timeouts_scale_with_the_factor():
    host = capabilities(THIS_HOST)
    base = make_plan(ARCHES["s390x"], "tcg", host, None).timeout_s
    assert make_plan(ARCHES["s390x"], "tcg", host, None, timeouts=Timeouts(2.5)).timeout_s == base * 2.5


def test_a_disk_boot_takes_uefi_where_our_disk_needs_it_and_the_machines_firmware_elsewhere():
    host = capabilities(THIS_HOST)
    firmware = {arch: make_plan(ARCHES[arch], "tcg", host, None, boot="disk").firmware
                for arch in ("aarch64", "x86_64", "ppc64le", "s390x")}
    assert firmware == {"aarch64": "efi", "x86_64": "efi", "ppc64le": None, "s390x": None}
    # A user's disk, no properties: Nova's defaults (UEFI forced for aarch64 only).
    assert make_plan(ARCHES["x86_64"], "tcg", host, None, boot="disk", user_image=True).firmware is None
    assert make_plan(ARCHES["aarch64"], "tcg", host, None, boot="disk", user_image=True).firmware == "efi"


def test_an_arch_without_a_firmware_disk_is_unsupported_for_a_disk_boot():
    with pytest.raises(CellUnsupported, match="no built-in firmware disk for mipsel"):
        make_plan(ARCHES["mipsel"], "tcg", capabilities(THIS_HOST), None, boot="disk")


def test_properties_that_make_nova_boot_our_uefi_disk_with_bios_name_the_property():
    from archmatrix.nova.plan import choice_of, plan_for_image

    host = capabilities(THIS_HOST)
    nova = plan_for_image({"hw_architecture": "x86_64"}, host, "qemu")
    with pytest.raises(PlanError, match="the built-in x86_64 disk boots through UEFI only.*hw_firmware_type=uefi"):
        make_plan(ARCHES["x86_64"], "tcg", host, None, boot="disk", nova=choice_of(nova))
