"""The pytest plugin: options, cell parametrization, fixtures, and the matrix reporter.

Registered through the pytest11 entry point. Every test that takes the
`cell` fixture is parametrized over (arch, accelerator) with ids such as
`aarch64-tcg`, from --arch/--accel, else an `arches` marker, else the
catalog. A cell's guest boots once per run, whichever xdist worker asks
first (see harness/store.py); the controller alone writes the reports.
"""

from __future__ import annotations

import json
import os
import platform
import secrets
import shutil
import signal
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from harness.arches import ARCHES, UnknownNameError, arch_named
from harness.checks import judge
from harness.console import copy_capped
from harness.images import ImageCache, ImageError, user_image
from harness.leftovers import (
    OWNER_FILE,
    RUN_DIR_PREFIX,
    owner_token,
    sweep_abandoned_domains,
    sweep_abandoned_run_dirs,
    sweep_own_domains,
    sweep_run_domains,
)
from harness.matrix import CheckRecord, aggregate
from harness.observe import Observation, boot_and_observe
from harness.options import (
    OptionError,
    Settings,
    add_options,
    check_report_dir,
    redact_uri,
    settings_from,
    uri_is_local,
)
from harness.plan import CellKey, CellUnsupported, Plan, PlanError, make_plan
from harness.probe import HostCapabilities, KvmVerdict, kvm_offered_for, parse_capabilities
from harness.report.html import write_html
from harness.report.json_report import matrix_document, write_json
from harness.report.junit import write_junit
from harness.report.markdown import write_markdown
from harness.store import RunStore

SETTINGS = pytest.StashKey[Settings]()
RUN = pytest.StashKey["RunDir"]()
CELL_PROPERTY = "emuv_cell"
FACTS_PROPERTY = "emuv_facts"
HOST_PROPERTY = "emuv_host"
VERDICT_PROPERTY = "emuv_verdict"


@dataclass(frozen=True)
class RunDir:
    """This run's private scratch space: staged images, console logs, shared values.

    Mode 0711: QEMU (running as libvirt-qemu) can reach the files libvirt hands
    it, but cannot list the directory, and nobody else can either.
    """

    path: Path
    run_id: str

    @classmethod
    def create(cls) -> RunDir:
        run_id = secrets.token_hex(4)
        path = Path(tempfile.mkdtemp(prefix=f"{RUN_DIR_PREFIX}{run_id}-"))
        path.chmod(0o711)
        owner = owner_token(os.getpid())
        (path / OWNER_FILE).write_text(f"{owner['pid']} {owner['pidstart']}\n")
        return cls(path, run_id)


def pytest_addoption(parser) -> None:
    add_options(parser)


def _interrupt_on_sigterm(signum, frame) -> None:
    # A CI timeout sends SIGTERM: end like Ctrl-C, so domains are destroyed and reports written.
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "arches(*names): guest arches a test runs on when --arch is not given")
    signal.signal(signal.SIGTERM, _interrupt_on_sigterm)
    try:
        settings = settings_from(config.option)
    except (OptionError, UnknownNameError) as error:
        raise pytest.UsageError(str(error)) from None
    config.stash[SETTINGS] = settings
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:
        config.stash[RUN] = RunDir(Path(workerinput["emuv_run_dir"]), workerinput["emuv_run_id"])
        return
    try:
        check_report_dir(settings.report_dir)
        check_machines(settings)
    except OptionError as error:
        raise pytest.UsageError(str(error)) from None
    config.stash[RUN] = RunDir.create()
    # Keep a cell's checks on one worker, so its one boot is not waited for by others.
    if getattr(config.option, "dist", "no") == "load":
        config.option.dist = "loadgroup"
    config.pluginmanager.register(MatrixReporter(config, settings, config.stash[RUN]), "emuv-matrix-reporter")


