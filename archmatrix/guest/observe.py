"""Boot one cell's guest and record everything the checks need, then destroy it.

The guest runs only as long as it takes to see it come up and ask libvirt
and QEMU what is running; the checks judge the resulting Observation, a
plain value that can be shared between xdist workers as JSON.
"""

from __future__ import annotations

import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from archmatrix.cleanup.names import domain_name
from archmatrix.cleanup.owner import Owner
from archmatrix.core.kernel_evidence import kernel_evidence_of
from archmatrix.core.observation import Banner, Observation
from archmatrix.core.plan import Plan
from archmatrix.guest.boot import domain_alive, started_domain, watched
from archmatrix.guest.bounded_pattern import BoundedPattern
from archmatrix.guest.console import Console, ConsoleWait
from archmatrix.guest.console_log import find_all, log_pieces, log_tail, search
from archmatrix.guest.domain import DomainSpec, domain_xml
from archmatrix.guest.qmp import QmpError, question_qemu
from archmatrix.guest.reach import ssh_phase
from archmatrix.guest.site import GuestSite, HostInspector, PlacedFiles
from archmatrix.images.image import Image

if TYPE_CHECKING:
    import libvirt

# Up to the line end: a banner read in two pieces must not match its first half.
# The byte order is one of init's three words, matched whole: a banner read in two pieces must not match
# "li" of "little", and a kernel message may follow it on the same line before its newline.
BANNER = re.compile(rb"ARCHMATRIX-BANNER arch=(\S+) release=(\S+) endian=(little|big|unknown)(?!\w)")
BANNER_TEXT = re.compile(BANNER.pattern.decode())  # the same, in the log read as text
LOGIN_PROMPT = re.compile(rb"login: ")
# Matches before the first byte, consuming nothing: with `quiet` (a lab host's KVM probe) that byte is the banner's.
ANY_OUTPUT = re.compile(rb"(?=[\s\S])")
CONSOLE_ENABLED = re.compile(r"\bconsole \[(\w+)\] enabled")


def guest_cmdline(plan: Plan, ssh_key: str | None) -> str:
    """The kernel command line of the cell's guest: the run's SSH key, when the guest is reached over SSH, first
    (a user's arguments may end with "-- ARGS" for init, and anything after them goes to init too)."""
    return (f"archmatrix.ssh_key={ssh_key} " if ssh_key else "") + plan.kernel_cmdline


def domain_spec(plan: Plan, files: PlacedFiles, run_id: str, name: str | None = None,
                ssh_port: int | None = None, ssh_key: str | None = None, file_port: int | None = None) -> DomainSpec:
    cmdline = guest_cmdline(plan, ssh_key if ssh_port else None)
    return DomainSpec(
        name=name or domain_name(run_id, plan.cell_id),
        domain_type=plan.domain_type,
        arch=plan.arch,
        machine=plan.machine,
        emulator=plan.emulator,
        cpu_model=plan.cpu_model,
        cpu_via_qemu_args=plan.cpu_via_qemu_args,
        memory_mib=plan.memory_mib,
        tb_cache_mib=plan.tb_cache_mib,
        kernel=files.kernel,
        initrd=files.initrd,
        dtb=files.dtb,
        cmdline=cmdline,
        console=plan.libvirt_console,
        run_id=run_id,
        cell_id=plan.cell_id,
        owner=Owner.of_this_process(),
        nic_device=plan.nic_device if ssh_port else None,
        ssh_port=ssh_port,
        file_port=file_port if ssh_port else None,
        rng=bool(ssh_port),
        firmware=plan.firmware,
        nvram=str(Path(files.directory) / f"{name or plan.cell_id}-VARS.fd") if plan.firmware else None,
        disk=files.disk,
        disk_format=files.disk_format,
        disk_bus=plan.disk_bus,
    )


def wants_ssh(plan: Plan, site: GuestSite) -> bool:
    return site.network is not None and plan.nic_device is not None and plan.no_ssh_reason is None


DomainFor = Callable[[PlacedFiles, str, "int | None"], str]  # (placed files, domain name, SSH port) -> its XML


def harness_domain(plan: Plan, site: GuestSite) -> DomainFor:
    """The harness's own domain of the plan (archmatrix/guest/domain.py)."""

    def xml_for(files: PlacedFiles, name: str, port: int | None) -> str:
        if not port:
            return domain_xml(domain_spec(plan, files, site.run_id, name))
        return domain_xml(domain_spec(plan, files, site.run_id, name, port, site.network.key.public_blob,
                                      site.network.guest_file_port()))

    return xml_for


@contextmanager
def watched_domain(conn: libvirt.virConnect, plan: Plan, files: PlacedFiles, site: GuestSite, name: str,
                   console: Console, with_ssh: bool = True,
                   domain_for: DomainFor | None = None) -> Iterator[tuple[libvirt.virDomain, int | None, float]]:
    """The plan's domain (or `domain_for`'s) started with its SSH port forwarded where it has one, its console
    attached, resumed: (domain, SSH port, start time)."""
    xml_for = domain_for or harness_domain(plan, site)
    draw_port = site.network.free_port if with_ssh and wants_ssh(plan, site) else None
    with started_domain(conn, lambda port: xml_for(files, name, port), draw_port) as (domain, ssh_port):
        with watched(conn, domain, console, plan.libvirt_console.device_name) as started:
            yield domain, ssh_port, started


