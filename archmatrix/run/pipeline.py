"""A run's cells without pytest: plan -> image -> boot and observe (once) -> judge -> the facts for the reports.

The pytest plugin's fixtures, the command line (`archmatrix cell`) and the benchmarks all go through a `Run`.
Every value a cell needs is computed once per run, whichever process asks first (the run store): one KVM probe
per host, one boot per cell, one build per image, one upload per file and host. A boot that fails for any
reason is recorded as that failure, so each of the cell's checks reports it without booting again.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import asdict

from archmatrix.cleanup import sweep
from archmatrix.cleanup.names import run_prefix
from archmatrix.core.arches import ARCHES
from archmatrix.core.capabilities import KvmVerdict, kvm_offered_for
from archmatrix.core.checks import SSH_CHECKS, Verdict, judge
from archmatrix.core.host_speed import HostSpeed, unmeasured
from archmatrix.core.observation import Observation
from archmatrix.core.plan import CellKey, CellUnsupported, NovaChoice, Plan, PlanError, make_plan
from archmatrix.core.timeouts import Timeouts
from archmatrix.errors import HarnessError, HarnessWarning
from archmatrix.guest.observe import boot_and_observe
from archmatrix.guest.reaper import wait_for_reaped
from archmatrix.hosts.host import Host, open_host
from archmatrix.hosts.spec import HostSpec, redact_uri
from archmatrix.images.cache import ImageCache
from archmatrix.images.image import Image, ImageError
from archmatrix.run.facts import cell_facts
from archmatrix.run.images import RunImages
from archmatrix.run.nova_cells import NovaCells
from archmatrix.run.rundir import USES_LIBVIRT, RunDir
from archmatrix.run.store import RunStore


def _silent(line: str) -> None:
    pass


class Run:
    def __init__(self, settings, run_dir: RunDir, specs: list[HostSpec],
                 progress: Callable[[str], None] = _silent, announce: bool = True):
        self.settings = settings
        self.run_dir = run_dir
        self.specs = {spec.label: spec for spec in specs}
        self.progress = progress
        self.announce = announce  # say the run's id and where its domains and reports go, once it is made
        self._store: RunStore | None = None
        self._images: RunImages | None = None
        self._hosts: dict[str, Host] = {}
        self._unreachable: dict[str, str] = {}
        self.nova = NovaCells(self)

    # --- the run directory, made when the first cell needs it ---------------------------------------

    def _ensure(self) -> RunStore:
        if self._store is None:
            if self.run_dir.ensure() and self.announce:
                self.progress(f"archmatrix: run {self.run_dir.run_id} (domains {run_prefix(self.run_dir.run_id)}*), "
                              f"reports to {self.settings.report_dir}")
            for leftover in sweep.abandoned_here():
                warnings.warn(HarnessWarning(leftover.describe()), stacklevel=2)
            self._store = RunStore(self.run_dir.path)
        return self._store

    @property
    def store(self) -> RunStore:
        return self._ensure()

    @property
    def images(self) -> RunImages:
        if self._images is None:
            cache = ImageCache(self.settings.image_cache, progress=self.progress)
            self._images = RunImages(self.settings.user_images, self.settings.user_disks, cache,
                                     self.store.get_or_compute)
        return self._images

    # --- hosts --------------------------------------------------------------------------------------

    def host(self, label: str) -> Host:
        """The host, connected on first use in this process; an unreachable one is remembered."""
        if label in self._unreachable:
            raise HarnessError(self._unreachable[label])
        if label not in self._hosts:
            store = self.store
            spec = self.specs[label]
            try:
                host = open_host(spec, self.run_dir.path, self.run_dir.run_id, self.run_dir.owner,
                                 store.get_or_compute, several=len(self.specs) > 1)
            except HarnessError as error:
                self._unreachable[label] = str(error)
                raise
            (self.run_dir.path / USES_LIBVIRT).touch()
            for leftover in sweep.abandoned_on_host(host.conn):
                warnings.warn(HarnessWarning(leftover.describe("" if host.is_local else label)), stacklevel=2)
            self._hosts[label] = host
        return self._hosts[label]

    def first_host(self) -> Host:
        return self.host(next(iter(self.specs)))

    def kvm_verdict(self, host: Host) -> KvmVerdict:
        """The host's KVM probe, once per run and host whichever process asks first."""
        from archmatrix.hosts.kvm_probe import probe_kvm

        def probe() -> dict:
            host_arch = ARCHES.get(host.capabilities.host_arch)
            timeouts = self.settings.timeouts(host.spec.timeout_factor)
            verdict = probe_kvm(host.connection(), host.capabilities, lambda: self.images.of(host_arch), host.site,
                                timeouts.kvm_probe(), host.is_local, timeouts.kvm_probe_first_output(),
                                quiet=bool(host.spec.details.get("kvm_probe_quiet")))
            return asdict(verdict)

        return KvmVerdict(**self.store.get_or_compute(f"kvm-probe-{host.label}", probe))

    def host_speed(self, host: Host) -> HostSpeed:
        """How much slower than the reference machine the host runs TCG: measured once per run and host, whichever
        process asks first (archmatrix/hosts/speed_probe.py)."""
        import libvirt

        from archmatrix.hosts.speed_probe import probe_speed

        def probe() -> dict:
            bound = self.settings.timeouts(host.spec.timeout_factor).speed_probe()
            try:
                return asdict(probe_speed(host.connection(), host.capabilities, host.site, bound))
            except libvirt.libvirtError as error:  # the host's own fault: its cells will say so themselves
                return asdict(unmeasured(f"libvirt failed while the speed probe booted: {error}"))

        return HostSpeed(**self.store.get_or_compute(f"speed-probe-{host.label}", probe))

    def timeouts(self, host: Host, accel: str) -> Timeouts:
        """The cell's bounds on `host`: a TCG cell's from the host's measured speed (a KVM cell needs no probe)."""
        speed = self.host_speed(host).factor if accel == "tcg" else None
        return self.settings.timeouts(host.spec.timeout_factor, speed)

    # --- one cell -----------------------------------------------------------------------------------

    def _kvm_of(self, cell: CellKey, host: Host) -> KvmVerdict | None:
        """The host's KVM verdict, for a cell libvirt would run with KVM at all (a foreign arch is refused anyway)."""
        wants_probe = cell.accel == "kvm" and kvm_offered_for(host.capabilities, cell.arch) is None
        return self.kvm_verdict(host) if wants_probe else None

    def host_facts(self, cell: CellKey) -> dict:
        """The cell's host as the reports show it, with the KVM probe's verdict when the cell needed one (even
        when the cell then turns out unsupported: the verdict is the host's finding), the speed probe's with a TCG
        cell, and with a Nova cell, the traits Nova's own driver reports for the host."""
        host = self.host(cell.host)
        facts = host.facts(self._kvm_of(cell, host))
        if cell.accel == "tcg":
            facts["tcg_speed"] = asdict(self.host_speed(host))
        if cell.nova:
            answers = self.nova.answers(host)
            facts["nova"] = {"version": answers["version"], "traits": answers["traits"]}
        return facts

    def plan(self, cell: CellKey) -> Plan:
        """The cell's plan. CellUnsupported: the host cannot run it (the reason says why); HarnessError: the host
        or archmatrix failed."""
        host = self.host(cell.host)
        if cell.nova:
            return self.nova.plan(cell, host, self.timeouts)
        settings = self.settings
        kvm = self._kvm_of(cell, host)
        nova = self._nova_choice(cell, host) if cell.arch in settings.image_properties else None
        try:
            return make_plan(ARCHES[cell.arch], cell.accel, host.capabilities, kvm,
                             machine=settings.machines.get(cell.arch),
                             timeouts=self.timeouts(host, cell.accel),
                             extra_kernel_args=settings.kernel_args.get(cell.arch, ""),
                             console_cap_mib=settings.console_cap_mib, tb_cache_mib=settings.tb_cache_mib,
                             user_image=cell.arch in settings.user_images,
                             success_pattern=settings.success_patterns.get(cell.arch), nova=nova,
                             boot=self._boot_of(cell.arch, host))
        except CellUnsupported as reason:
            raise CellUnsupported(f"{cell.id} unsupported on {cell.host}: {reason}") from None
        except PlanError as error:
            raise HarnessError(f"{cell.host}: {error}") from None

    def _boot_of(self, arch: str, host: Host) -> str:
        """"disk" for a user's disk or --boot-from disk; such a cell boots only on this machine's libvirt so far."""
        settings = self.settings
        disk = arch in settings.user_disks or (settings.boot_from == "disk" and arch not in settings.user_images)
        if disk and not host.is_local:
            raise HarnessError(f"{arch} on {host.label}: disk images boot on this machine's libvirt only so far "
                               f"(the run's pool on a remote host takes kernels and initrds, not a disk for each "
                               f"cell)")
        return "disk" if disk else "kernel"

    def _nova_choice(self, cell: CellKey, host: Host) -> NovaChoice:
        """What Nova's libvirt driver would boot for the cell arch's image properties on this host.

        A cell whose properties would not boot there (another guest arch, a machine of another arch, no UEFI
        firmware, ...) stops before its boot, naming the property and the fix.
        """
        from archmatrix.nova.plan import blocking, choice_of, firmware_capabilities, plan_for_image

        properties = self.settings.image_properties[cell.arch]
        virt_type = "kvm" if cell.accel == "kvm" else "qemu"
        nova = plan_for_image(properties, host.capabilities, virt_type,
                              firmware_capabilities(host.connection(), host.capabilities, properties, virt_type))
        if nova.guest_arch != cell.arch:
            raise HarnessError(f"{cell.id} on {cell.host}: its image properties make Nova boot a {nova.guest_arch} "
                               f"guest (from {nova.guest_arch_from}), not {cell.arch}: set "
                               f"hw_emulation_architecture={cell.arch}")
        problems = blocking(nova)
        if problems:
            raise HarnessError(f"{cell.id} on {cell.host}: Nova would not boot this image here: "
                               + "; ".join(f"[{p.code}] {p.problem} (fix: {p.fix})" for p in problems))
        if nova.firmware.startswith("uefi") and not host.is_local:
            raise HarnessError(f"{cell.id} on {cell.host}: UEFI cells boot on this machine's libvirt only so far "
                               f"(their variable store is a file of the run here)")
        return choice_of(nova)

    def image(self, cell: CellKey, plan: Plan) -> Image:
        arch = ARCHES[cell.arch]
        if not arch.has_builtin_image and cell.arch not in self.settings.user_images:
            raise CellUnsupported(
                f"{cell.id}: no image: {arch.no_image_reason}; supply one with --image {arch.name}=KERNEL[,INITRD] "
                f"(and --success-pattern {arch.name}=REGEX if its console shows no login prompt once it is up)")
        try:
            built = self.images.of(arch)
            if plan.boot == "disk" and built.disk is None:
                built = self.images.firmware_disk(arch)
        except ImageError as error:
            raise HarnessError(str(error)) from None  # it names the arch and what failed
        for note in built.warnings:  # a fallback release, a damaged cache entry rebuilt: said on every run
            warnings.warn(HarnessWarning(f"the {arch.name} image: {note}"), stacklevel=2)
        return built

    def observe(self, cell: CellKey, plan: Plan, image: Image, with_ssh: bool = True) -> Observation:
        """The cell's one boot, whichever process asks first; a boot that failed is that failure, every time."""
        host = self.host(cell.host)

        def boot() -> dict:
            import libvirt

            try:
                if cell.nova:
                    seen = Observation.from_dict(self.nova.observe(cell, plan, image, with_ssh))
                else:
                    seen = boot_and_observe(host.connection(), plan, image, host.site, with_ssh=with_ssh)
            except libvirt.libvirtError as error:
                if not host.alive():
                    return {"harness_error": self._lost(cell, host)}
                return {"harness_error": f"libvirt on {cell.host} failed while {cell.id} booted: {error}"}
            except HarnessError as error:
                if not host.alive():  # a reconnect inside the boot (its SSH phase, say) found the host gone
                    return {"harness_error": self._lost(cell, host)}
                return {"harness_error": str(error)}
            except Exception as error:  # noqa: BLE001 - outside libvirt (a copy, a disk's command line, QMP):
                # recorded once, so that the cell's other checks report it instead of booting again
                return {"harness_error": f"{cell.id} on {cell.host} could not be booted: "
                                         f"{type(error).__name__}: {error}"}
            if not host.alive():
                # Whatever the boot saw, libvirt vanished under it: a fault of the host, not of the guest.
                return {"harness_error": self._lost(cell, host)}
            return seen.to_dict()

        recorded = self.store.get_or_compute(f"cell-{cell.host}-{cell.id}", boot)
        if "harness_error" in recorded:
            raise HarnessError(recorded["harness_error"])
        return Observation.from_dict(recorded)

    @staticmethod
    def _lost(cell: CellKey, host: Host) -> str:
        return (f"the libvirt connection to {redact_uri(host.spec.uri)} (host {cell.host}) was lost while {cell.id} "
                f"booted (libvirtd died or restarted, or the host went away)")

    def no_ssh_reason(self, plan: Plan, cell: CellKey) -> str | None:
        """Why this cell's guest cannot be reached over SSH on its host, or None."""
        if plan.no_ssh_reason:
            return f"{plan.arch}: {plan.no_ssh_reason}"
        site = self.host(cell.host).site
        return site.no_network_reason if site.network is None else None

    def verdict(self, cell: CellKey, check: str, plan: Plan, observation: Observation) -> Verdict:
        """One check's verdict; CellUnsupported for an SSH check of a guest that cannot be reached."""
        if check in SSH_CHECKS:
            reason = self.no_ssh_reason(plan, cell)
            if reason:
                raise CellUnsupported(f"{plan.cell_id} {check} unsupported: {reason}")
        return judge(check, plan, observation)

    def live_guest(self, cell: CellKey, plan: Plan, image: Image):
        """A running guest of the cell, reached over SSH (the `guest` fixture's); CellUnsupported without SSH."""
        from archmatrix.guest.live import LiveGuest

        reason = self.no_ssh_reason(plan, cell)
        if reason:
            raise CellUnsupported(f"{plan.cell_id}: no guest to log in to: {reason}")
        host = self.host(cell.host)
        return LiveGuest(host.connection(), plan, image, host.site)

    def close(self) -> None:
        wait_for_reaped()  # the guests destroyed in the background, before their connections close
        for host in self._hosts.values():
            host.close()


