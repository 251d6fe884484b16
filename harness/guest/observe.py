"""Boot one cell's guest and record everything the checks need, then destroy it.

The guest runs only as long as it takes to see it come up and ask libvirt
and QEMU what is running; the checks judge the resulting Observation, a
plain value that can be shared between xdist workers as JSON.
"""

from __future__ import annotations

import os
import re
import shutil
import time
import xml.etree.ElementTree as ET
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from harness.guest.console import ConsoleLog, read_capped
from harness.guest.domain import DomainSpec, domain_name, running_domain
from harness.guest.qmp import QmpError, question_qemu
from harness.hosts.leftovers import owner_token
from harness.images.cache import Image
from harness.observation import Observation
from harness.plan import Plan

if TYPE_CHECKING:
    import libvirt

BANNER = re.compile(rb"EMUV-BANNER arch=(\S+) release=(\S+) endian=(\w+)")
LOGIN_PROMPT = re.compile(rb"login: ")
CONSOLE_ENABLED = re.compile(r"\bconsole \[(\w+)\] enabled")
LIBVIRT_QEMU_PID_DIR = Path("/run/libvirt/qemu")


def stage_image(image: Image, directory: Path) -> tuple[Path, Path | None]:
    """Copy kernel and initrd where the QEMU user can read them.

    The cache may sit under a home directory QEMU cannot traverse (it runs as
    libvirt-qemu); the run directory is made traversable for it.
    """
    directory.mkdir(parents=True, exist_ok=True)
    kernel = Path(shutil.copyfile(image.kernel, directory / "kernel"))
    initrd = Path(shutil.copyfile(image.initrd, directory / "initrd")) if image.initrd else None
    for staged in (kernel, initrd):
        if staged:
            staged.chmod(0o600)  # libvirt hands them to the QEMU user for the guest's lifetime
    return kernel, initrd


def domain_spec(plan: Plan, kernel: Path, initrd: Path | None, console_log: Path, run_id: str) -> DomainSpec:
    return DomainSpec(
        name=domain_name(run_id, plan.cell_id),
        domain_type=plan.domain_type,
        arch=plan.arch,
        machine=plan.machine,
        emulator=plan.emulator,
        cpu_model=plan.cpu_model,
        cpu_via_qemu_args=plan.cpu_via_qemu_args,
        memory_mib=plan.memory_mib,
        kernel=str(kernel),
        initrd=str(initrd) if initrd else None,
        cmdline=plan.kernel_cmdline,
        console=plan.libvirt_console,
        console_log=str(console_log),
        run_id=run_id,
        cell_id=plan.cell_id,
        owner=owner_token(os.getpid()),
    )


def boot_and_observe(
    conn: libvirt.virConnect, plan: Plan, image: Image, run_dir: Path, run_id: str, host_is_local: bool
) -> Observation:
    import libvirt

    cell_dir = run_dir / plan.cell_id
    kernel, initrd = stage_image(image, cell_dir)
    console_path = cell_dir / "console.log"
    console_path.touch(mode=0o600)
    spec = domain_spec(plan, kernel, initrd, console_path, run_id)
    base = {"cell_id": plan.cell_id, "plan": plan.to_dict(), "image": image.identity(),
            "console_log": str(console_path)}

    started = time.monotonic()
    try:
        with running_domain(conn, spec) as domain:
            facts = _while_running(domain, plan, console_path, started, host_is_local)
    except libvirt.libvirtError as error:
        return Observation(**base, start_error=str(error), console_tail=read_capped(console_path)[-2000:])
    finally:
        for staged in (kernel, initrd):
            if staged:
                staged.unlink(missing_ok=True)
    text = read_capped(console_path)
    return Observation(**base, **facts, kernel_consoles=sorted(set(CONSOLE_ENABLED.findall(text))))


def _alive(domain: libvirt.virDomain) -> bool:
    import libvirt

    try:
        return bool(domain.isActive())
    except libvirt.libvirtError:
        return False


def _while_running(domain, plan: Plan, console_path: Path, started: float, host_is_local: bool) -> dict:
    facts: dict = {}
    live = ET.fromstring(domain.XMLDesc(0))
    facts["live_emulator"] = live.findtext("devices/emulator") or ""
    type_element = live.find("os/type")
    facts["live_machine"] = type_element.get("machine", "") if type_element is not None else ""
    facts["live_domain_type"] = live.get("type", "")
    if host_is_local:
        facts["live_emulator_real"] = os.path.realpath(facts["live_emulator"])
        facts["expected_emulator_real"] = os.path.realpath(plan.expected_emulator)
    facts["process_exe"], facts["process_note"] = _process_exe(domain.name(), host_is_local)
    try:
        facts["qemu"] = asdict(question_qemu(domain))
    except QmpError as error:
        facts["qmp_error"] = str(error)

    console = ConsoleLog(console_path, plan.console_cap_bytes)

    def alive() -> bool:
        return _alive(domain)

    banner = console.wait_for(BANNER, plan.timeout_s, started, alive)
    if not banner.matched:
        facts.update(boot_failure=f"no banner: {banner.reason}", console_tail=banner.tail)
        return facts
    arch, release, endian = banner.match
    facts["banner"] = {"arch": arch, "release": release, "endian": endian}
    facts["banner_s"] = round(banner.elapsed_s, 3)
    login = console.wait_for(LOGIN_PROMPT, plan.timeout_s, started, alive)
    facts["console_tail"] = login.tail
    if login.matched:
        facts["login_s"] = round(login.elapsed_s, 3)
    else:
        facts["boot_failure"] = f"banner but no login prompt: {login.reason}"
    return facts


def _process_exe(name: str, host_is_local: bool) -> tuple[str | None, str]:
    if not host_is_local:
        return None, "libvirt host is remote: only the domain XML's <emulator> was checked"
    pid_file = LIBVIRT_QEMU_PID_DIR / f"{name}.pid"
    try:
        pid = int(pid_file.read_text().strip())
        return os.path.realpath(f"/proc/{pid}/exe"), f"pid {pid} from {pid_file}"
    except (OSError, ValueError) as error:
        return None, f"could not read the QEMU process of {name}: {error}"
