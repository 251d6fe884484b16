"""The eight checks of a cell, each a pure judgement of a plan and an observation."""

from __future__ import annotations

import os
from dataclasses import dataclass

from archmatrix.core.cpuinfo import built_as_planned, shows, signature_for
from archmatrix.core.kernel_evidence import judge_arch
from archmatrix.core.observation import GuestArchFacts, NetworkFacts, Observation
from archmatrix.core.plan import Plan
from archmatrix.core.text import terminal_lines, terminal_text


@dataclass(frozen=True)
class Verdict:
    """A check's judgement. "inconclusive" when the boot's bound ran out while the guest was still printing: such a
    guest was neither shown to come up nor shown not to, and on a host slower than its bound allowed for a "fail"
    would read as "this arch cannot run here"."""

    check: str
    passed: bool
    expected: str
    seen: str
    note: str = ""
    inconclusive: bool = False  # not passed, and not failed either: the guest was still booting at its bound

    @property
    def outcome(self) -> str:
        return "pass" if self.passed else "inconclusive" if self.inconclusive else "fail"

    def explain(self, plan: Plan, observation: Observation) -> str:
        """What pytest prints for a failed check: guest text in it is shown (ESC as \\x1b), never sent raw."""
        ended = "was inconclusive" if self.inconclusive else "failed"
        lines = [f"{self.check} check of {plan.cell_id} {ended}"]
        for label, text in (("expected: ", self.expected), ("seen:     ", self.seen), ("note:     ", self.note)):
            if text:
                first, *more = terminal_lines(text)
                lines += [f"  {label}{first}"] + [f"            {line}" for line in more]
        lines += [f"  {terminal_text(plan.summary())}", f"  console log: {terminal_text(observation.console_log)}"]
        if observation.console_tail:
            tail = terminal_lines(observation.console_tail.rstrip("\n"))[-10:]
            lines += ["  last console lines:"] + [f"    | {line}" for line in tail]
        return "\n".join(lines)


def _still_booting(check: str, expected: str, observation: Observation) -> Verdict | None:
    """The verdict of a check the guest had not got to when its boot's bound ran out while it was still printing."""
    if observation.still_booting:
        return Verdict(check, False, expected, f"inconclusive: {observation.boot_failure}", inconclusive=True)
    return None


def _not_started(check: str, expected: str, observation: Observation) -> Verdict | None:
    if observation.nova and observation.nova.ended == "nova-refused":
        return Verdict(check, False, expected, f"Nova's libvirt driver refused the image: {observation.nova.detail}")
    if observation.start_error and observation.nova:
        remedy = f" ({observation.nova.remedy})" if observation.nova.remedy else ""
        return Verdict(check, False, expected, f"libvirt refused Nova's domain: {observation.start_error}{remedy}")
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
    qemu_type = observation.qemu.machine_type if observation.qemu else f"unknown ({observation.qmp_error})"
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
    enabled = observation.qemu.kvm_enabled
    passed = observation.live_domain_type == plan.domain_type and enabled == want_kvm
    seen = f"domain type {observation.live_domain_type}, QEMU query-kvm enabled={enabled}"
    return Verdict("accelerator", passed, expected, seen)


def check_console(plan: Plan, observation: Observation) -> Verdict:
    # The kernel's own "console [X] enabled" line, read from the log the harness
    # follows, proves both that X was enabled and that its output reaches us.
    expected = f"kernel enables console [{plan.kernel_console}] and its output reaches {observation.console_log}"
    refused = _not_started("console", expected, observation)
    if refused:
        return refused
    enabled = observation.kernel_consoles
    passed = plan.kernel_console in enabled
    if not passed and observation.still_booting:
        return _still_booting("console", expected, observation)
    return Verdict("console", passed, expected, f"consoles the kernel enabled: {', '.join(enabled) or 'none seen'}")


def check_boot(plan: Plan, observation: Observation) -> Verdict:
    release = observation.image.get("kernel_release")
    expected = f"login prompt; guest says arch={plan.uname_machine} endian={plan.byte_order}"
    if release:
        expected += f" release={release}"
    refused = _not_started("boot", expected, observation) or _still_booting("boot", expected, observation)
    if refused:
        return refused
    if plan.success_pattern is not None and observation.banner is None:
        return _boot_by_kernel_lines(plan, observation)
    banner = observation.banner
    if banner is None:
        return Verdict("boot", False, expected, observation.boot_failure)
    problems = []
    if banner.arch != plan.uname_machine:
        problems.append(f"arch={banner.arch}")
    if banner.endian != plan.byte_order:
        problems.append(f"endian={banner.endian}")
    if release and banner.release != release:
        problems.append(f"release={banner.release}")
    if not observation.booted:
        problems.append(observation.boot_failure)
    seen = "; ".join(problems) if problems else (
        f"login prompt after {observation.login_s:.2f} s; arch={banner.arch} endian={banner.endian} "
        f"release={banner.release}"
    )
    return Verdict("boot", not problems, expected, seen)


def _boot_by_kernel_lines(plan: Plan, observation: Observation) -> Verdict:
    """A user's image that prints no ARCHMATRIX banner: its success pattern, and its kernel's own lines for the arch."""
    expected = (f"the console shows {plan.success_pattern!r}; the guest's kernel shows on the console that it "
                f"runs {plan.arch}")
    if not observation.booted:
        return Verdict("boot", False, expected, observation.boot_failure)
    shown, said = judge_arch(plan.arch, observation.kernel_evidence or {})
    seen = f"success pattern after {observation.login_s:.2f} s; {said}"
    return Verdict("boot", shown, expected, seen,
                   note="the image prints no ARCHMATRIX banner: judged by its kernel's lines")