def judge_cell(run: Run, cell: CellKey, checks: tuple[str, ...], with_ssh: bool = True) -> dict:
    """Every one of `checks` for a cell, as pytest's fixtures would give them, without pytest.

    {"outcomes": {check: (outcome, detail)}, "facts": cell facts or {}, "host": host facts or None,
     "plan": the Plan or None, "observation": the Observation or None}; outcomes are pass, fail, inconclusive,
    unsupported or error, as the matrix counts them.
    """
    result: dict = {"outcomes": {}, "facts": {}, "host": None, "plan": None, "observation": None}
    try:
        result["host"] = run.host_facts(cell)
        plan = result["plan"] = run.plan(cell)
        image = run.image(cell, plan)
        seen = run.observe(cell, plan, image, with_ssh=with_ssh)
    except CellUnsupported as reason:
        result["outcomes"] = {check: ("unsupported", str(reason)) for check in checks}
        return result
    except HarnessError as error:
        result["outcomes"] = {check: ("error", str(error)) for check in checks}
        return result
    result["observation"] = seen
    result["facts"] = cell_facts(plan, seen)
    for check in checks:
        try:
            verdict = run.verdict(cell, check, plan, seen)
        except CellUnsupported as reason:
            result["outcomes"][check] = ("unsupported", str(reason))
            continue
        result["outcomes"][check] = (verdict.outcome, verdict.seen)
    return result
