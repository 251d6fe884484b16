"""The five checks of a cell, each a pure judgement of a plan and an observation."""

from __future__ import annotations

import os
from dataclasses import dataclass

from harness.observation import Observation
from harness.plan import Plan


@dataclass(frozen=True)
class Verdict:
    check: str
    passed: bool
    expected: str
    seen: str
    note: str = ""

    def explain(self, plan: Plan, observation: Observation) -> str:
        lines = [
            f"{self.check} check of {plan.cell_id} failed",
            f"  expected: {self.expected}",
            f"  seen:     {self.seen}",
        ]
        if self.note:
            lines.append(f"  note:     {self.note}")
        lines += [f"  {plan.summary()}", f"  console log: {observation.console_log}"]
        if observation.console_tail:
            tail = observation.console_tail.splitlines()[-10:]
            lines += ["  last console lines:"] + [f"    | {line}" for line in tail]
        return "\n".join(lines)


def _not_started(check: str, expected: str, observation: Observation) -> Verdict | None:
    if observation.start_error:
        return Verdict(check, False, expected, f"libvirt did not start the domain: {observation.start_error}")
    return None


def check_binary(plan: Plan, observation: Observation) -> Verdict:
    expected = f"{plan.expected_emulator_name} ({plan.expected_emulator})"
    refused = _not_started("binary", expected, observation)
    if refused:
        return refused
    live = observation.live_emulator
    problems = []
    if os.path.basename(plan.expected_emulator) != plan.expected_emulator_name:
        problems.append(f"libvirt lists {plan.expected_emulator} for {plan.arch}, not {plan.expected_emulator_name}")
    if observation.expected_emulator_real is None:
        # Remote host: paths cannot be resolved from here, names must agree.
        if live != plan.expected_emulator:
            problems.append(f"domain XML runs {live}")
        note = observation.process_note
    else:
        if observation.live_emulator_real != observation.expected_emulator_real:
            problems.append(f"domain XML runs {live} -> {observation.live_emulator_real}")
        if observation.process_exe != observation.expected_emulator_real:
            problems.append(f"QEMU process is {observation.process_exe} ({observation.process_note})")
        note = f"resolved: {observation.expected_emulator_real}"
    seen = "; ".join(problems) if problems else f"{live} (process {observation.process_exe or 'not checked'})"
    return Verdict("binary", not problems, expected, seen, note)


def check_machine(plan: Plan, observation: Observation) -> Verdict:
    expected = f"{plan.machine_family} -> {plan.machine_canonical} (QEMU type {plan.machine_canonical}-machine)"
    refused = _not_started("machine", expected, observation)
    if refused:
        return refused
    qemu_type = (observation.qemu or {}).get("machine_type") or f"unknown ({observation.qmp_error})"
    passed = observation.live_machine == plan.machine_canonical and qemu_type == f"{plan.machine_canonical}-machine"
    return Verdict("machine", passed, expected, f"domain XML {observation.live_machine}, QEMU {qemu_type}")


def check_accelerator(plan: Plan, observation: Observation) -> Verdict:
    want_kvm = plan.accel == "kvm"
    expected = f"domain type {plan.domain_type}, QEMU query-kvm enabled={want_kvm}"
    refused = _not_started("accelerator", expected, observation)
    if refused:
        return refused
    if observation.qemu is None:
        return Verdict("accelerator", False, expected, f"QEMU did not answer: {observation.qmp_error}")
    enabled = observation.qemu["kvm_enabled"]
    passed = observation.live_domain_type == plan.domain_type and enabled == want_kvm
    seen = f"domain type {observation.live_domain_type}, QEMU query-kvm enabled={enabled}"
    return Verdict("accelerator", passed, expected, seen)


def check_console(plan: Plan, observation: Observation) -> Verdict:
    # The kernel's own "console [X] enabled" line, read from the log the harness
    # follows, proves both that X was enabled and that its output reaches us.
    expected = f"kernel enables console [{plan.kernel_console}] and its output reaches {observation.console_log}"
    enabled = observation.kernel_consoles
    passed = plan.kernel_console in enabled
    return Verdict("console", passed, expected, f"consoles the kernel enabled: {', '.join(enabled) or 'none seen'}")


def check_boot(plan: Plan, observation: Observation) -> Verdict:
    release = observation.image.get("kernel_release")
    expected = f"login prompt; guest says arch={plan.uname_machine} endian={plan.byte_order}"
    if release:
        expected += f" release={release}"
    if observation.start_error:
        return Verdict("boot", False, expected, f"libvirt did not start the domain: {observation.start_error}")
    banner = observation.banner
    if banner is None:
        return Verdict("boot", False, expected, observation.boot_failure)
    problems = []
    if banner["arch"] != plan.uname_machine:
        problems.append(f"arch={banner['arch']}")
    if banner["endian"] != plan.byte_order:
        problems.append(f"endian={banner['endian']}")
    if release and banner["release"] != release:
        problems.append(f"release={banner['release']}")
    if not observation.booted:
        problems.append(observation.boot_failure)
    seen = "; ".join(problems) if problems else (
        f"login prompt after {observation.login_s:.2f} s; arch={banner['arch']} endian={banner['endian']} "
        f"release={banner['release']}"
    )
    return Verdict("boot", not problems, expected, seen)


JUDGES = {
    "binary": check_binary,
    "machine": check_machine,
    "accelerator": check_accelerator,
    "console": check_console,
    "boot": check_boot,
}


CHECKS = tuple(JUDGES)


def judge(check: str, plan: Plan, observation: Observation) -> Verdict:
    return JUDGES[check](plan, observation)
