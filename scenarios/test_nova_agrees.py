"""archmatrix's own reading of Nova agrees with Nova itself, field by field, on every recorded host.

Nova 34.0.0's own libvirt driver (through the bridge, in Nova's environment, installed here on first use) answers
a table of image properties on the recorded hosts of tests/fixtures/nova-hosts/ with virt_type kvm and qemu, in
ONE bridge process; archmatrix's own reading (archmatrix/nova/reading.py) answers the same from the same
capabilities and domain capabilities. Every field that differs must have a stated reason below, and every stated
reason must still match a difference.
"""

import time

import pytest

from archmatrix.nova.agreement import StatedReason, differences, judged
from archmatrix.nova.decisions import decisions_of
from archmatrix.nova.driver import NovaCase, ask_each
from archmatrix.nova.environment import nova_environment
from archmatrix.nova.plan import plan_from_nova
from archmatrix.nova.reading import own_decisions
from tests.helpers import FIXTURES, NOVA_HOSTS, NovaHost, nova_host

# The machine an image of each arch names when it names one (hw_machine_type).
MACHINES = {"aarch64": "virt", "ppc64le": "pseries", "s390x": "s390-ccw-virtio", "x86_64": "q35",
            "mipsel": "malta", "mips64el": "malta", "riscv64": "virt", "armv7l": "virt"}


def cases() -> dict[str, dict[str, str]]:
    table = {}
    for arch, machine in MACHINES.items():
        table[f"emu-{arch}"] = {"hw_emulation_architecture": arch}
        table[f"emu-{arch}-mt"] = {"hw_emulation_architecture": arch, "hw_machine_type": machine}
        table[f"emu-{arch}-uefi"] = {"hw_emulation_architecture": arch, "hw_firmware_type": "uefi"}
        table[f"emu-{arch}-mt-uefi"] = {"hw_emulation_architecture": arch, "hw_machine_type": machine,
                                        "hw_firmware_type": "uefi"}
    for arch in ("x86_64", "aarch64", "s390x", "ppc64le", "mipsel", "armv7l"):
        table[f"arch-{arch}"] = {"hw_architecture": arch}
    for arch in ("i686", "ppc64", "armv6"):  # armv6: Nova's name; libvirt's arch is armv6l
        table[f"emu-{arch}"] = {"hw_emulation_architecture": arch}
    table.update({
        "plain": {},
        "arch-aarch64-emu-x86_64": {"hw_architecture": "aarch64", "hw_emulation_architecture": "x86_64"},
        "arch-x86_64-emu-aarch64": {"hw_architecture": "x86_64", "hw_emulation_architecture": "aarch64",
                                    "hw_machine_type": "virt", "hw_firmware_type": "uefi"},
        "arch-aarch64-uefi": {"hw_architecture": "aarch64", "hw_firmware_type": "uefi"},
        "emu-aarch64-mt-bios": {"hw_emulation_architecture": "aarch64", "hw_machine_type": "virt",
                                "hw_firmware_type": "bios"},
        "machine-of-x86-for-aarch64": {"hw_emulation_architecture": "aarch64", "hw_machine_type": "pc"},
        "machine-of-ppc-for-s390x": {"hw_emulation_architecture": "s390x", "hw_machine_type": "pseries"},
        "machine-no-arch-has": {"hw_machine_type": "no-such-machine"},
        "machine-q35": {"hw_machine_type": "q35"},
        "cdrom-scsi-emu-aarch64": {"hw_emulation_architecture": "aarch64", "hw_machine_type": "virt",
                                   "hw_cdrom_bus": "scsi"},
        "cdrom-sata": {"hw_cdrom_bus": "sata"},
        "cdrom-ide-arch-aarch64": {"hw_architecture": "aarch64", "hw_cdrom_bus": "ide"},
        "cdrom-xen": {"hw_cdrom_bus": "xen"},
        "cdrom-virtio": {"hw_cdrom_bus": "virtio"},
        "disk-scsi": {"hw_disk_bus": "scsi"},
        "disk-sata-emu-s390x": {"hw_emulation_architecture": "s390x", "hw_machine_type": "s390-ccw-virtio",
                                "hw_disk_bus": "sata"},
        "disk-uml": {"hw_disk_bus": "uml"},
        "disk-ide-q35": {"hw_machine_type": "q35", "hw_disk_bus": "ide"},
        "video-virtio-emu-s390x": {"hw_emulation_architecture": "s390x", "hw_machine_type": "s390-ccw-virtio",
                                   "hw_video_model": "virtio"},
        "video-vga": {"hw_video_model": "vga"},
        "video-qxl-emu-aarch64": {"hw_emulation_architecture": "aarch64", "hw_machine_type": "virt",
                                  "hw_video_model": "qxl"},
        "video-none-emu-ppc64le": {"hw_emulation_architecture": "ppc64le", "hw_machine_type": "pseries",
                                   "hw_video_model": "none"},
    })
    return table