def check_machines(settings: Settings) -> None:
    """--machine names a machine of that arch's emulator: asked of libvirt once, before any worker starts."""
    if not settings.machines:
        return
    import libvirt

    try:
        conn = libvirt.open(settings.libvirt_uri)
    except libvirt.libvirtError as error:
        raise OptionError(f"--machine needs libvirt to check it, and {redact_uri(settings.libvirt_uri)} "
                          f"cannot be reached: {error}") from None
    try:
        capabilities = parse_capabilities(conn.getCapabilities())
    finally:
        conn.close()
    for arch, machine in settings.machines.items():
        offer = capabilities.offer_for(arch)
        if offer is not None and machine not in offer.machines:
            raise OptionError(f"--machine {arch}={machine}: {offer.emulator} has no such machine type; "
                              f"valid: {', '.join(offer.machine_family_names())}")


def pytest_report_header(config) -> str:
    settings, run = config.stash[SETTINGS], config.stash[RUN]
    return (f"emulation verifier: run {run.run_id} (domains emuv-{run.run_id}-*), "
            f"libvirt {redact_uri(settings.libvirt_uri)}, reports to {settings.report_dir}")


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node) -> None:
    run = node.config.stash[RUN]
    node.workerinput["emuv_run_dir"] = str(run.path)
    node.workerinput["emuv_run_id"] = run.run_id


def pytest_unconfigure(config) -> None:
    run = config.stash.get(RUN, None)
    if run is not None and getattr(config, "workerinput", None) is None:
        shutil.rmtree(run.path, ignore_errors=True)


def pytest_generate_tests(metafunc) -> None:
    if "cell" not in metafunc.fixturenames:
        return
    settings = metafunc.config.stash[SETTINGS]
    marker = metafunc.definition.get_closest_marker("arches")
    if settings.arches:
        arches = list(settings.arches)
    elif marker:
        arches = [arch_named(name).name for name in marker.args]
    else:
        arches = list(ARCHES)
    params = [
        pytest.param(CellKey(arch, accel), id=CellKey(arch, accel).id,
                     marks=pytest.mark.xdist_group(CellKey(arch, accel).id))
        for arch in arches
        for accel in settings.accels
    ]
    metafunc.parametrize("cell", params)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item) -> None:
    callspec = getattr(item, "callspec", None)
    if callspec is None or "cell" not in callspec.params:
        return
    cell: CellKey = callspec.params["cell"]
    check = item.originalname.removeprefix("test_")
    item.user_properties.append((CELL_PROPERTY, json.dumps({"arch": cell.arch, "accel": cell.accel, "check": check})))


class HarnessError(RuntimeError):
    """The harness cannot do its job (no libvirt, a build failed): cells end as errors."""


class HarnessWarning(UserWarning):
    """Something the harness cleaned up or worked around, that a user should know of."""


USES_LIBVIRT = "uses-libvirt"  # marker in the run directory: this run started domains
RECONNECT_S = 60  # how long a restarting libvirtd may take before cells end as errors


@dataclass
class Host:
    """The libvirt host of this run, as every fixture sees it."""

    conn: object
    capabilities: HostCapabilities
    settings: Settings
    run: RunDir
    store: RunStore
    cache: ImageCache
    is_local: bool

    def alive(self) -> bool:
        import libvirt

        try:
            self.conn.getLibVersion()  # a round trip: isAlive() trusts a socket not yet read
            return True
        except libvirt.libvirtError:
            return False

    def connection(self):
        """The libvirt connection, reopened if the daemon died or restarted since the last use."""
        import libvirt

        if self.alive():
            return self.conn
        deadline = time.monotonic() + RECONNECT_S
        while True:
            try:
                self.conn = libvirt.open(self.settings.libvirt_uri)
                break
            except libvirt.libvirtError as error:
                if time.monotonic() > deadline:
                    raise HarnessError(f"libvirt at {redact_uri(self.settings.libvirt_uri)} went away and did not "
                                       f"come back within {RECONNECT_S} s: {error}") from None
                time.sleep(1)
        # QEMU outlives libvirtd: the guest this process had in flight is still running.
        for leftover in sweep_own_domains(self.conn, self.run.run_id, os.getpid()):
            warnings.warn(HarnessWarning(leftover.describe()), stacklevel=1)
        return self.conn

    def facts(self, kvm: KvmVerdict | None) -> dict:
        conn = self.connection()
        return {
            "hostname": platform.node() if self.is_local else conn.getHostname(),
            "arch": self.capabilities.host_arch,
            "cpu_model": self.capabilities.cpu_model,
            "kernel": platform.release() if self.is_local else None,
            "distribution": _distribution() if self.is_local else None,
            "guest_arches": sorted(self.capabilities.guests),
            "libvirt_uri": redact_uri(self.settings.libvirt_uri),
            "libvirt_version": _version(conn.getLibVersion()),
            "hypervisor_version": _version(conn.getVersion()),
            "kvm": asdict(kvm) if kvm else None,
        }


