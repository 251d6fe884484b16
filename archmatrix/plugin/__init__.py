"""The pytest plugin: options, cell parametrization and fixtures; it registers the reporter.

Registered through the pytest11 entry point. Every test that takes the
`cell` fixture is parametrized over (arch, accelerator) with ids such as
`aarch64-tcg`, from --arch/--accel, else an `arches` marker, else the
catalog. A cell's guest boots once per run, whichever xdist worker asks
first (see archmatrix/run/store.py); the controller alone writes the reports
(archmatrix/plugin/reporter.py). The libvirt host and run directory are archmatrix/host.py.
"""

from __future__ import annotations

import json
import os
import shutil
import warnings
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import pytest

from archmatrix.core.arches import ARCHES, arch_named, default_arches
from archmatrix.core.capabilities import KvmVerdict, kvm_offered_for
from archmatrix.core.checks import SSH_CHECKS, judge
from archmatrix.core.observation import Observation
from archmatrix.core.plan import CellKey, CellUnsupported, Plan, PlanError, make_plan
from archmatrix.guest.domain import run_prefix
from archmatrix.guest.observe import boot_and_observe
from archmatrix.guest.reaper import wait_for_reaped
from archmatrix.guest.volumes import sweep_abandoned_pools
from archmatrix.hosts.container_hosts import start_container_hosts, stop_container_hosts
from archmatrix.hosts.host import USES_LIBVIRT, HarnessError, HarnessWarning, Host, RunDir, check_machines, open_host
from archmatrix.hosts.lab_hosts import start_lab_hosts, stop_lab_hosts
from archmatrix.hosts.leftovers import sweep_abandoned_domains, sweep_abandoned_run_dirs
from archmatrix.hosts.spec import HostSpec, redact_uri
from archmatrix.images.cache import ImageCache, ImageError
from archmatrix.interrupts import interrupt_on_sigterm
from archmatrix.options import (
    OptionError,
    Settings,
    add_options,
    check_image_cache,
    check_report_dir,
    settings_from,
)
from archmatrix.plugin.reporter import CELL_PROPERTY, FACTS_PROPERTY, HOST_PROPERTY, VERDICT_PROPERTY, MatrixReporter
from archmatrix.run.store import RunStore

SETTINGS = pytest.StashKey[Settings]()
RUN = pytest.StashKey["RunDir"]()
HOSTS = pytest.StashKey[list]()  # every HostSpec of the run, container hosts included, in matrix order
CONTAINERS = pytest.StashKey[list]()  # the container hosts this controller started, to stop at the end
LABS = pytest.StashKey[list]()  # the lab hosts this controller booted, to stop at the end
WANTS_SSH = pytest.StashKey[bool]()  # some selected test judges an SSH check: cells' boots go on to SSH
PROGRESS_FD = pytest.StashKey[int]()  # the terminal, for image build progress (build_progress)


def pytest_addoption(parser) -> None:
    add_options(parser)


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "arches(*names): guest arches a test runs on when --arch is not given")
    # Output capture is suspended here: a copy of the terminal's fd for image build progress (below).
    config.stash[PROGRESS_FD] = os.dup(2)
    interrupt_on_sigterm()
    workerinput = getattr(config, "workerinput", None)
    settings = config.stash[SETTINGS] = checked_settings(config.option, controller=workerinput is None)
    if workerinput is not None:
        config.stash[RUN] = RunDir(Path(workerinput["archmatrix_run_dir"]), workerinput["archmatrix_run_id"])
        config.stash[HOSTS] = [HostSpec.from_dict(d) for d in json.loads(workerinput["archmatrix_hosts"])]
        # Workers parse the command line again: the controller's switch to loadgroup must be told them,
        # or xdist's group suffixes are never added and a cell's checks wait on each other's boot.
        if workerinput.get("archmatrix_loadgroup"):
            config.option.loadgroup = True
        return
    config.stash[RUN] = RunDir.create()
    containers: list[HostSpec] = []
    if settings.container_releases and not config.option.collectonly:
        containers, config.stash[CONTAINERS] = start_container_hosts(
            settings.container_releases, config.stash[RUN].run_id, config.stash[RUN].owner(), settings.image_cache)
    labs: list[HostSpec] = []
    if settings.lab_hosts and not config.option.collectonly:
        run = config.stash[RUN]
        say = build_progress(config)
        try:
            labs, config.stash[LABS] = start_lab_hosts(settings.lab_hosts, run.path, run.run_id, run.owner(),
                                                       settings.image_cache, say, settings.lab_without_kvm)
        except BaseException:
            stop_container_hosts(config.stash.get(CONTAINERS, []))
            raise
    config.stash[HOSTS] = list(settings.hosts) + containers + labs
    # Keep a cell's checks on one worker, so its one boot is not waited for by others.
    if getattr(config.option, "dist", "no") == "load":
        config.option.dist = "loadgroup"
    reporter = MatrixReporter(settings, config.stash[RUN], config.stash[HOSTS])
    config.pluginmanager.register(reporter, "archmatrix-matrix-reporter")


