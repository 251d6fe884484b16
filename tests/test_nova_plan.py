"""`archmatrix nova-plan`: archmatrix's own reading of Nova on recorded real hosts, and the pitfalls it lints.

Each expectation is what Nova 34 itself answered through the bridge on the same recordings
(scenarios/test_nova_agrees.py asks it again on every run of the suite).
"""

import json

import pytest

from archmatrix.cli.nova_plan import install_hint
from archmatrix.nova.plan import (
    OWN_READING,
    PropertyError,
    blocking,
    check_properties,
    choice_of,
    firmware_capabilities,
    plan_for_image,
    read_properties,
)
from archmatrix.nova.reading import own_decisions
from archmatrix.nova.render import plan_dict, render
from tests.helpers import FIXTURES, nova_host

X86 = nova_host("x86_64-debian12")  # this CI machine: QEMU 7.2 emulators of every arch, live-recorded
AARCH64 = nova_host("aarch64-kvm")
S390X = nova_host("s390x-kvm")
NO_AAVMF = {**X86.domain_capabilities,
            "qemu/aarch64/virt": (FIXTURES / "domcaps" / "aarch64-virt-qemu-no-firmware.xml").read_text()}
NOVA_EMULATION_JOB = {  # nova/virt/libvirt/driver.py _check_emulation_arch: the properties of Nova's CI job
    "aarch64": {"hw_emulation_architecture": "aarch64", "hw_firmware_type": "uefi", "hw_machine_type": "virt"},
    "ppc64le": {"hw_emulation_architecture": "ppc64le", "hw_machine_type": "pseries"},
    "s390x": {"hw_emulation_architecture": "s390x", "hw_machine_type": "s390-ccw-virtio", "hw_video_model": "virtio"},
}


def plan(properties, host=X86, virt_type="kvm", domcaps=None, cells=None):
    return plan_for_image(properties, host.capabilities, virt_type,
                          host.domain_capabilities if domcaps is None else domcaps, cells)


def codes(of):
    return [pitfall.code for pitfall in of.pitfalls]


def test_the_nova_emulation_jobs_images_need_no_change_to_boot_here():
    for arch, properties in NOVA_EMULATION_JOB.items():
        found = plan(properties, virt_type="qemu")
        assert found.guest_arch == arch and found.domain_type == "qemu" and not found.refused
        assert blocking(found) == [], found.pitfalls
    aarch64 = plan(NOVA_EMULATION_JOB["aarch64"])
    assert (aarch64.emulator, aarch64.machine_canonical, aarch64.cpu, aarch64.firmware) == (
        "/usr/bin/qemu-system-aarch64", "virt-7.2", "cortex-a57", "uefi")
    assert aarch64.firmware_detail == ("<os firmware='efi'>: libvirt selects among /usr/share/AAVMF/AAVMF_CODE.ms.fd, "
                                       "/usr/share/AAVMF/AAVMF_CODE.fd")
    # ... but a config drive would not attach: its CD-ROM is IDE, by the HOST's arch (fix c).
    assert aarch64.decisions.cdrom_bus == "ide" and codes(aarch64) == ["cdrom-bus-not-on-machine"]
    assert "IDE controllers are unsupported for this QEMU binary or machine type" in aarch64.pitfalls[0].problem
    assert aarch64.pitfalls[0].fix == "set hw_cdrom_bus=scsi"
    assert choice_of(aarch64).said == "Nova's plan: machine virt, cpu cortex-a57, firmware uefi"  # what a cell says
    assert choice_of(aarch64).uefi and choice_of(plan(NOVA_EMULATION_JOB["ppc64le"])).cpu_model == "POWER8"
    assert plan(NOVA_EMULATION_JOB["ppc64le"]).decisions.video == "vga"
    assert plan(NOVA_EMULATION_JOB["s390x"]).decisions.console == "console pty sclp"


def test_a_aarch64_host_gives_its_own_guests_host_passthrough():  # fix a
    for virt_type in ("kvm", "qemu"):
        decisions = own_decisions({"hw_firmware_type": "bios"}, AARCH64.capabilities, virt_type,
                                  AARCH64.domain_capabilities)
        assert decisions.cpu == "host-passthrough" and decisions.domain_type == virt_type
    assert own_decisions({}, X86.capabilities, "kvm", X86.domain_capabilities).cpu == "host-model"