def _distribution() -> str | None:
    try:
        text = Path("/etc/os-release").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.partition("=")[2].strip('"')
    return None


def _version(number: int) -> str:
    return f"{number // 1_000_000}.{number // 1000 % 1000}.{number % 1000}"


@pytest.fixture(scope="session")
def emuv_host(pytestconfig):
    import libvirt

    settings = pytestconfig.stash[SETTINGS]
    uri = redact_uri(settings.libvirt_uri)
    try:
        conn = libvirt.open(settings.libvirt_uri)
    except libvirt.libvirtError as error:
        raise HarnessError(
            f"cannot connect to libvirt at {uri}: {error}. Start the daemons "
            f"(as root: virtlogd -d && libvirtd -d, which ./run does) or pass another --libvirt-uri"
        ) from None
    run = pytestconfig.stash[RUN]
    (run.path / USES_LIBVIRT).touch()
    if uri_is_local(settings.libvirt_uri):
        for leftover in sweep_abandoned_domains(conn) + sweep_abandoned_run_dirs():
            warnings.warn(HarnessWarning(leftover.describe()), stacklevel=1)
    capabilities = parse_capabilities(conn.getCapabilities())
    host = Host(conn, capabilities, settings, run, RunStore(run.path), ImageCache(settings.image_cache),
                uri_is_local(settings.libvirt_uri))
    yield host
    conn.close()


@pytest.fixture(scope="session")
def kvm_verdict(emuv_host: Host) -> KvmVerdict:
    from harness.kvm_probe import probe_kvm

    def probe() -> dict:
        host_arch = ARCHES.get(emuv_host.capabilities.host_arch)
        verdict = probe_kvm(
            emuv_host.connection(),
            emuv_host.capabilities,
            lambda: emuv_host.cache.get_or_build(host_arch),
            emuv_host.run.path,
            emuv_host.run.run_id,
            emuv_host.settings.kvm_probe_timeout,
            emuv_host.is_local,
        )
        return asdict(verdict)

    return KvmVerdict(**emuv_host.store.get_or_compute("kvm-probe", probe))


@pytest.fixture
def plan(cell: CellKey, emuv_host: Host, request) -> Plan:
    settings = emuv_host.settings
    # Probe KVM only for a cell libvirt would run with KVM at all: a foreign arch is refused anyway.
    wants_probe = cell.accel == "kvm" and kvm_offered_for(emuv_host.capabilities, cell.arch) is None
    kvm = request.getfixturevalue("kvm_verdict") if wants_probe else None
    request.node.user_properties.append((HOST_PROPERTY, json.dumps(emuv_host.facts(kvm))))
    try:
        return make_plan(ARCHES[cell.arch], cell.accel, emuv_host.capabilities, kvm,
                         machine=settings.machines.get(cell.arch), timeout_factor=settings.timeout_factor,
                         timeout_s=settings.boot_timeout(cell.arch, cell.accel),
                         extra_kernel_args=settings.kernel_args.get(cell.arch, ""),
                         console_cap_mib=settings.console_cap_mib)
    except CellUnsupported as reason:
        pytest.skip(f"{cell.id} unsupported on this host: {reason}")
    except PlanError as error:
        raise HarnessError(str(error)) from None


@pytest.fixture
def image(cell: CellKey, emuv_host: Host):
    arch = ARCHES[cell.arch]
    supplied = emuv_host.settings.user_images.get(cell.arch)
    if supplied:
        return user_image(arch, *supplied)
    if not arch.has_builtin_image:
        pytest.skip(
            f"{cell.id}: no image: Debian 12 ships no {arch.name} kernel, so there is no built-in image; "
            f"supply one with --image {arch.name}=KERNEL[,INITRD] (its /init must print the EMUV-BANNER line)"
        )
    try:
        return emuv_host.cache.get_or_build(arch)
    except ImageError as error:
        raise HarnessError(f"building the {arch.name} image failed: {error}") from None