def checked_settings(option, controller: bool = True) -> Settings:
    """Every option checked as a run checks it, before anything of the run exists; pytest.UsageError if one is bad.

    The controller also asks this machine's libvirt about --machine and tries the image cache and the
    report directory; workers were started by a controller that did. The report directory is made last,
    so that a run refused for any other reason leaves none behind.
    """
    try:
        settings = settings_from(option)
        if controller:
            check_machines(settings)
            check_image_cache(settings.image_cache)
            check_report_dir(settings.report_dir)
    except OptionError as error:
        raise pytest.UsageError(str(error)) from None
    return settings


def pytest_report_header(config) -> list[str]:
    settings, run = config.stash[SETTINGS], config.stash[RUN]
    hosts = ", ".join(f"{spec.label} ({redact_uri(spec.uri)})" for spec in config.stash[HOSTS])
    return [f"archmatrix: run {run.run_id} (domains {run_prefix(run.run_id)}*), "
            f"reports to {settings.report_dir}", f"libvirt hosts: {hosts}"]


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node) -> None:
    run = node.config.stash[RUN]
    node.workerinput["archmatrix_run_dir"] = str(run.path)
    node.workerinput["archmatrix_run_id"] = run.run_id
    node.workerinput["archmatrix_hosts"] = json.dumps([spec.to_dict() for spec in node.config.stash[HOSTS]])
    node.workerinput["archmatrix_loadgroup"] = node.config.option.dist == "loadgroup"


def build_progress(config) -> Callable[[str], None]:
    """Where image builds say how far they are: the terminal itself, past pytest's output capture.

    Cold builds take minutes (a kernel from source about two); a run must not look hung meanwhile.
    """
    fd = config.stash[PROGRESS_FD]
    worker = getattr(config, "workerinput", {}).get("workerid")
    prefix = f"[{worker}] " if worker else ""

    def say(line: str) -> None:
        try:
            os.write(fd, f"\n{prefix}{line}".encode() if not worker else f"{prefix}{line}\n".encode())
        except OSError:
            pass  # the terminal went away; the build goes on

    return say


def pytest_unconfigure(config) -> None:
    if PROGRESS_FD in config.stash:
        os.close(config.stash[PROGRESS_FD])
    run = config.stash.get(RUN, None)
    if run is not None and getattr(config, "workerinput", None) is None:
        stop_container_hosts(config.stash.get(CONTAINERS, []))
        stop_lab_hosts(config.stash.get(LABS, []))
        shutil.rmtree(run.path, ignore_errors=True)