def test_virt_type_qemu_keeps_the_default_cpu_mode_for_the_hosts_own_arch():  # fix b
    assert plan({}, virt_type="qemu").cpu == "host-model"
    assert plan({}, S390X, virt_type="qemu").cpu == "host-model"
    assert plan({"hw_emulation_architecture": "aarch64", "hw_machine_type": "virt",
                 "hw_firmware_type": "bios"}, AARCH64, virt_type="qemu").cpu == "host-passthrough"
    # Emulated: the mode goes; a model for aarch64 and ppc64le, no <cpu> for mipsel, topology only otherwise.
    emulated = {arch: plan({"hw_emulation_architecture": arch}).cpu for arch in ("aarch64", "ppc64le", "mipsel",
                                                                                 "s390x", "armv7l")}
    assert emulated == {"aarch64": "cortex-a57", "ppc64le": "POWER8", "mipsel": "none", "s390x": "topology only",
                        "armv7l": "topology only"}


@pytest.mark.parametrize(("properties", "host", "bus"), [
    ({"hw_emulation_architecture": "aarch64", "hw_machine_type": "virt"}, X86, "ide"),  # not by the emulated arch
    ({"hw_architecture": "aarch64"}, X86, "scsi"),
    ({"hw_emulation_architecture": "ppc64le", "hw_architecture": "ppc64le"}, X86, "scsi"),
    ({"hw_machine_type": "q35"}, X86, "sata"),
    ({"hw_emulation_architecture": "x86_64"}, AARCH64, "scsi"),  # the aarch64 host's
    ({"hw_emulation_architecture": "x86_64"}, S390X, "scsi"),
    ({"hw_architecture": "armv7l"}, AARCH64, "ide"),
    ({"hw_emulation_architecture": "aarch64", "hw_machine_type": "virt", "hw_cdrom_bus": "scsi"}, X86, "scsi"),
])
def test_the_cdrom_bus_follows_hw_architecture_or_the_host(properties, host, bus):  # fix c
    assert plan(properties, host).decisions.cdrom_bus == bus


def test_a_machine_no_arch_lists_is_refused_and_advice_never_names_one():  # fix d
    refused = plan({"hw_machine_type": "no-such-machine"})
    assert refused.decisions.refused_by == "InvalidMachineType"
    assert codes(refused) == ["nova-refuses"] and refused.pitfalls[0].fix == "set hw_machine_type=pc"
    assert "Supported machine" not in render(refused) and "REFUSED:      InvalidMachineType" in render(refused)
    # An x86_64 guest on an aarch64 host with no x86 emulator: 'pc' or 'q35' would be InvalidMachineType.
    x86_guest = plan({"hw_emulation_architecture": "x86_64"}, AARCH64)
    assert x86_guest.machine == "virt" and not x86_guest.refused  # the host arch's default: listed
    assert codes(x86_guest) == ["no-emulator", "machine-from-host-arch"]
    assert x86_guest.pitfalls[1].fix.startswith("install qemu-system-x86 on the host first")
    assert plan({"hw_emulation_architecture": "x86_64", "hw_machine_type": "q35"}, AARCH64).decisions.refused_by \
        == "InvalidMachineType"
    # No default machine for the image's arch: Nova checks None, and refuses it.
    assert plan({"hw_architecture": "mipsel"}).decisions.refused.startswith("InvalidMachineType: 'None'")


def test_every_machine_the_lint_advises_is_listed_for_the_guest_arch():  # fix d, for all arches and hosts
    for host in (X86, AARCH64, S390X):
        for arch in ("aarch64", "ppc64le", "s390x", "x86_64", "mipsel", "mips64el", "armv7l", "i686"):
            for pitfall in plan({"hw_emulation_architecture": arch, "hw_machine_type": "pc"}, host).pitfalls:
                if pitfall.fix.startswith("set hw_machine_type="):
                    advised = pitfall.fix.split("=", 1)[1].split(" ")[0]
                    assert advised in host.capabilities.guests[arch].machines, (host.name, arch, pitfall)
                    assert not plan({"hw_emulation_architecture": arch, "hw_machine_type": advised}, host).refused