@pytest.fixture
def observation(cell: CellKey, plan: Plan, image, emuv_host: Host, request) -> Observation:
    def boot() -> dict:
        import libvirt

        try:
            seen = boot_and_observe(emuv_host.connection(), plan, image, emuv_host.run.path,
                                    emuv_host.run.run_id, emuv_host.is_local)
        except libvirt.libvirtError as error:
            seen, failure = None, error
        if not emuv_host.alive():
            # Whatever the boot saw, libvirt vanished under it: a fault of the host, not of the guest.
            return {"harness_error": f"the libvirt connection to {redact_uri(emuv_host.settings.libvirt_uri)} "
                                     f"was lost while {cell.id} booted (libvirtd died or restarted)"}
        if seen is None:
            raise HarnessError(f"libvirt failed while {cell.id} booted: {failure}")
        return seen.to_dict()

    recorded = emuv_host.store.get_or_compute(f"cell-{cell.id}", boot)
    if "harness_error" in recorded:
        raise HarnessError(recorded["harness_error"])
    seen = Observation.from_dict(recorded)
    request.node.user_properties.append((FACTS_PROPERTY, json.dumps(cell_facts(plan, seen))))
    return seen


def cell_facts(plan: Plan, seen: Observation) -> dict:
    return {
        "emulator": seen.live_emulator,
        "emulator_resolved": seen.live_emulator_real,
        "machine": plan.machine,
        "machine_canonical": seen.live_machine,
        "cpu_model": plan.cpu_model,
        "kernel_console": plan.kernel_console,
        "banner_s": seen.banner_s,
        "login_s": seen.login_s,
        "guest": seen.banner,
        "image": seen.image,
        "console_log": seen.console_log,
        "qemu_version": (seen.qemu or {}).get("qemu_version"),
        "plan": plan.summary(),
    }


@pytest.fixture
def verify(plan: Plan, observation: Observation, request):
    """verify("binary") judges one check of this cell and fails the test with the evidence."""

    def run_check(check: str):
        verdict = judge(check, plan, observation)
        request.node.user_properties.append((VERDICT_PROPERTY, json.dumps(asdict(verdict))))
        if not verdict.passed:
            pytest.fail(verdict.explain(plan, observation), pytrace=False)
        return verdict

    return run_check