def pytest_generate_tests(metafunc) -> None:
    if "cell" not in metafunc.fixturenames:
        return
    settings = metafunc.config.stash[SETTINGS]
    hosts = metafunc.config.stash[HOSTS]
    marker = metafunc.definition.get_closest_marker("arches")
    if settings.arches:
        arches = list(settings.arches)
    elif marker:
        arches = [arch_named(name).name for name in marker.args]
    else:
        arches = default_arches()
    # One host: ids stay <arch>-<accel>; several: <label>-<arch>-<accel>, so -k LABEL picks a host.
    several = len(hosts) > 1
    keys = [CellKey(arch, accel, spec.label) for spec in hosts for arch in arches for accel in settings.accels]
    params = [pytest.param(key, id=key.test_id(several), marks=pytest.mark.xdist_group(key.test_id(True)))
              for key in keys]
    metafunc.parametrize("cell", params)


def _cell_of(item) -> CellKey | None:
    callspec = getattr(item, "callspec", None)
    return callspec.params.get("cell") if callspec is not None else None


def expected_cell_s(key: CellKey, settings: Settings, host: HostSpec | None = None) -> float:
    """What a cell is expected to cost: a KVM cell may carry its host's KVM probe (the probe's bound).

    On a lab host both take longer (archmatrix/hosts/lab_catalog.py): its cells go first.
    """
    if key.accel == "kvm":
        return settings.kvm_probe_first_output * (host.timeout_factor if host else 1.0)
    return ARCHES[key.arch].typical_tcg_boot_s * (host.tcg_slowdown if host else 1.0)


@pytest.hookimpl(trylast=True)  # after -k and -m deselected what they do not want
def pytest_collection_modifyitems(config, items) -> None:
    """Cells whose image is ready first, longest first, so that under -n the last cells on every worker
    are short ones and no cached arch waits for a cold build (those go last).

    Only the cells' tests change places among themselves; the order of other tests is kept.
    """
    settings = config.stash[SETTINGS]
    config.stash[WANTS_SSH] = any(check_name(item) in SSH_CHECKS for item in items if _cell_of(item) is not None)
    slots = [index for index, item in enumerate(items) if _cell_of(item) is not None]
    cache = ImageCache(settings.image_cache)
    hosts = {spec.label: spec for spec in config.stash[HOSTS]}
    ready = {name: name in settings.user_images or not ARCHES[name].has_builtin_image
             or cache.is_cached(ARCHES[name]) for name in {_cell_of(items[index]).arch for index in slots}}
    cells = sorted((items[index] for index in slots),
                   key=lambda item: (not ready[_cell_of(item).arch],
                                     -expected_cell_s(_cell_of(item), settings, hosts.get(_cell_of(item).host))))
    for index, item in zip(slots, cells, strict=True):
        items[index] = item


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item) -> None:
    callspec = getattr(item, "callspec", None)
    if callspec is None or "cell" not in callspec.params:
        return
    cell: CellKey = callspec.params["cell"]
    check = check_name(item)
    item.user_properties.append((CELL_PROPERTY, json.dumps({"host": cell.host, "arch": cell.arch,
                                                             "accel": cell.accel, "check": check})))


def check_name(item) -> str:
    """test_guest_arch -> guest-arch: the check's name in the matrix."""
    return item.originalname.removeprefix("test_").replace("_", "-")


class HostRegistry:
    """The run's hosts in this process, each connected on first use; an unreachable one is remembered."""

    def __init__(self, config):
        self.settings = config.stash[SETTINGS]
        self.run = config.stash[RUN]
        self.specs = {spec.label: spec for spec in config.stash[HOSTS]}
        self.store = RunStore(self.run.path)
        self.cache = ImageCache(self.settings.image_cache, progress=build_progress(config))
        self.hosts: dict[str, Host] = {}
        self.failures: dict[str, str] = {}
        self.swept = False

    def get(self, label: str) -> Host:
        if label in self.failures:
            raise HarnessError(self.failures[label])
        if label not in self.hosts:
            try:
                host = open_host(self.specs[label], self.settings, self.run, self.store, self.cache,
                                 several=len(self.specs) > 1)
            except HarnessError as error:
                self.failures[label] = str(error)
                raise
            (self.run.path / USES_LIBVIRT).touch()
            if host.is_local:
                for leftover in sweep_abandoned_domains(host.conn) + self._sweep_run_dirs():
                    warnings.warn(HarnessWarning(leftover.describe()), stacklevel=1)
            for pool, run in sweep_abandoned_pools(host.conn):
                warnings.warn(HarnessWarning(f"deleted leftover storage pool {pool} of run {run} on {label}: "
                                             f"its owner process is gone"), stacklevel=1)
            self.hosts[label] = host
        return self.hosts[label]

    def _sweep_run_dirs(self) -> list:
        if self.swept:
            return []
        self.swept = True
        return sweep_abandoned_run_dirs()

    def close(self) -> None:
        wait_for_reaped()  # the guests destroyed in the background, before their connections close
        for host in self.hosts.values():
            host.close()