def boot_and_observe(conn: libvirt.virConnect, plan: Plan, image: Image, site: GuestSite,
                     with_ssh: bool = True, domain_for: DomainFor | None = None,
                     attach: dict[str, Path] | None = None) -> Observation:
    """Boot the plan's guest on `site`, watch it come up through its console stream, destroy it.

    `with_ssh`: also reach it over SSH where it can be (a run that judges none of the SSH checks skips that).
    `domain_for`: another domain than the harness's own (a Nova cell's), with `attach`'s files placed for it.
    """
    import libvirt

    cell_dir = site.run_dir / plan.cell_id
    cell_dir.mkdir(parents=True, exist_ok=True)
    console = Console(cell_dir / "console.log", plan.console_cap_bytes)
    base = {"cell_id": plan.cell_id, "plan": plan.to_dict(), "image": image.identity(),
            "console_log": str(console.log_path)}
    ssh = with_ssh and wants_ssh(plan, site)
    try:
        placing = time.monotonic()
        files = site.boot_files.place(image, plan.cell_id, guest_cmdline(plan, site.network.key.public_blob
                                                                           if ssh else None), attach or {})
        base["boot_files_s"] = round(time.monotonic() - placing, 3)
        try:
            name = site.domain_name(plan.cell_id)
            with watched_domain(conn, plan, files, site, name, console, with_ssh,
                                domain_for) as (domain, ssh_port, started):
                facts = _while_running(domain, plan, console, started, site.inspector)
                if ssh_port and "login_s" in facts:
                    facts.update(ssh_phase(site.network, domain.name(), ssh_port, console, started,
                                           plan.ssh_timeout_s, lambda: domain_alive(domain)))
                facts["first_output_s"] = _since(console.first_at, started)
                facts["last_output_s"] = _since(console.last_at, started)
        finally:
            site.boot_files.release(files)
    except libvirt.libvirtError as error:
        console.close()
        return Observation(**base, start_error=str(error), console_tail=log_tail(console.log_path))
    return Observation(**base, **facts, console_bytes=console.total_bytes,
                       kernel_on_host=files.kernel or files.disk or "",
                       kernel_consoles=sorted(find_all(CONSOLE_ENABLED, console.log_path)))


def _while_running(domain, plan: Plan, console: Console, started: float, inspector: HostInspector) -> dict:
    facts: dict = {}
    live = ET.fromstring(domain.XMLDesc(0))
    facts["live_emulator"] = live.findtext("devices/emulator") or ""
    type_element = live.find("os/type")
    facts["live_machine"] = type_element.get("machine", "") if type_element is not None else ""
    facts["live_domain_type"] = live.get("type", "")
    if inspector.can_resolve:
        facts["live_emulator_real"] = inspector.resolve(facts["live_emulator"])
        facts["expected_emulator_real"] = inspector.resolve(plan.expected_emulator)
    facts["process_exe"], facts["process_note"] = inspector.process_exe(domain.name())
    try:
        facts["qemu"] = question_qemu(domain)
    except QmpError as error:
        facts["qmp_error"] = str(error)

    def alive() -> bool:
        return domain_alive(domain)

    if plan.first_output_s is not None:
        first = console.wait_for(ANY_OUTPUT, plan.first_output_s, started, alive)
        if not first.matched:
            facts.update(_not_up("no console output", first))
            return facts
    if plan.success_pattern is not None:
        facts.update(_until_success(plan, console, started, alive))
        facts["qemu_peak_rss_kib"] = inspector.peak_rss_kib(domain.name())
        return facts
    banner = console.wait_for(BANNER, plan.timeout_s, started, alive)
    if not banner.matched:
        facts.update(_not_up("no banner", banner))
        return facts
    arch, release, endian = banner.match
    facts["banner"] = Banner(arch, release, endian)
    facts["banner_s"] = round(banner.elapsed_s, 3)
    login = console.wait_for(LOGIN_PROMPT, plan.timeout_s, started, alive)
    facts["console_tail"] = login.tail
    if login.matched:
        facts["login_s"] = round(login.elapsed_s, 3)
    else:
        facts.update(_not_up("banner but no login prompt", login))
    facts["qemu_peak_rss_kib"] = inspector.peak_rss_kib(domain.name())
    return facts


def _until_success(plan: Plan, console: Console, started: float, alive) -> dict:
    """A user's image: up when its console shows the success pattern; the evidence is what its kernel printed."""
    assert plan.success_pattern is not None
    # The user's pattern is searched in a process of its own, each search bounded: one that backtracks without
    # end ends this boot, naming it, instead of every wait of the run.
    with BoundedPattern(plan.success_pattern, f"--success-pattern {plan.arch}={plan.success_pattern}") as pattern:
        success = console.wait_for(pattern, plan.timeout_s, started, alive)
    facts: dict = {"console_tail": success.tail}
    if not success.matched:
        return _not_up(f"success pattern {plan.success_pattern!r} not seen", success)
    facts["login_s"] = round(success.elapsed_s, 3)
    banner = search(BANNER_TEXT, console.log_path)
    if banner:  # an image of the user's that prints our banner is judged by it as ours are
        facts["banner"] = Banner(*banner.groups())
    facts["kernel_evidence"] = kernel_evidence_of(log_pieces(console.log_path))
    return facts


def _since(when: float | None, started: float) -> float | None:
    return round(when - started, 3) if when is not None else None


def _not_up(what: str, wait: ConsoleWait) -> dict:
    """A boot's facts when a wait for it to come up ended without a match: why, and, at a timeout, whether the
    guest was still printing (archmatrix/guest/progress.py)."""
    facts: dict = {"console_tail": wait.tail, "boot_failure": f"{what}: {wait.reason}"}
    if wait.progress is not None:
        facts["boot_progress"] = wait.progress
        facts["boot_failure"] += f"; {wait.progress.said()}"
    return facts
