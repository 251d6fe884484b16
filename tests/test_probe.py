"""The host probe's decisions: capabilities parsing and the KVM verdict."""

import dataclasses
import struct

import pytest

from archmatrix.core.capabilities import (
    KVM_BROKEN,
    KVM_NO_DEVICE,
    KVM_NOT_OFFERED,
    KVM_WORKS,
    kvm_offered_for,
    kvm_precondition,
)
from archmatrix.guest.observe import BANNER, LOGIN_PROMPT
from archmatrix.hosts.kvm_payload import payload_for
from archmatrix.hosts.kvm_probe import verdict_from
from tests.helpers import AARCH64_KVM_HOST, THIS_HOST, capabilities, recorded_observation


def test_this_host_offers_kvm_only_for_its_own_arches():
    host = capabilities(THIS_HOST)
    assert host.host_arch == "x86_64"
    offered = sorted(arch for arch, offer in host.guests.items() if "kvm" in offer.domain_emulators)
    assert offered == ["i686", "x86_64"]
    assert kvm_offered_for(host, "x86_64") is None
    assert "no KVM for s390x guests" in kvm_offered_for(host, "s390x")


def test_aliases_resolve_to_canonical_machines():
    host = capabilities(THIS_HOST)
    assert host.offer_for("aarch64").machines["virt"] == "virt-7.2"
    assert host.offer_for("x86_64").machines["q35"] == "pc-q35-7.2"
    assert host.offer_for("mipsel").machines["malta"] == "malta"


def test_no_dev_kvm_is_decided_without_a_boot(tmp_path):
    verdict = kvm_precondition(capabilities(THIS_HOST), dev_kvm=str(tmp_path / "kvm"))
    assert verdict.status == KVM_NO_DEVICE and "does not exist" in verdict.reason


def test_claimed_kvm_needs_a_probe_boot(tmp_path):
    device = tmp_path / "kvm"
    device.touch()
    assert kvm_precondition(capabilities(THIS_HOST), dev_kvm=str(device)) is None
    assert kvm_precondition(capabilities(AARCH64_KVM_HOST), dev_kvm=str(device)) is None


def test_host_without_kvm_domain_is_not_offered(tmp_path):
    device = tmp_path / "kvm"
    device.touch()
    host = capabilities(THIS_HOST)
    host.guests["x86_64"].domain_emulators.pop("kvm")
    verdict = kvm_precondition(host, dev_kvm=str(device))
    assert verdict.status == KVM_NOT_OFFERED


def test_recorded_hang_on_this_host_is_claimed_but_broken():
    # Recorded here: QEMU says KVM is enabled, the kernel never prints.
    observation = recorded_observation("kvm-probe-x86_64-claimed-but-broken")
    assert observation.qemu.kvm_enabled and observation.banner is None
    verdict = verdict_from(observation, 20, "")
    assert verdict.status == KVM_BROKEN
    assert "the kernel printed nothing" in verdict.reason and "within 20 s" in verdict.reason


def test_qemu_internal_error_is_part_of_the_reason():
    observation = recorded_observation("kvm-probe-x86_64-claimed-but-broken")
    verdict = verdict_from(observation, 20, "KVM internal error. Suberror: 1")
    assert verdict.reason.endswith("QEMU said: KVM internal error. Suberror: 1")


def test_libvirt_refusal_is_not_offered():
    observation = recorded_observation("kvm-probe-x86_64-claimed-but-broken")
    refused = type(observation).from_dict({**observation.to_dict(), "start_error": "the accel 'kvm' is not supported"})
    assert verdict_from(refused, 20, "").status == KVM_NOT_OFFERED


def test_a_kvm_guest_that_boots_works():
    observation = recorded_observation("aarch64-tcg")
    booted = dataclasses.replace(observation, qemu=dataclasses.replace(observation.qemu, kvm_enabled=True))
    assert verdict_from(booted, 20, "").status == KVM_WORKS


