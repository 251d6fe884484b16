"""The checks, judged on real recorded boots; faults are the recorded facts changed."""

import dataclasses

import pytest

from archmatrix.core.arches import ARCHES
from archmatrix.core.checks import CHECKS, judge
from archmatrix.core.observation import BootProgress
from archmatrix.core.plan import make_plan
from tests.helpers import THIS_HOST, capabilities, recorded_observation


def plan_for(arch, **changes):
    plan = make_plan(ARCHES[arch], "tcg", capabilities(THIS_HOST), None)
    return dataclasses.replace(plan, **changes)


def changed(observation, **changes):
    return type(observation).from_dict({**observation.to_dict(), **changes})


def failing(plan, observation):
    return [check for check in CHECKS if not judge(check, plan, observation).passed]


@pytest.mark.parametrize("arch", ["aarch64", "s390x"])
def test_recorded_real_boots_pass_every_check(arch):
    assert failing(plan_for(arch), recorded_observation(f"{arch}-tcg")) == []


def test_other_binary_fails_only_binary():
    seen = changed(recorded_observation("aarch64-tcg"), live_emulator="/opt/other/qemu-system-aarch64",
                   live_emulator_real="/opt/other/qemu-system-aarch64", process_exe="/opt/other/qemu-system-aarch64")
    assert failing(plan_for("aarch64"), seen) == ["binary"]
    assert "/opt/other/qemu-system-aarch64" in judge("binary", plan_for("aarch64"), seen).seen


def test_symlinked_emulator_is_the_same_binary():
    # Debian: qemu-system-ppc64le -> qemu-system-ppc64. Resolved paths equal: a pass.
    seen = changed(recorded_observation("aarch64-tcg"), live_emulator="/usr/bin/qemu-system-aarch64-link")
    assert judge("binary", plan_for("aarch64"), seen).passed


def test_remote_host_checks_only_the_xml():
    note = "libvirt host is remote: only the domain XML's <emulator> was checked"
    seen = changed(recorded_observation("aarch64-tcg"), live_emulator_real=None, expected_emulator_real=None,
                   process_exe=None, process_note=note)
    verdict = judge("binary", plan_for("aarch64"), seen)
    assert verdict.passed and "only the domain XML" in verdict.note


def test_wrong_machine_family_fails_only_machine():
    seen = changed(recorded_observation("aarch64-tcg"), live_machine="sbsa-ref",
                   qemu=dataclasses.replace(recorded_observation("aarch64-tcg").qemu, machine_type="sbsa-ref-machine"))
    assert failing(plan_for("aarch64"), seen) == ["machine"]


def test_kvm_on_in_a_tcg_cell_fails_only_accelerator():
    recorded = recorded_observation("s390x-tcg")
    seen = changed(recorded, qemu=dataclasses.replace(recorded.qemu, kvm_enabled=True))
    assert failing(plan_for("s390x"), seen) == ["accelerator"]


def test_other_arch_inside_fails_boot_and_says_what_it_saw():
    seen = changed(recorded_observation("aarch64-tcg"),
                   banner={"arch": "x86_64", "release": "6.1.0-56-arm64", "endian": "little"})
    verdict = judge("boot", plan_for("aarch64"), seen)
    assert failing(plan_for("aarch64"), seen) == ["boot"] and "arch=x86_64" in verdict.seen


def test_big_endian_where_little_expected_fails_boot():
    seen = changed(recorded_observation("aarch64-tcg"),
                   banner=dataclasses.replace(recorded_observation("aarch64-tcg").banner, endian="big"))
    assert failing(plan_for("aarch64"), seen) == ["boot"]


def test_wrong_console_fails_console():
    seen = changed(recorded_observation("s390x-tcg"), kernel_consoles=["ttyS0"])
    assert failing(plan_for("s390x"), seen) == ["console"]