def test_uefi_nova_checks_only_the_host_archs_domain_capabilities():  # fix e
    no_aavmf = plan(NOVA_EMULATION_JOB["aarch64"], domcaps=NO_AAVMF)
    assert no_aavmf.firmware == "uefi" and not no_aavmf.refused
    pitfall = no_aavmf.pitfalls[0]
    assert pitfall.code == "no-uefi-firmware" and "Nova does not refuse" in pitfall.problem
    assert "Nova may" not in pitfall.problem and "Unable to find any firmware to satisfy 'efi'" in pitfall.problem
    assert pitfall.fix == "install Debian's qemu-efi-aarch64 on the host and restart libvirtd"
    power = plan({"hw_emulation_architecture": "ppc64le", "hw_machine_type": "pseries", "hw_firmware_type": "uefi"})
    assert power.firmware == "uefi" and not power.refused and "no-uefi-firmware" in codes(power)
    assert "there is no UEFI firmware for ppc64le" in power.pitfalls[0].fix
    # The aarch64 host's recording has no TCG domain capabilities: with virt_type qemu, Nova sees no UEFI.
    refused = plan({}, AARCH64, virt_type="qemu")
    assert refused.decisions.refused.startswith("UEFINotSupported") and "hw_firmware_type=bios" not in \
        refused.pitfalls[0].fix  # libvirt: "ACPI requires UEFI on this architecture"
    # Domain capabilities not read: no refusal can be told, and the plan says so.
    unread = plan_for_image(NOVA_EMULATION_JOB["aarch64"], X86.capabilities, "kvm")
    assert unread.firmware == "uefi" and "not known here" in unread.firmware_detail


def test_aarch64_with_bios_is_refused_by_libvirt():
    found = plan({"hw_emulation_architecture": "aarch64", "hw_machine_type": "virt", "hw_firmware_type": "bios"})
    assert found.firmware == "bios" and "aarch64-without-uefi" in codes(found)
    assert "ACPI requires UEFI on this architecture" in found.pitfalls[0].problem and blocking(found)


def test_buses_nova_accepts_and_the_machine_lacks():
    s390x = plan({"hw_emulation_architecture": "s390x", "hw_machine_type": "s390-ccw-virtio", "hw_disk_bus": "sata"})
    assert codes(s390x)[0] == "disk-bus-not-on-machine" and blocking(s390x)
    assert "SATA is not supported with this QEMU binary" in s390x.pitfalls[0].problem
    virtio_cdrom = plan({"hw_cdrom_bus": "virtio"})
    assert codes(virtio_cdrom) == ["cdrom-bus-not-on-machine"] and "ejectable media" in virtio_cdrom.pitfalls[0].problem
    assert plan({"hw_disk_bus": "xen"}).decisions.refused.startswith("UnsupportedHardware: Requested hardware 'xen'")


def test_the_prefilters_traits():
    assert plan({"hw_emulation_architecture": "aarch64", "hw_machine_type": "virt",
                 "hw_cdrom_bus": "scsi"}).decisions.required_traits == ("COMPUTE_ARCH_AARCH64",
                                                                         "COMPUTE_STORAGE_BUS_SCSI")
    assert plan({"hw_architecture": "aarch64"}).decisions.required_traits == ("HW_ARCH_AARCH64",)
    mips64el = plan({"hw_emulation_architecture": "mips64el", "hw_machine_type": "malta", "hw_video_model": "vga"})
    assert mips64el.decisions.required_traits == ()  # COMPUTE_ARCH_MIPS64EL is not in os-traits: nothing at all
    assert codes(mips64el) == ["prefilter-requires-nothing"] and not blocking(mips64el)
    riscv = plan({"hw_emulation_architecture": "riscv64"})
    assert riscv.decisions.refused.startswith("ValueError") and riscv.decisions.required_traits == ()


