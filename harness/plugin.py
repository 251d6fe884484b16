"""The pytest plugin: options, cell parametrization and fixtures; it registers the reporter.

Registered through the pytest11 entry point. Every test that takes the
`cell` fixture is parametrized over (arch, accelerator) with ids such as
`aarch64-tcg`, from --arch/--accel, else an `arches` marker, else the
catalog. A cell's guest boots once per run, whichever xdist worker asks
first (see harness/store.py); the controller alone writes the reports
(harness/reporter.py). The libvirt host and run directory are harness/host.py.
"""

from __future__ import annotations

import json
import shutil
import signal
import warnings
from dataclasses import asdict
from pathlib import Path

import pytest

from harness.arches import ARCHES, UnknownNameError, arch_named
from harness.capabilities import KvmVerdict, kvm_offered_for, parse_capabilities
from harness.checks import judge
from harness.guest.domain import run_prefix
from harness.guest.observe import boot_and_observe
from harness.hosts.host import USES_LIBVIRT, HarnessError, HarnessWarning, Host, RunDir, check_machines
from harness.hosts.leftovers import sweep_abandoned_domains, sweep_abandoned_run_dirs
from harness.images.cache import ImageCache, ImageError
from harness.observation import Observation
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
from harness.reporter import CELL_PROPERTY, FACTS_PROPERTY, HOST_PROPERTY, VERDICT_PROPERTY, MatrixReporter
from harness.store import RunStore

SETTINGS = pytest.StashKey[Settings]()
RUN = pytest.StashKey["RunDir"]()


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
    config.pluginmanager.register(MatrixReporter(settings, config.stash[RUN]), "emuv-matrix-reporter")


def pytest_report_header(config) -> str:
    settings, run = config.stash[SETTINGS], config.stash[RUN]
    return (f"emulation verifier: run {run.run_id} (domains {run_prefix(run.run_id)}*), "
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
    from harness.hosts.kvm_probe import probe_kvm

    def probe() -> dict:
        host_arch = ARCHES.get(emuv_host.capabilities.host_arch)
        verdict = probe_kvm(
            emuv_host.connection(),
            emuv_host.capabilities,
            lambda: emuv_host.image(host_arch),
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
    if not arch.has_builtin_image and cell.arch not in emuv_host.settings.user_images:
        pytest.skip(
            f"{cell.id}: no image: Debian 12 ships no {arch.name} kernel, so there is no built-in image; "
            f"supply one with --image {arch.name}=KERNEL[,INITRD] (its /init must print the EMUV-BANNER line)"
        )
    try:
        return emuv_host.image(arch)
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


