"""One libvirt host of a run: its connection (reopened when libvirtd died or restarted), its capabilities, where
its guests boot (GuestSite), its SSH way in, and its facts. Nothing of the run's settings or images.

Errors here are the host's or archmatrix's, never the guest's: cells end as `error`.
"""

from __future__ import annotations

import os
import platform
import threading
import time
import warnings
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path

from archmatrix.cleanup import sweep
from archmatrix.cleanup.names import pool_name
from archmatrix.cleanup.owner import Owner
from archmatrix.core.capabilities import HostCapabilities, KvmVerdict, parse_capabilities
from archmatrix.errors import HarnessError, HarnessWarning
from archmatrix.guest.events import ensure_event_loop
from archmatrix.guest.reach import GuestNetwork
from archmatrix.guest.site import GuestSite
from archmatrix.guest.staging import StagedFiles
from archmatrix.guest.volumes import PoolFiles
from archmatrix.hosts.inspectors import LocalInspector, XmlOnlyInspector
from archmatrix.hosts.spec import UNAVAILABLE, HostSpec, redact_uri
from archmatrix.hosts.ssh import SshInspector, remote_facts
from archmatrix.ssh.keys import RunKey
from archmatrix.ssh.shell import HostShell, HostSshError

CONNECT_TIMEOUT_S = 60.0  # libvirt.open of a remote URI (an SSH or TCP handshake) has no bound of its own

FACT_DETAILS = ("container_release", "container_image", "container_qemu_package", "container_libvirt_package",
                "lab_arch", "lab_image", "lab_machine", "lab_cpu", "lab_memory_mib", "lab_vcpus", "lab_dev_kvm",
                "lab_ready_s", "lab_qemu_package", "lab_libvirt_package")


def open_libvirt(uri: str, timeout_s: float = CONNECT_TIMEOUT_S):
    """libvirt.open, bounded: an unanswering host is an error after `timeout_s`, not a hang."""
    import libvirt

    # Every libvirt error reaches archmatrix as an exception and a verdict; libvirt's default handler would print
    # it on stderr as well, between the CLI's lines.
    libvirt.registerErrorHandler(lambda _context, _error: None, None)
    outcome: dict = {}

    def connect() -> None:
        try:
            outcome["conn"] = libvirt.open(uri)
        except libvirt.libvirtError as error:
            outcome["error"] = error

    thread = threading.Thread(target=connect, name="libvirt-open", daemon=True)
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        raise libvirt.libvirtError(f"no answer within {timeout_s:.0f} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["conn"]


@dataclass
class Host:
    spec: HostSpec
    conn: object
    capabilities: HostCapabilities
    site: GuestSite
    run_id: str
    shell: HostShell | None = None
    lost: str = ""  # why the host is gone for good: later cells fail at once instead of waiting again

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
                self.conn = open_libvirt(self.spec.uri)
                break
            except libvirt.libvirtError as error:
                if time.monotonic() > deadline:
                    self.lost = (f"libvirt at {redact_uri(self.spec.uri)} (host {self.label}) went away and did "
                                 f"not come back within {self.spec.reconnect_s:.0f} s: {error}")
                    raise HarnessError(self.lost) from None
                time.sleep(1)
        # QEMU outlives libvirtd: the guest this process had in flight is still running.
        for leftover in sweep.of_process(self.conn, self.run_id, os.getpid()):
            warnings.warn(HarnessWarning(leftover.describe()), stacklevel=1)
        return self.conn

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


def open_host(spec: HostSpec, run_dir: Path, run_id: str, owner: Owner, once, several: bool = False) -> Host:
    """Connect to the host and read its capabilities; a host that cannot be reached is a HarnessError.

    `once(key, compute)` computes a value once per run across processes (the run store): a remote host's
    boot files are uploaded once.
    """
    import libvirt

    if UNAVAILABLE in spec.details:
        raise HarnessError(spec.details[UNAVAILABLE])
    ensure_event_loop()  # before the connection opens, or its streams deliver no events
    try:
        conn = open_libvirt(spec.uri)
        capabilities = parse_capabilities(conn.getCapabilities())
    except libvirt.libvirtError as error:
        hint = (" Start the daemons (as root: virtlogd -d && tools/start-libvirtd, which ./run does) or pass another "
                "--libvirt-uri" if spec.is_local else "")
        raise HarnessError(f"cannot connect to libvirt at {redact_uri(spec.uri)} (host {spec.label}): "
                           f"{error}.{hint}") from None
    shell = HostShell(spec.ssh) if spec.ssh and not spec.is_local else None
    host_dir = run_dir / spec.label
    host_dir.mkdir(exist_ok=True)
    if spec.is_local:
        boot_files, inspector = StagedFiles(host_dir), LocalInspector()
    else:
        # Uploads use the host's current connection (it is reopened after a restart): `host` is bound below.
        boot_files = PoolFiles(lambda: host.connection(), pool_name(run_id, owner), once, spec.label, host_dir)
        inspector = SshInspector(shell) if shell else XmlOnlyInspector()
    if spec.is_local or shell is not None:
        network, no_network = GuestNetwork(spec.label, RunKey.load(run_dir), shell), ""
    else:
        network, no_network = None, (f"the guests' forwarded SSH ports are on the loopback of host {spec.label}, "
                                     f"and the run has no SSH way into it to reach them (give it one: "
                                     f"--host-ssh, or a qemu+ssh:// URI)")
    site = GuestSite(run_id, host_dir, boot_files, inspector, name_tag=spec.label if several else "",
                     network=network, no_network_reason=no_network)
    host = Host(spec, conn, capabilities, site, run_id, shell)
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