def _ssh_refused(check: str, expected: str, observation: Observation) -> Verdict | None:
    """The verdict when the guest was never reached over SSH: the checks that need SSH fail with its reason."""
    refused = _not_started(check, expected, observation) or _still_booting(check, expected, observation)
    if refused:
        return refused
    if observation.ssh is None:
        return Verdict(check, False, expected, f"SSH not tried: {observation.boot_failure or 'no login prompt'}")
    if observation.ssh.error:
        return Verdict(check, False, expected, observation.ssh.error)
    return None


def check_ssh(plan: Plan, observation: Observation) -> Verdict:
    expected = (f"the guest answers SSH (its port 22 forwarded to the host's loopback) within "
                f"{plan.ssh_timeout_s:.0f} s of its login prompt, with the host key it printed on its console")
    refused = _ssh_refused("ssh", expected, observation)
    if refused:
        return refused
    ssh = observation.ssh
    return Verdict("ssh", True, expected, f"answered {ssh.answered_s:.2f} s after the domain started "
                                          f"(port {ssh.port}, {ssh.via}, host key {ssh.host_key})")


def check_guest_arch(plan: Plan, observation: Observation) -> Verdict:
    cpu = plan.cpu_model or "the machine's default"
    expected = (f"over SSH: uname -m {plan.uname_machine}, {plan.byte_order} endian; QEMU built the plan's CPU "
                f"({cpu}) and /proc/cpuinfo shows it")
    if plan.accel == "kvm":
        expected = f"over SSH: uname -m {plan.uname_machine}, {plan.byte_order} endian (the CPU is the host's)"
    refused = _ssh_refused("guest-arch", expected, observation)
    if refused:
        return refused
    seen = observation.guest_arch or GuestArchFacts("", -1, "no answer over SSH", "unknown", "")
    problems = []
    if seen.uname_m != plan.uname_machine:
        problems.append(f"uname -m {seen.uname_m!r} {seen.uname_error}".strip())
    if seen.endian != plan.byte_order:
        problems.append(f"{seen.endian} endian")
    cpu_type = observation.qemu.cpu_type if observation.qemu else None
    if plan.accel == "kvm":
        cpu_seen = f"QEMU CPU {cpu_type} (the host's, not judged under KVM)"
    elif not built_as_planned(cpu_type, plan.cpu_model):
        problems.append(f"QEMU built CPU {cpu_type or 'unknown'} ({observation.qmp_error or 'query-cpus-fast'}), "
                        f"not {cpu}")
        cpu_seen = ""
    elif signature_for(cpu_type) is None:
        problems.append(f"no /proc/cpuinfo signature is known for QEMU CPU {cpu_type} (archmatrix/core/cpuinfo.py); "
                        f"the guest shows: {_first_lines(seen.cpuinfo)}")
        cpu_seen = ""
    else:
        line = shows(seen.cpuinfo, signature_for(cpu_type))
        if line is None:
            problems.append(f"/proc/cpuinfo does not show QEMU's CPU {cpu_type} ({signature_for(cpu_type)!r}): "
                            f"{_first_lines(seen.cpuinfo)}")
        cpu_seen = f"QEMU CPU {cpu_type}, /proc/cpuinfo {line!r}"
    seen_text = "; ".join(problems) if problems else f"uname -m {seen.uname_m}, {seen.endian} endian, {cpu_seen}"
    return Verdict("guest-arch", not problems, expected, seen_text)


def _first_lines(text: str) -> str:
    return "; ".join(line.strip() for line in text.splitlines()[:4] if line.strip()) or "nothing"


def check_network(plan: Plan, observation: Observation) -> Verdict:
    expected = ("the guest fetches a random file the harness serves on the host's loopback, through the one "
                "address its restricted user-mode network forwards there, and its sha256 matches")
    refused = _ssh_refused("network", expected, observation)
    if refused:
        return refused
    network = observation.network or NetworkFacts(error="the guest was not asked to fetch the file")
    if network.error:
        return Verdict("network", False, expected, network.error)
    passed = network.status == 0 and network.seen_sha256 == network.expected_sha256
    if passed:
        rate = network.bytes / 1024 / max(network.seconds, 1e-3)
        seen = (f"{network.bytes} bytes from {network.url} in {network.seconds:.2f} s ({rate:.0f} KiB/s), "
                f"sha256 {network.seen_sha256[:16]}... matches")
    else:
        seen = (f"exit {network.status}, sha256 {network.seen_sha256 or 'none'} (expected "
                f"{network.expected_sha256[:16]}...), {network.server_requests} request(s) reached the "
                f"server; {network.stderr or 'no error output'}")
    return Verdict("network", passed, expected, seen)


JUDGES = {
    "binary": check_binary,
    "machine": check_machine,
    "accelerator": check_accelerator,
    "console": check_console,
    "boot": check_boot,
    "ssh": check_ssh,
    "guest-arch": check_guest_arch,
    "network": check_network,
}

CHECKS = tuple(JUDGES)
SSH_CHECKS = ("ssh", "guest-arch", "network")  # judged over SSH inside the guest
DOMAIN_CHECKS = tuple(check for check in CHECKS if check not in SSH_CHECKS)  # what a boot alone shows


def judge(check: str, plan: Plan, observation: Observation) -> Verdict:
    return JUDGES[check](plan, observation)