@pytest.fixture(scope="session")
def archmatrix_hosts(pytestconfig):
    registry = HostRegistry(pytestconfig)
    yield registry
    registry.close()


@pytest.fixture(scope="session")
def archmatrix_host(archmatrix_hosts: HostRegistry) -> Host:
    """The run's first host (this machine unless told otherwise): for tests that boot outside the matrix."""
    return archmatrix_hosts.get(next(iter(archmatrix_hosts.specs)))


@pytest.fixture
def cell_host(cell: CellKey, archmatrix_hosts: HostRegistry) -> Host:
    return archmatrix_hosts.get(cell.host)


def kvm_verdict_of(host: Host) -> KvmVerdict:
    """The host's KVM probe, once per run and host whichever worker asks first."""
    from archmatrix.hosts.kvm_probe import probe_kvm

    def probe() -> dict:
        host_arch = ARCHES.get(host.capabilities.host_arch)
        verdict = probe_kvm(
            host.connection(),
            host.capabilities,
            lambda: host.image(host_arch),
            host.site,
            host.settings.kvm_probe_timeout * host.spec.timeout_factor,
            host.is_local,
            host.settings.kvm_probe_first_output * host.spec.timeout_factor,
            quiet=bool(host.spec.details.get("kvm_probe_quiet")),
        )
        return asdict(verdict)

    return KvmVerdict(**host.store.get_or_compute(f"kvm-probe-{host.label}", probe))


@pytest.fixture
def plan(cell: CellKey, cell_host: Host, request) -> Plan:
    settings = cell_host.settings
    # Probe KVM only for a cell libvirt would run with KVM at all: a foreign arch is refused anyway.
    wants_probe = cell.accel == "kvm" and kvm_offered_for(cell_host.capabilities, cell.arch) is None
    kvm = kvm_verdict_of(cell_host) if wants_probe else None
    request.node.user_properties.append((HOST_PROPERTY, json.dumps(cell_host.facts(kvm))))
    nova = nova_decisions(cell, cell_host) if cell.arch in settings.image_properties else None
    try:
        return make_plan(ARCHES[cell.arch], cell.accel, cell_host.capabilities, kvm,
                         machine=settings.machines.get(cell.arch),
                         timeout_factor=settings.timeout_factor * cell_host.spec.timeout_factor,
                         timeout_s=settings.boot_timeout(cell.arch, cell.accel),
                         extra_kernel_args=settings.kernel_args.get(cell.arch, ""),
                         console_cap_mib=settings.console_cap_mib, tb_cache_mib=settings.tb_cache_mib,
                         user_image=cell.arch in settings.user_images,
                         success_pattern=settings.success_patterns.get(cell.arch), nova=nova,
                         boot=boot_of(cell.arch, settings, cell_host))
    except CellUnsupported as reason:
        pytest.skip(f"{cell.id} unsupported on {cell.host}: {reason}")
    except PlanError as error:
        raise HarnessError(f"{cell.host}: {error}") from None


def boot_of(arch: str, settings, host: Host) -> str:
    """"disk" for a user's disk or --boot-from disk; such a cell boots only on this machine's libvirt so far."""
    disk = arch in settings.user_disks or (settings.boot_from == "disk" and arch not in settings.user_images)
    if disk and not host.is_local:
        raise HarnessError(f"{arch} on {host.label}: disk images boot on this machine's libvirt only so far (the "
                           f"run's pool on a remote host takes kernels and initrds, not a disk for each cell)")
    return "disk" if disk else "kernel"