def test_failure_message_has_expected_seen_plan_and_log():
    seen = changed(recorded_observation("s390x-tcg"), kernel_consoles=["ttyS0"])
    plan = plan_for("s390x")
    message = judge("console", plan, seen).explain(plan, seen)
    for part in ("expected: kernel enables console [ttysclp0]", "seen:     consoles the kernel enabled: ttyS0",
                 "plan s390x-tcg: domain type qemu", "console log: /tmp/archmatrix-run-RUNID/s390x-tcg/console.log"):
        assert part in message


def test_refused_domain_fails_every_check_with_libvirts_words():
    seen = changed(recorded_observation("aarch64-tcg"), start_error="unsupported configuration: foo",
                   banner=None, login_s=None, kernel_consoles=[])
    for check in CHECKS:
        verdict = judge(check, plan_for("aarch64"), seen)
        assert not verdict.passed


def test_ssh_checks_pass_on_recorded_boots_and_name_what_they_saw():
    seen = recorded_observation("aarch64-tcg")
    assert "answered" in judge("ssh", plan_for("aarch64"), seen).seen
    assert "cortex-a57-arm-cpu" in judge("guest-arch", plan_for("aarch64"), seen).seen
    assert "matches" in judge("network", plan_for("aarch64"), seen).seen


def test_guest_that_never_answered_ssh_fails_the_three_ssh_checks_only():
    error = "SSH to guest g (host vm, 127.0.0.1:1) not tried: the guest said: ARCHMATRIX-NET off (archmatrix.net=off)"
    seen = changed(recorded_observation("aarch64-tcg"), ssh={"port": 1, "via": "loopback", "error": error},
                   guest_arch=None, network=None)
    assert failing(plan_for("aarch64"), seen) == ["ssh", "guest-arch", "network"]
    assert "ARCHMATRIX-NET off" in judge("ssh", plan_for("aarch64"), seen).seen


def test_other_arch_over_ssh_fails_only_guest_arch():
    recorded = recorded_observation("aarch64-tcg")
    seen = changed(recorded, guest_arch=dataclasses.replace(recorded.guest_arch, uname_m="x86_64"))
    assert failing(plan_for("aarch64"), seen) == ["guest-arch"]


def test_other_cpu_in_cpuinfo_fails_only_guest_arch():
    recorded = recorded_observation("aarch64-tcg")
    cpuinfo = recorded.guest_arch.cpuinfo.replace("0xd07", "0xd08")  # a Cortex-A72's part number
    seen = changed(recorded, guest_arch=dataclasses.replace(recorded.guest_arch, cpuinfo=cpuinfo))
    assert failing(plan_for("aarch64"), seen) == ["guest-arch"]
    assert "does not show QEMU's CPU cortex-a57-arm-cpu" in judge("guest-arch", plan_for("aarch64"), seen).seen


def test_qemu_building_another_cpu_fails_only_guest_arch():
    recorded = recorded_observation("aarch64-tcg")
    seen = changed(recorded, qemu=dataclasses.replace(recorded.qemu, cpu_type="cortex-a72-arm-cpu"))
    assert failing(plan_for("aarch64"), seen) == ["guest-arch"]


def test_checksum_mismatch_fails_only_network():
    recorded = recorded_observation("s390x-tcg")
    seen = changed(recorded, network=dataclasses.replace(recorded.network, seen_sha256="0" * 64))
    assert failing(plan_for("s390x"), seen) == ["network"]


def test_a_users_image_without_banner_is_judged_by_its_kernels_lines():
    from archmatrix.core.kernel_evidence import kernel_evidence
    from tests.test_kernel_evidence import console

    plan = plan_for("aarch64", success_pattern="Select a language")
    own = changed(recorded_observation("aarch64-tcg"), banner=None,
                  kernel_evidence=kernel_evidence(console("aarch64-tcg")))
    verdict = judge("boot", plan, own)
    assert verdict.passed and "from the kernel's own lines: an arm64 kernel" in verdict.seen
    other = changed(own, kernel_evidence=kernel_evidence(console("mipsel-tcg")))
    assert not judge("boot", plan, other).passed
    unseen = changed(own, login_s=None, boot_failure="success pattern 'Select a language' not seen: timeout after 9 s")
    assert judge("boot", plan, unseen).seen == "success pattern 'Select a language' not seen: timeout after 9 s"