CASES = cases()
VIRT_TYPES = ("kvm", "qemu")
# Where the own reading may differ from Nova: (pattern over "host/virt_type/case", field) and why.
STATED: list[StatedReason] = []


def hosts() -> list[NovaHost]:
    found = [nova_host(name) for name in NOVA_HOSTS]
    # This host again, with the aarch64 virt domain capabilities of the same QEMU without AAVMF installed: Nova
    # decides the same (it reads only the host arch's domain capabilities for UEFI); the lint sees the difference.
    x86 = found[0]
    no_aavmf = (FIXTURES / "domcaps" / "aarch64-virt-qemu-no-firmware.xml").read_text()
    found.append(NovaHost(f"{x86.name}-no-aavmf", x86.capabilities_xml,
                          {**x86.domain_capabilities, "qemu/aarch64/virt": no_aavmf}, x86.host_arch, x86.extra))
    return found


@pytest.fixture(scope="module")
def answers():
    """Nova's answer to every case on every host and virt type, from one bridge process."""
    environment = nova_environment().ensure(print)
    table = [NovaCase(case_id, properties) for case_id, properties in CASES.items()]
    runs = [(host, virt_type) for host in hosts() for virt_type in VIRT_TYPES]
    started = time.monotonic()
    found = ask_each(environment, [(host.bridge_host(), {"libvirt.virt_type": virt_type}, table)
                                   for host, virt_type in runs])
    wall_s = time.monotonic() - started
    cases = len(runs) * len(CASES)
    print(f"\nnova {found[0].nova_version}: {len(CASES)} cases x {len(runs)} host runs = {cases} answers from one "
          f"bridge process in {wall_s:.1f} s (imports {found[0].imports_ms:.0f} ms; "
          f"{wall_s * 1000 / cases:.1f} ms per answer)")
    return {(host.name, virt_type): (host, run) for (host, virt_type), run in zip(runs, found, strict=True)}


def test_the_table_covers_what_nova_plan_is_asked(answers):
    assert len(CASES) >= 30 and {host for host, _ in answers} >= set(NOVA_HOSTS)
    for (name, virt_type), (host, run) in answers.items():
        assert run.virt_type == virt_type and run.host_arch == host.host_arch
        errors = {case_id: answer.error for case_id, answer in run.answers.items() if answer.error}
        assert not errors, f"{name}/{virt_type}: the bridge could not complete: {errors}"


def test_the_own_reading_agrees_with_nova_on_every_field(answers):
    found = []
    for (name, virt_type), (host, run) in answers.items():
        for case_id, properties in CASES.items():
            nova = decisions_of(run.answers[case_id])
            own = own_decisions(properties, host.capabilities, virt_type, host.domain_capabilities)
            found += differences(f"{name}/{virt_type}/{case_id}", nova, own)
    unexplained, stale = judged(found, STATED)
    assert not unexplained, "differences without a stated reason:\n" + "\n".join(map(str, unexplained))
    assert not stale, "stated reasons that match no difference any more:\n" + "\n".join(
        f"{reason.pattern} {reason.field}: {reason.reason}" for reason in stale)