def nova_decisions(cell: CellKey, host: Host):
    """What Nova's libvirt driver would boot for the cell arch's image properties on this host.

    A cell whose properties would not boot there (another guest arch, a machine of another arch, no UEFI
    firmware, ...) stops before its boot, naming the property and the fix.
    """
    from archmatrix.cli.nova_plan import firmware_capabilities
    from archmatrix.nova.plan import blocking, plan_for_image

    properties = host.settings.image_properties[cell.arch]
    virt_type = "kvm" if cell.accel == "kvm" else "qemu"
    nova = plan_for_image(properties, host.capabilities, virt_type,
                          firmware_capabilities(host.connection(), host.capabilities, properties, virt_type))
    if nova.guest_arch != cell.arch:
        raise HarnessError(f"{cell.id} on {cell.host}: its image properties make Nova boot a {nova.guest_arch} guest "
                           f"(from {nova.guest_arch_from}), not {cell.arch}: set hw_emulation_architecture={cell.arch}")
    problems = blocking(nova)
    if problems:
        raise HarnessError(f"{cell.id} on {cell.host}: Nova would not boot this image here: "
                           + "; ".join(f"[{p.code}] {p.problem} (fix: {p.fix})" for p in problems))
    if nova.firmware.startswith("uefi") and not host.is_local:
        raise HarnessError(f"{cell.id} on {cell.host}: UEFI cells boot on this machine's libvirt only so far "
                           f"(their variable store is a file of the run here)")
    return nova


@pytest.fixture
def image(cell: CellKey, cell_host: Host, plan: Plan):
    arch = ARCHES[cell.arch]
    if not arch.has_builtin_image and cell.arch not in cell_host.settings.user_images:
        pytest.skip(
            f"{cell.id}: no image: {arch.no_image_reason}; "
            f"supply one with --image {arch.name}=KERNEL[,INITRD] (and --success-pattern {arch.name}=REGEX if its "
            f"console shows no login prompt once it is up)"
        )
    try:
        built = cell_host.image(arch)
        if plan.boot == "disk" and built.disk is None:
            built = cell_host.firmware_disk(arch)
    except ImageError as error:
        raise HarnessError(str(error)) from None  # it names the arch and what failed
    for note in built.warnings:  # a fallback release, a damaged cache entry rebuilt: said on every run
        warnings.warn(HarnessWarning(f"the {arch.name} image: {note}"), stacklevel=1)
    return built


@pytest.fixture
def observation(cell: CellKey, plan: Plan, image, cell_host: Host, request) -> Observation:
    def boot() -> dict:
        import libvirt

        try:
            seen = boot_and_observe(cell_host.connection(), plan, image, cell_host.site,
                                    with_ssh=request.config.stash.get(WANTS_SSH, True))
        except libvirt.libvirtError as error:
            seen, failure = None, error
        except HarnessError as error:
            return {"harness_error": str(error)}
        if not cell_host.alive():
            # Whatever the boot saw, libvirt vanished under it: a fault of the host, not of the guest.
            return {"harness_error": f"the libvirt connection to {redact_uri(cell_host.spec.uri)} "
                                     f"(host {cell.host}) was lost while {cell.id} booted "
                                     f"(libvirtd died or restarted, or the host went away)"}
        if seen is None:
            raise HarnessError(f"libvirt on {cell.host} failed while {cell.id} booted: {failure}")
        return seen.to_dict()

    recorded = cell_host.store.get_or_compute(f"cell-{cell.host}-{cell.id}", boot)
    if "harness_error" in recorded:
        raise HarnessError(recorded["harness_error"])
    seen = Observation.from_dict(recorded)
    request.node.user_properties.append((FACTS_PROPERTY, json.dumps(cell_facts(plan, seen))))
    return seen


LIVE_GUESTS = pytest.StashKey[dict]()  # CellKey -> LiveGuest: the `guest` fixture's running guests in this process


