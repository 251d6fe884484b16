"""This run's libvirt hosts and scratch space, as every fixture sees them.

The connection is checked before use and reopened when libvirtd died or
restarted; the guest this process had in flight is then destroyed (QEMU
outlives libvirtd). Errors here are the host's or the harness's, never the
guest's: cells end as `error`.
"""

from __future__ import annotations

import os
import platform
import secrets
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path

from archmatrix.cleanup import sweep
from archmatrix.cleanup.names import RUN_DIR_PREFIX, pool_name, read_owner_file, write_owner_file
from archmatrix.cleanup.owner import Owner
from archmatrix.core.arches import Arch
from archmatrix.core.capabilities import HostCapabilities, KvmVerdict, parse_capabilities
from archmatrix.guest.events import ensure_event_loop
from archmatrix.guest.reach import GuestNetwork
from archmatrix.guest.site import GuestSite
from archmatrix.guest.staging import StagedFiles
from archmatrix.guest.volumes import PoolFiles
from archmatrix.hosts.container_hosts import UNAVAILABLE
from archmatrix.hosts.inspectors import LocalInspector, XmlOnlyInspector
from archmatrix.hosts.spec import HostSpec, redact_uri
from archmatrix.hosts.ssh import SshInspector, remote_facts
from archmatrix.images.cache import Image, ImageCache, ImageError, user_disk_image, user_image
from archmatrix.images.disk_build import firmware_disk_image
from archmatrix.options import OptionError, Settings
from archmatrix.run.store import RunStore
from archmatrix.ssh.keys import RunKey
from archmatrix.ssh.shell import HostShell, HostSshError


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
        write_owner_file(path, Owner.of_this_process())
        RunKey.create(path)  # the guests' SSH key pair, for every worker of the run
        return cls(path, run_id)

    def owner(self) -> Owner:
        """The process that owns the run (the pytest controller): what a crashed run's leftovers are told by."""
        owner = read_owner_file(self.path)
        assert owner is not None, f"the run directory {self.path} has no owner file"
        return owner


