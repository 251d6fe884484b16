"""Planted faults: each real boot carries one fault, and the check that owns it must catch it.

These show the checks can fail. They boot real guests with one thing wrong
and assert which checks fail and which still pass.
"""

import dataclasses
import shutil
import tempfile
from pathlib import Path

import pytest

from archmatrix.core.arches import ARCHES
from archmatrix.core.checks import CHECKS, SSH_CHECKS, judge
from archmatrix.core.observation import Banner, Observation
from archmatrix.core.plan import Plan, make_plan
from archmatrix.guest.observe import boot_and_observe

FAULT_TIMEOUT_S = 8.0  # faults that hide the banner would otherwise wait the arch's full timeout (its banner: 1.4 s)


def faulty_plan(run, arch: str, fault: str, **changes) -> Plan:
    plan = make_plan(ARCHES[arch], "tcg", run.first_host().capabilities, None)
    return dataclasses.replace(plan, cell_id=f"fault-{fault}-{arch}", timeout_s=FAULT_TIMEOUT_S, **changes)


def boot(run, plan: Plan, image_arch: str | None = None) -> Observation:
    image = run.images.of(ARCHES[image_arch or plan.arch])
    host = run.first_host()
    return boot_and_observe(host.connection(), plan, image, host.site)


def failing(plan: Plan, observation: Observation) -> list[str]:
    return [check for check in CHECKS if not judge(check, plan, observation).passed]


@pytest.fixture
def stray_emulator():
    """A second copy of qemu-system-aarch64 outside /usr/bin, as a stray local build would be."""
    directory = Path(tempfile.mkdtemp(prefix="archmatrix-fault-", dir="/var/tmp"))
    directory.chmod(0o755)  # QEMU runs as libvirt-qemu and must reach it
    stray = directory / "qemu-system-aarch64"
    shutil.copy2("/usr/bin/qemu-system-aarch64", stray)
    yield stray
    shutil.rmtree(directory)


def test_fault_guest_started_with_another_emulator_fails_binary(archmatrix_run, stray_emulator):
    plan = faulty_plan(archmatrix_run, "aarch64", "binary", emulator=str(stray_emulator))
    observation = boot(archmatrix_run, plan)
    assert failing(plan, observation) == ["binary"]
    assert str(stray_emulator) in judge("binary", plan, observation).seen


def test_fault_machine_of_the_wrong_family_fails_machine(archmatrix_run):
    plan = faulty_plan(archmatrix_run, "x86_64", "machine", machine="pc")  # the cell expects q35
    observation = boot(archmatrix_run, plan)
    assert failing(plan, observation) == ["machine"]
    assert "pc-i440fx-" in judge("machine", plan, observation).seen


def test_fault_kernel_panic_fails_boot_at_once(archmatrix_run):
    plan = faulty_plan(archmatrix_run, "aarch64", "panic",
                       kernel_cmdline="console=ttyAMA0 panic=-1 rdinit=/no-such-init")
    observation = boot(archmatrix_run, plan)
    assert failing(plan, observation) == ["boot", *SSH_CHECKS]  # no guest, nothing to log in to
    assert "failure pattern seen: Kernel panic - not syncing" in observation.boot_failure  # not a timeout
    # A panic is a failure, whatever the guest printed: never inconclusive.
    assert observation.boot_progress is None and judge("boot", plan, observation).outcome == "fail"


def test_fault_kernel_of_another_arch_fails_boot(archmatrix_run):
    # A 32-bit mipsel kernel runs on the mips64el cell's 64-bit CPU, and says so.
    plan = faulty_plan(archmatrix_run, "mips64el", "other-arch")
    observation = boot(archmatrix_run, plan, image_arch="mipsel")
    # The console's banner and, over SSH, uname -m both say so.
    assert failing(plan, observation) == ["boot", "guest-arch"]
    assert "arch=mips;" in judge("boot", plan, observation).seen + ";"
    assert "uname -m 'mips'" in judge("guest-arch", plan, observation).seen


def test_fault_console_on_the_wrong_device_fails_console(archmatrix_run):
    plan = faulty_plan(archmatrix_run, "aarch64", "console", kernel_cmdline="console=ttyS0 panic=-1")
    observation = boot(archmatrix_run, plan)
    failed = failing(plan, observation)
    assert "console" in failed
    # A guest whose console goes nowhere cannot be seen to boot (nor print its SSH host key); the rest must hold.
    assert set(failed) <= {"console", "boot", *SSH_CHECKS}


def test_fault_guest_that_never_brings_its_network_up_fails_ssh_at_once(archmatrix_run):
    plan = make_plan(ARCHES["aarch64"], "tcg", archmatrix_run.first_host().capabilities, None,
                     extra_kernel_args="archmatrix.net=off")
    plan = dataclasses.replace(plan, cell_id="fault-no-network-aarch64")
    observation = boot(archmatrix_run, plan)
    assert failing(plan, observation) == list(SSH_CHECKS)
    said = judge("ssh", plan, observation).seen
    assert "guest-fault-no-network-aarch64" in said or "fault-no-network-aarch64" in said
    assert "ARCHMATRIX-NET off" in said and "127.0.0.1:" in said
    # Not a wait for the SSH timeout: the guest said at once that it has no network.
    assert observation.login_s is not None and observation.ssh.error


def test_fault_file_not_where_the_guest_fetches_it_fails_only_network(archmatrix_run, monkeypatch):
    network = archmatrix_run.first_host().site.network
    served, _ = network.served_file()
    monkeypatch.setattr(served, "url", served.url + "-not-served")
    plan = faulty_plan(archmatrix_run, "x86_64", "network")
    observation = boot(archmatrix_run, plan)
    assert failing(plan, observation) == ["network"]
    assert "0 request(s) reached the server" in judge("network", plan, observation).seen


def test_fault_host_key_other_than_the_console_announced_is_refused(archmatrix_run, monkeypatch):
    import paramiko

    from archmatrix.guest import reach

    # As if someone else answered on the guest's port: the key the guest printed is not the one SSH sees
    # (here the run's own client key stands for "another key").
    other = paramiko.Ed25519Key.from_private_key_file(str(archmatrix_run.first_host().site.network.key.private_path))
    monkeypatch.setattr(reach, "key_from_line", lambda line: other)
    plan = faulty_plan(archmatrix_run, "aarch64", "host-key")
    observation = boot(archmatrix_run, plan)
    assert failing(plan, observation) == list(SSH_CHECKS)
    said = judge("ssh", plan, observation).seen
    assert "the guest printed on its console; refusing" in said


@pytest.mark.parametrize("arch", ["x86_64", "aarch64"])
def test_the_kvm_probe_payload_prints_its_banner_when_it_runs_so_its_silence_is_kvms(archmatrix_run, arch):
    """The payload under TCG, through libvirt: it prints at once, so a silent KVM guest is KVM's fault."""
    from archmatrix.hosts.kvm_probe import payload_image

    plan = dataclasses.replace(faulty_plan(archmatrix_run, arch, "kvm-payload"), nic_device=None)
    site = archmatrix_run.first_host().site
    observation = boot_and_observe(archmatrix_run.first_host().connection(), plan, payload_image(arch, site), site)
    assert observation.banner == Banner(arch, "kvm-probe-payload", "little")