def decided(answers, host: str, virt_type: str, case_id: str):
    return decisions_of(answers[host, virt_type][1].answers[case_id])


def test_nova_34s_own_choices_that_nova_plan_once_got_wrong(answers):
    # (a) The host's own arch on aarch64, cpu_mode unset: host-passthrough (there is no host-model for aarch64).
    assert decided(answers, "aarch64-kvm", "kvm", "plain").cpu == "host-passthrough"
    # (b) virt_type qemu, the host's own arch: the same default as kvm, not "none".
    assert decided(answers, "x86_64-debian12", "qemu", "plain").cpu == "host-model"
    assert decided(answers, "s390x-kvm", "qemu", "plain").cpu == "host-model"
    # (c) The CD-ROM bus follows hw_architecture or the HOST, never hw_emulation_architecture.
    for virt_type in VIRT_TYPES:
        assert decided(answers, "x86_64-debian12", virt_type, "emu-aarch64-mt").cdrom_bus == "ide"
        assert decided(answers, "x86_64-debian12", virt_type, "arch-aarch64").cdrom_bus == "scsi"
        assert decided(answers, "x86_64-debian12", virt_type, "machine-q35").cdrom_bus == "sata"
        assert decided(answers, "aarch64-kvm", "kvm", "emu-x86_64").cdrom_bus == "scsi"
    # (d) A machine no arch of the host lists: InvalidMachineType before any XML, on every host.
    for host, virt_type in answers:
        assert decided(answers, host, virt_type, "machine-no-arch-has").refused_by == "InvalidMachineType"
    assert decided(answers, "aarch64-kvm", "kvm", "emu-x86_64-mt").refused_by == "InvalidMachineType"  # q35
    # (e) UEFI: only the host arch's domain capabilities count; no refusal for missing AAVMF or for Power.
    for virt_type in VIRT_TYPES:
        for host in ("x86_64-debian12", "x86_64-debian12-no-aavmf"):
            assert decided(answers, host, virt_type, "emu-aarch64-mt").firmware == "uefi"
        assert decided(answers, "x86_64-debian12", virt_type, "emu-ppc64le-mt-uefi").firmware == "uefi"
    assert decided(answers, "aarch64-kvm", "qemu", "plain").refused_by == "UEFINotSupported"  # no TCG domcaps


def test_the_lint_on_novas_own_decisions(answers):
    host, run = answers["x86_64-debian12-no-aavmf", "qemu"]
    properties = CASES["emu-aarch64-mt"]
    plan = plan_from_nova(run.answers["emu-aarch64-mt"], run.nova_version, "recorded host", properties,
                          host.capabilities, "qemu", host.domain_capabilities)
    codes = [pitfall.code for pitfall in plan.pitfalls]
    assert codes == ["no-uefi-firmware", "cdrom-bus-not-on-machine"], plan.pitfalls
    assert "Nova does not refuse" in plan.pitfalls[0].problem and "Nova may" not in plan.pitfalls[0].problem
    assert "IDE controllers are unsupported" in plan.pitfalls[1].problem and plan.pitfalls[1].fix == \
        "set hw_cdrom_bus=scsi"
    host, run = answers["aarch64-kvm", "kvm"]
    refused = plan_from_nova(run.answers["emu-x86_64-mt"], run.nova_version, "recorded host",
                             CASES["emu-x86_64-mt"], host.capabilities, "kvm", host.domain_capabilities)
    assert refused.pitfalls[0].code == "nova-refuses" and "InvalidMachineType" in refused.pitfalls[0].problem
    assert refused.pitfalls[0].fix.startswith("install qemu-system-x86 on the host first")