@pytest.fixture
def guest(cell: CellKey, plan: Plan, image, cell_host: Host, request):
    """A running guest of this cell, reached over SSH: `guest.run("cat /proc/cpuinfo")`, `guest.put(path, to)`.

    Booted on first use and kept while the next test is of the same cell and uses it too; a test that
    needs a clean guest boots its own with the plan and image fixtures.
    """
    from archmatrix.guest.live import GuestBootError, LiveGuest

    reason = no_ssh_reason(plan, cell_host)
    if reason:
        pytest.skip(f"{plan.cell_id}: no guest to log in to: {reason}")
    running = request.config.stash.setdefault(LIVE_GUESTS, {})
    if cell not in running:
        try:
            running[cell] = LiveGuest(cell_host.connection(), plan, image, cell_host.site)
        except GuestBootError as error:
            pytest.fail(f"the {cell.id} guest for this scenario did not come up: {error}", pytrace=False)
    return running[cell]


def _uses_guest_of(item, cell: CellKey) -> bool:
    return item is not None and "guest" in getattr(item, "fixturenames", ()) and _cell_of(item) == cell


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_teardown(item, nextitem) -> None:
    """A scenario's guest is destroyed once the next test does not want the same one (before the fixtures
    it was booted with, its host's connection among them, are torn down)."""
    running = item.config.stash.get(LIVE_GUESTS, {})
    for cell in [cell for cell in running if not _uses_guest_of(nextitem, cell)]:
        running.pop(cell).close()


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session) -> None:
    for live in session.config.stash.get(LIVE_GUESTS, {}).values():  # interrupted runs
        live.close()
    session.config.stash[LIVE_GUESTS] = {}
    # The lab hosts are domains of this machine's libvirt: stopped before the reporter's sweep of this run's
    # domains, which would count them as leaks. Their guests go with them.
    stop_lab_hosts(session.config.stash.get(LABS, []))
    session.config.stash[LABS] = []


def cell_facts(plan: Plan, seen: Observation) -> dict:
    return {
        "emulator": seen.live_emulator,
        "emulator_resolved": seen.live_emulator_real,
        "machine": plan.machine,
        "machine_canonical": seen.live_machine,
        "cpu_model": plan.cpu_model,
        "kernel_console": plan.kernel_console,
        "first_output_s": seen.first_output_s,
        "banner_s": seen.banner_s,
        "login_s": seen.login_s,
        "guest": seen.banner,
        "image": seen.image,
        "console_log": seen.console_log,
        "console_bytes": seen.console_bytes,
        "process_note": seen.process_note,
        "kernel_on_host": seen.kernel_on_host,
        "boot_files_s": seen.boot_files_s,
        "qemu_peak_rss_kib": seen.qemu_peak_rss_kib,
        "qemu_version": (seen.qemu or {}).get("qemu_version"),
        "ssh": seen.ssh,
        "guest_arch": seen.guest_arch,
        "network": seen.network,
        "plan": plan.summary(),
    }


def no_ssh_reason(plan: Plan, host: Host) -> str | None:
    """Why this cell's guest cannot be reached over SSH on this host, or None."""
    if plan.no_ssh_reason:
        return f"{plan.arch}: {plan.no_ssh_reason}"
    if host.site.network is None:
        return host.site.no_network_reason
    return None


@pytest.fixture
def verify(plan: Plan, observation: Observation, cell_host: Host, request):
    """verify("binary") judges one check of this cell and fails the test with the evidence."""

    def run_check(check: str):
        if check in SSH_CHECKS:
            reason = no_ssh_reason(plan, cell_host)
            if reason:
                pytest.skip(f"{plan.cell_id} {check} unsupported: {reason}")
        verdict = judge(check, plan, observation)
        request.node.user_properties.append((VERDICT_PROPERTY, json.dumps(asdict(verdict))))
        if not verdict.passed:
            pytest.fail(verdict.explain(plan, observation), pytrace=False)
        return verdict

    return run_check