def test_properties_from_openstack_json_or_key_value_lines_and_bad_ones_named():
    shown = json.dumps({"name": "cirros", "properties": {"hw_emulation_architecture": "s390x", "os_distro": "x"}})
    assert read_properties(shown, "image.json") == {"hw_emulation_architecture": "s390x"}
    assert read_properties("# comment\nhw_machine_type = virt\n", "f") == {"hw_machine_type": "virt"}
    with pytest.raises(PropertyError, match="f:1: 'hw_machine_type virt' is not KEY=VALUE"):
        read_properties("hw_machine_type virt", "f")
    with pytest.raises(PropertyError, match="Nova's architecture list has no riscv64"):
        check_properties({"hw_emulation_architecture": "riscv64"})
    with pytest.raises(PropertyError, match="image property 'hw_frobnicate' is not one the planner knows"):
        plan({"hw_frobnicate": "1"})
    with pytest.raises(PropertyError, match="hw_firmware_type='efi' is not a value Nova accepts; valid: bios, uefi"):
        check_properties({"hw_firmware_type": "efi"})


def test_a_trait_nova_would_report_though_no_guest_of_the_arch_booted():
    cell = {"arch": "mipsel", "accel": "tcg", "status": "fail", "reason": "no banner: timeout after 120 s"}
    found = plan({"hw_emulation_architecture": "mipsel"}, virt_type="qemu", cells={"tcg": cell})
    assert "trait-not-proven" in codes(found) and "COMPUTE_ARCH_MIPSEL" in found.pitfalls[-1].problem
    assert found.cpu == "none" and found.machine == "pc"  # the host arch's default
    fix = next(p.fix for p in found.pitfalls if p.code == "machine-from-host-arch")
    assert fix.startswith("set hw_machine_type=malta (Nova has no default for mipsel")
    proven = plan({"hw_emulation_architecture": "mipsel"}, virt_type="qemu", cells={"tcg": cell | {"status": "pass"}})
    assert "trait-not-proven" not in codes(proven)


def test_kvm_that_the_last_matrix_found_broken():
    kvm = {"arch": "x86_64", "accel": "kvm", "status": "unsupported",
           "reason": "x86_64-kvm unsupported on vm: KVM claimed-but-broken: a KVM guest printed nothing within 5 s"}
    found = plan({"hw_architecture": "x86_64"}, cells={"kvm": kvm})
    assert found.domain_type == "kvm" and codes(found) == ["kvm-not-proven"]
    assert "claimed-but-broken" in found.pitfalls[0].problem and "virt_type=qemu" in found.pitfalls[0].fix


def test_the_plan_says_who_answered():
    found = plan_for_image({}, X86.capabilities, "kvm", X86.domain_capabilities,
                           why=f"Nova 34.0.0 is not installed here; {install_hint('34.0.0')}")
    assert render(found).startswith(f"answered by:  {OWN_READING} (Nova 34.0.0 is not installed here; "
                                    "`archmatrix nova install` makes Nova's environment")
    shown = plan_dict(found)
    assert shown["answered_by"] == OWN_READING and shown["from_nova"] is False
    assert (shown["cpu"], shown["cdrom_bus"], shown["firmware"]) == ("host-model", "ide", "bios")
    assert install_hint("29.4.0") == ("`archmatrix nova install --nova-version 29.4.0` makes Nova's environment "
                                      "(about a minute, 400 MB)")


def test_firmware_capabilities_asks_libvirt_what_nova_and_the_lint_read():
    import libvirt

    asked = []

    class RecordedConnection:  # answers as this host's libvirt did, refuses what it has no answer for
        def getDomainCapabilities(self, emulator, arch, machine, virt_type, flags):
            asked.append(f"{virt_type}/{arch}/{machine or ''}")
            if asked[-1] not in X86.domain_capabilities:
                raise libvirt.libvirtError(f"the machine {machine!r} is not supported")
            return X86.domain_capabilities[asked[-1]]

    found = firmware_capabilities(RecordedConnection(), X86.capabilities, NOVA_EMULATION_JOB["aarch64"], "kvm")
    # The host arch's with its virt type (Nova's UEFI check: the default machine and the canonical aliases), and the
    # guest's machine with the guest's domain type.
    assert sorted(asked) == ["kvm/x86_64/pc", "kvm/x86_64/q35", "qemu/aarch64/virt"]
    assert plan_for_image(NOVA_EMULATION_JOB["aarch64"], X86.capabilities, "kvm", found).firmware_detail.endswith(
        "/usr/share/AAVMF/AAVMF_CODE.fd")