def check_machines(settings: Settings) -> None:
    """--machine names a machine of that arch's emulator: asked of each local host's libvirt, before any worker starts.

    Remote and container hosts are asked when their cells plan: a machine type
    they lack makes those cells errors, naming the valid ones.
    """
    if not settings.machines:
        return
    import libvirt

    for spec in settings.hosts:
        if not spec.is_local:
            continue
        try:
            conn = libvirt.open(spec.uri)
        except libvirt.libvirtError as error:
            raise OptionError(f"--machine needs libvirt to check it, and {redact_uri(spec.uri)} "
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


class HarnessError(RuntimeError):
    """The harness cannot do its job (no libvirt, a build failed): cells end as errors."""


class HarnessWarning(UserWarning):
    """Something the harness cleaned up or worked around, that a user should know of."""


USES_LIBVIRT = "uses-libvirt"  # marker in the run directory: this run started domains


@dataclass
class Host:
    """One libvirt host of this run, as every fixture of this process sees it."""

    spec: HostSpec
    conn: object
    capabilities: HostCapabilities
    settings: Settings
    run: RunDir
    store: RunStore
    cache: ImageCache
    site: GuestSite
    shell: HostShell | None = None
    lost: str = ""  # why the host is gone for good: later cells fail at once instead of waiting again
    _images: dict[str, Image] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return self.spec.label

    @property
    def is_local(self) -> bool:
        return self.spec.is_local

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

        if self.lost:
            raise HarnessError(self.lost)
        if self.alive():
            return self.conn
        deadline = time.monotonic() + self.spec.reconnect_s
        while True:
            try:
                self.conn = libvirt.open(self.spec.uri)
                break
            except libvirt.libvirtError as error:
                if time.monotonic() > deadline:
                    self.lost = (f"libvirt at {redact_uri(self.spec.uri)} (host {self.label}) went away and did "
                                 f"not come back within {self.spec.reconnect_s:.0f} s: {error}")
                    raise HarnessError(self.lost) from None
                time.sleep(1)
        # QEMU outlives libvirtd: the guest this process had in flight is still running.
        for leftover in sweep.of_process(self.conn, self.run.run_id, os.getpid()):
            warnings.warn(HarnessWarning(leftover.describe()), stacklevel=1)
        return self.conn

    def image(self, arch: Arch) -> Image:
        """The arch's image, user-supplied or built-in, verified once per process (every test asks)."""
        supplied = self.settings.user_images.get(arch.name)
        if not supplied:
            return self._built_once(arch.name, lambda: self.cache.get_or_build(arch))
        if arch.name not in self._images:
            is_disk = arch.name in self.settings.user_disks
            self._images[arch.name] = user_disk_image(arch, supplied[0]) if is_disk else user_image(arch, *supplied)
        return self._images[arch.name]

    def firmware_disk(self, arch: Arch) -> Image:
        """The built-in image on the disk its arch's firmware boots (--boot-from disk)."""
        return self._built_once(f"disk-{arch.name}", lambda: firmware_disk_image(self.cache, arch, self.image(arch)))

    def _built_once(self, key: str, build: Callable[[], Image]) -> Image:
        """Built (or its build failed) once per run, whichever worker asks first: a failed build fails that
        arch's cells with its reason, and is not tried again for each of their checks."""
        if key not in self._images:
            outcome = self.store.get_or_compute(f"image-{key}", lambda: self._build_outcome(key, build))
            if "error" in outcome:
                raise ImageError(outcome["error"])
            if key not in self._images:  # another worker built it: a cache hit now
                self._images[key] = build()
        return self._images[key]

    def _build_outcome(self, key: str, build: Callable[[], Image]) -> dict:
        try:
            self._images[key] = build()
        except ImageError as error:
            return {"error": str(error)}
        return {}

    def facts(self, kvm: KvmVerdict | None) -> dict:
        return self._static_facts | {"kvm": asdict(kvm) if kvm else None}

    @cached_property
    def _static_facts(self) -> dict:
        conn = self.connection()
        facts = {
            "label": self.spec.label,
            "kind": self.spec.kind,
            "hostname": platform.node() if self.is_local else conn.getHostname(),
            "arch": self.capabilities.host_arch,
            "cpu_model": self.capabilities.cpu_model,
            "kernel": platform.release() if self.is_local else None,
            "distribution": _distribution() if self.is_local else None,
            "guest_arches": sorted(self.capabilities.guests),
            "libvirt_uri": redact_uri(self.spec.uri),
            "libvirt_version": _version(conn.getLibVersion()),
            "hypervisor_version": _version(conn.getVersion()),
            "ssh": self.spec.ssh.where() if self.spec.ssh else None,
        }
        if self.shell is not None:
            try:
                facts |= remote_facts(self.shell)
            except HostSshError as error:
                facts["ssh_error"] = str(error)
        return facts | {key: value for key, value in self.spec.details.items() if key in FACT_DETAILS}

    def close(self) -> None:
        if self.site.network is not None:
            self.site.network.close()
        if self.shell is not None:
            self.shell.close()
        try:
            self.conn.close()
        except Exception:  # noqa: BLE001 - a connection to a vanished daemon may fail to close in several ways
            pass


FACT_DETAILS = ("container_release", "container_image", "container_qemu_package", "container_libvirt_package",
                "lab_arch", "lab_image", "lab_machine", "lab_cpu", "lab_memory_mib", "lab_vcpus", "lab_dev_kvm",
                "lab_ready_s", "lab_qemu_package", "lab_libvirt_package")


def open_host(spec: HostSpec, settings: Settings, run: RunDir, store: RunStore, cache: ImageCache,
              several: bool = False) -> Host:
    """Connect to the host and read its capabilities; a host that cannot be reached is a HarnessError."""
    import libvirt

    if UNAVAILABLE in spec.details:
        raise HarnessError(spec.details[UNAVAILABLE])
    ensure_event_loop()  # before the connection opens, or its streams deliver no events
    try:
        conn = libvirt.open(spec.uri)
        capabilities = parse_capabilities(conn.getCapabilities())
    except libvirt.libvirtError as error:
        hint = (" Start the daemons (as root: virtlogd -d && tools/start-libvirtd, which ./run does) or pass another "
                "--libvirt-uri" if spec.is_local else "")
        raise HarnessError(f"cannot connect to libvirt at {redact_uri(spec.uri)} (host {spec.label}): "
                           f"{error}.{hint}") from None
    shell = HostShell(spec.ssh) if spec.ssh and not spec.is_local else None
    host_dir = run.path / spec.label
    host_dir.mkdir(exist_ok=True)
    if spec.is_local:
        boot_files, inspector = StagedFiles(host_dir), LocalInspector()
    else:
        pool = pool_name(run.run_id, run.owner())
        # Uploads use the host's current connection (it is reopened after a restart): `host` is bound below.
        boot_files = PoolFiles(lambda: host.connection(), pool, store.get_or_compute, spec.label)
        inspector = SshInspector(shell) if shell else XmlOnlyInspector()
    if spec.is_local or shell is not None:
        network, no_network = GuestNetwork(spec.label, RunKey.load(run.path), shell), ""
    else:
        network, no_network = None, (f"the guests' forwarded SSH ports are on the loopback of host {spec.label}, "
                                     f"and the run has no SSH way into it to reach them (give it one: "
                                     f"--host-ssh, or a qemu+ssh:// URI)")
    site = GuestSite(run.run_id, host_dir, boot_files, inspector, name_tag=spec.label if several else "",
                     network=network, no_network_reason=no_network)
    host = Host(spec, conn, capabilities, settings, run, store, cache, site, shell)
    return host


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