def test_the_plans_cpu_model_is_matched_against_qemus_cpu_type():
    from archmatrix.core.cpuinfo import built_as_planned

    assert built_as_planned("power8_v2.0-powerpc64-cpu", "POWER8")
    assert built_as_planned("cortex-a57-arm-cpu", "cortex-a57")
    assert not built_as_planned("cortex-a57-arm-cpu", "cortex-a5")  # a prefix of another model is not it
    assert not built_as_planned(None, "cortex-a57") and built_as_planned("qemu-s390x-cpu", None)


def _bound_ran_out(observation, still_printing: bool):
    """The recorded boot as if its bound had run out before the login prompt, the guest printing or silent."""
    progress = {"bound_s": 480.0, "window_s": 60.0, "console_bytes": 40000, "bytes_in_window": 900 if still_printing
                else 0, "last_output_s": 479.5 if still_printing else 12.0, "quiet_s": 0.5 if still_printing else 468.0,
                "kernel_time_s": 166.2}
    said = BootProgress(**progress).said()
    return changed(observation, login_s=None, banner=None, banner_s=None, kernel_consoles=[], ssh=None,
                   guest_arch=None, network=None, boot_progress=progress,
                   boot_failure=f"no banner: timeout after 480 s; {said}")


def test_a_guest_still_printing_when_its_bound_ran_out_is_inconclusive_not_failed():
    # The aarch64 TCG cell inside the aarch64 lab host: the kernel's lines up to 166 s of its time at the 480 s
    # bound. Only what needed the finished boot is inconclusive; what the running domain showed is judged.
    plan = plan_for("aarch64")
    seen = _bound_ran_out(recorded_observation("aarch64-tcg"), still_printing=True)
    verdicts = {check: judge(check, plan, seen) for check in CHECKS}
    assert {check: v.outcome for check, v in verdicts.items()} == {
        "binary": "pass", "machine": "pass", "accelerator": "pass", "console": "inconclusive", "boot": "inconclusive",
        "ssh": "inconclusive", "guest-arch": "inconclusive", "network": "inconclusive"}
    boot = verdicts["boot"]
    assert boot.seen.startswith("inconclusive: no banner: timeout after 480 s; the guest was still printing when its "
                                "480 s bound ran out: 900 bytes in its last 60.0 s")
    assert "kernel time 166.20 s" in boot.seen and not boot.passed
    assert boot.explain(plan, seen).startswith("boot check of aarch64-tcg was inconclusive")


def test_a_guest_that_had_stopped_printing_when_its_bound_ran_out_fails_saying_so():
    plan = plan_for("aarch64")
    seen = _bound_ran_out(recorded_observation("aarch64-tcg"), still_printing=False)
    assert {check: judge(check, plan, seen).outcome for check in ("console", "boot", "ssh")} == {
        "console": "fail", "boot": "fail", "ssh": "fail"}
    assert judge("boot", plan, seen).seen == ("no banner: timeout after 480 s; the guest had stopped printing 468.0 s "
                                              "before its 480 s bound ran out (nothing in its last 60.0 s; its last "
                                              "output 12.00 s after the domain started, kernel time 166.20 s)")


def test_a_console_enabled_before_the_bound_ran_out_passes_though_the_boot_is_inconclusive():
    recorded = recorded_observation("aarch64-tcg")
    seen = changed(_bound_ran_out(recorded, still_printing=True), kernel_consoles=recorded.kernel_consoles)
    assert judge("console", plan_for("aarch64"), seen).outcome == "pass"