class MatrixReporter:
    """Controller-only: turns the check reports into the matrix files at session end."""

    def __init__(self, config, settings: Settings, run: RunDir):
        self.config = config
        self.settings = settings
        self.run = run
        self.records: dict[str, CheckRecord] = {}
        self.host: dict = {}
        self.started = time.monotonic()
        self.started_at = datetime.now(UTC).isoformat(timespec="seconds")
        self.written: list[Path] = []
        self.cells: list = []
        self.leaks: list = []

    def pytest_runtest_logreport(self, report) -> None:
        properties = dict(report.user_properties)
        if CELL_PROPERTY not in properties:
            return
        outcome = _outcome(report)
        if outcome is None:
            return
        cell = json.loads(properties[CELL_PROPERTY])
        if HOST_PROPERTY in properties:
            host = json.loads(properties[HOST_PROPERTY])
            # Only KVM cells ask for the probe: keep its verdict whatever arrives later.
            self.host = host | {"kvm": host["kvm"] or self.host.get("kvm")}
        facts = json.loads(properties.get(FACTS_PROPERTY, "{}"))
        verdict = json.loads(properties.get(VERDICT_PROPERTY, "null"))
        detail = verdict["seen"] if verdict else _reason(report)
        self.records[report.nodeid] = CheckRecord(cell["arch"], cell["accel"], cell["check"], outcome, detail, facts)

    def pytest_sessionfinish(self, session, exitstatus) -> None:
        self.leaks = self._sweep_this_run()
        if self.leaks and exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED  # a domain outlived its test: a harness bug
        report_dir = self.settings.report_dir
        _collect_qemu_logs(self.run.run_id, report_dir)  # planted faults boot outside the matrix too
        if not self.records:
            return
        if not self.host:  # no cell reached libvirt: say what we know of this side
            self.host = {"hostname": platform.node(), "arch": platform.machine(), "cpu_model": None,
                         "libvirt_uri": redact_uri(self.settings.libvirt_uri), "kvm": None, "guest_arches": []}
        cells = aggregate(list(self.records.values()))
        cap = int(self.settings.console_cap_mib * 1024 * 1024)
        cells = [_with_copied_console(cell, report_dir, cap) for cell in cells]
        complete = exitstatus not in (pytest.ExitCode.INTERRUPTED, pytest.ExitCode.INTERNAL_ERROR)
        document = matrix_document(cells, self.host, self.started_at, time.monotonic() - self.started, complete)
        self.cells = cells
        # matrix.json first: it is the source of truth, and the one that must survive.
        self.written = [write_json(document, report_dir / "matrix.json")]
        for writer, name in ((write_junit, "junit.xml"), (write_markdown, "matrix.md"), (write_html, "matrix.html")):
            self.written.append(writer(document, report_dir / name))

    def _sweep_this_run(self) -> list:
        """Destroy any domain of this run still running: a killed worker's, or a leak."""
        if not (self.run.path / USES_LIBVIRT).exists():
            return []
        import libvirt

        try:
            conn = libvirt.open(self.settings.libvirt_uri)
        except libvirt.libvirtError:
            return []  # the daemon is gone; the next run's sweep will find them
        try:
            return sweep_run_domains(conn, self.run.run_id, "still running when its run ended")
        finally:
            conn.close()

    def pytest_terminal_summary(self, terminalreporter) -> None:
        for leak in self.leaks:
            terminalreporter.write_line(f"emulation verifier: {leak.describe()}", red=True)
        if not self.cells:
            return
        terminalreporter.section("support matrix")
        for cell in self.cells:
            boot = cell.facts.get("login_s")
            timing = f"{boot:6.2f} s" if cell.status == "pass" and boot is not None else " " * 8
            terminalreporter.write_line(f"{cell.id:18} {cell.status:12} {timing}")
            if cell.reason:
                terminalreporter.write_line(f"    {' '.join(cell.reason.split())}")
        for path in self.written:
            terminalreporter.write_line(f"wrote {path}")


def _outcome(report) -> str | None:
    if report.when == "call":
        return {"passed": "pass", "failed": "fail", "skipped": "unsupported"}[report.outcome]
    if report.skipped:
        return "unsupported"
    if report.failed:
        return "error"  # setup or teardown broke: a fault of the harness or host, not of the guest
    return None


def _reason(report) -> str:
    if report.skipped and isinstance(report.longrepr, tuple):
        return report.longrepr[2].removeprefix("Skipped: ")
    crash = getattr(report.longrepr, "reprcrash", None)
    return crash.message if crash else str(report.longrepr)[-500:]


LIBVIRT_QEMU_LOGS = Path("/var/log/libvirt/qemu")


def _collect_qemu_logs(run_id: str, report_dir: Path) -> None:
    """Move libvirt's per-domain QEMU logs of this run next to the console logs.

    They hold QEMU's own complaints (the KVM probe's internal errors), and left in
    /var/log they would pile up, one file per cell and run.
    """
    for log in LIBVIRT_QEMU_LOGS.glob(f"emuv-{run_id}-*.log"):
        target = report_dir / "qemu-logs" / log.name.removeprefix(f"emuv-{run_id}-")
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            shutil.move(log, target)
        except OSError:
            return  # not ours to move (libvirt host of another user): leave them


def _with_copied_console(cell, report_dir: Path, cap_bytes: int):
    """Keep the cell's console log with the reports; the run directory is removed at the end."""
    source = cell.facts.get("console_log")
    if not source or not Path(source).is_file():
        return cell
    target = report_dir / "consoles" / f"{cell.id}.log"
    copy_capped(Path(source), target, cap_bytes)
    facts = dict(cell.facts, console_log=str(target.relative_to(report_dir)))
    return type(cell)(cell.arch, cell.accel, cell.status, cell.reason, cell.checks, facts)