def test_a_silent_kvm_guest_is_broken_at_the_first_output_bound():
    observation = recorded_observation("kvm-probe-x86_64-claimed-but-broken")
    silent = type(observation).from_dict({**observation.to_dict(), "plan": {**observation.plan, "first_output_s": 5.0},
                                  "boot_failure": "no console output: timeout after 5 s", "console_tail": ""})
    verdict = verdict_from(silent, 20, "")
    assert verdict.status == KVM_BROKEN
    assert verdict.reason == ("/dev/kvm exists and libvirt offers <domain type='kvm'>, but a KVM guest printed "
                              "nothing within 5 s: the guest stopped before or in the kernel's decompressor")
    remote = verdict_from(silent, 20, "", host_is_local=False)
    assert remote.reason.startswith("libvirt offers <domain type='kvm'>, but")


def test_a_silent_quiet_kvm_guest_is_not_said_to_stop_in_its_decompressor():
    # A lab host's probe boots quiet: its silence says only that init never ran.
    observation = recorded_observation("kvm-probe-x86_64-claimed-but-broken")
    plan = {**observation.plan, "first_output_s": 20.0, "kernel_cmdline": "console=ttyAMA0 panic=-1 quiet"}
    silent = type(observation).from_dict({**observation.to_dict(), "plan": plan,
                                  "boot_failure": "no console output: timeout after 20 s", "console_tail": ""})
    verdict = verdict_from(silent, 80, "", host_is_local=False)
    assert verdict.status == KVM_BROKEN
    assert verdict.reason == ("libvirt offers <domain type='kvm'>, but a KVM guest printed nothing within 20 s: "
                              "the guest, its kernel booted quiet, never reached its init")


def test_a_silent_payload_is_said_never_to_have_run():
    observation = recorded_observation("kvm-probe-x86_64-claimed-but-broken")
    silent = type(observation).from_dict({**observation.to_dict(), "plan": {**observation.plan, "first_output_s": 1.0},
                                  "image": {"origin": "KVM probe payload"},
                                  "boot_failure": "no console output: timeout after 1 s", "console_tail": ""})
    verdict = verdict_from(silent, 20, "")
    assert verdict.status == KVM_BROKEN
    assert verdict.reason.endswith("printed nothing within 1 s: the payload, which prints first thing, never ran")


def test_a_payload_that_prints_under_kvm_works():
    observation = recorded_observation("aarch64-tcg")
    printed = dataclasses.replace(observation, qemu=dataclasses.replace(observation.qemu, kvm_enabled=True),
                                  image={"origin": "KVM probe payload"}, banner_s=0.41)
    verdict = verdict_from(printed, 20, "")
    assert verdict.status == KVM_WORKS and verdict.reason == "the KVM probe payload printed its banner in 0.41 s"


@pytest.mark.parametrize("arch", ["x86_64", "aarch64"])
def test_the_payload_prints_the_banner_and_prompt_the_probe_waits_for(arch):
    payload = payload_for(arch)
    assert len(payload) < 512
    match = BANNER.search(payload)
    assert match and match.group(1).decode() == arch and LOGIN_PROMPT.search(payload)


def test_the_x86_64_payload_is_a_multiboot_image_qemu_loads_at_1_mib():
    magic, flags, checksum, header, load, load_end, bss_end, entry = struct.unpack_from("<8I", payload_for("x86_64"))
    assert magic == 0x1BADB002 and (magic + flags + checksum) & 0xFFFFFFFF == 0 and flags & 0x10000
    assert header == load == 0x100000 and entry == load + 0x20 and load_end == bss_end == 0


def test_the_aarch64_payload_is_an_arm64_image_that_branches_past_its_header():
    payload = payload_for("aarch64")
    branch, _, text_offset, size = struct.unpack_from("<IIQQ", payload)
    assert payload[0x38:0x3C] == b"ARM\x64" and branch == 0x14000000 | (0x40 // 4)
    assert text_offset == 0x80000 and size == len(payload)


def test_no_payload_for_other_host_arches_they_probe_with_the_kernel():
    assert payload_for("ppc64le") is None and payload_for("s390x") is None
