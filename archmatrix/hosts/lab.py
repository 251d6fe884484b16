"""Lab hosts at run time: boot one through this machine's libvirt, reach its libvirtd, stop it.

A lab host is a harness domain like any cell's (named and tagged with the run,
swept and audited the same way), booted with the virtualization extensions
on, from a copy of its cached image in the run directory. The harness reaches
it only over SSH: its port 22 is forwarded to a free port of this machine's
loopback, the run's key is on its kernel command line, and its host key is
read from its console and pinned. Its libvirtd is then reached with libvirt's
`ext` transport, whose command runs `virt-ssh-helper` over that SSH (OpenSSH's
client, with the pinned key as its only known host); nothing listens on any
port but that loopback SSH.
"""

from __future__ import annotations

import re
import shlex
import shutil
import socket
import subprocess
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from archmatrix.cleanup.names import domain_name, tag_domain
from archmatrix.cleanup.owner import Owner
from archmatrix.guest.console import Console, read_capped
from archmatrix.guest.console_stream import ConsoleStream
from archmatrix.guest.domain import serialized
from archmatrix.guest.lifecycle import DomainEndWatch
from archmatrix.guest.reach import host_key_line
from archmatrix.hosts.lab_catalog import LabKind
from archmatrix.hosts.lab_image import LabImage, LabImageError, LabImages
from archmatrix.hosts.spec import HostSpec
from archmatrix.ssh.keys import RunKey, fingerprint_of_line
from archmatrix.ssh.shell import SshAccess

if TYPE_CHECKING:
    import libvirt

LOCAL_URI = "qemu:///system"  # the lab boots on this machine's libvirt
READY = re.compile(rb"ARCHMATRIX-LAB (libvirt-up|seeded|failed: [^\r\n]*)")
KERNEL_UP = re.compile(rb"ARCHMATRIX-LAB kernel-up uptime=\S+ kvm=(\w+)")
READY_TIMEOUT_S = 180.0  # unseeded, its libvirtd probes two emulators under nested emulation
NETDEV_ID = "archmatrix-lab-net0"
PORT_ATTEMPTS = 3


class LabHostError(RuntimeError):
    """A lab host could not be built, booted or reached; the message says which and why."""


@dataclass
class LabHost:
    kind: LabKind
    spec: HostSpec
    directory: Path  # the run's copy of its image, its console log, the SSH files: removed by stop()
    boot_s: float  # domain start to a libvirtd that answers
    _conn: libvirt.virConnect = field(repr=False)
    _domain: libvirt.virDomain = field(repr=False)
    _stream: ConsoleStream = field(repr=False)
    _watch: DomainEndWatch = field(repr=False)
    _console: Console = field(repr=False)

    def stop(self) -> None:
        """Destroy the lab's domain (its guests go with it) and remove its files; safe to call again."""
        import libvirt

        self._watch.close()
        self._stream.close()
        self._console.close()
        try:
            self._domain.destroy()
        except libvirt.libvirtError:
            pass  # already gone
        try:
            self._conn.close()
        except libvirt.libvirtError:
            pass
        shutil.rmtree(self.directory, ignore_errors=True)


def lab_domain_xml(kind: LabKind, name: str, run_id: str, owner: Owner, kernel: Path, initrd: Path,
                   disk: Path, cmdline: str, ssh_port: int | None, virtualization: bool = True) -> str:
    """The lab host's domain: the kind's machine and CPU, its disk, a pty console, and a NIC for SSH only."""
    sub = ET.SubElement
    domain = ET.Element("domain", type="qemu")
    sub(domain, "name").text = name
    metadata = sub(domain, "metadata")
    tag_domain(metadata, run_id, f"lab-{kind.arch}", owner)
    sub(domain, "memory", unit="MiB").text = str(kind.memory_mib)
    sub(domain, "vcpu").text = str(kind.vcpus)
    os_element = sub(domain, "os")
    sub(os_element, "type", arch=kind.arch, machine=kind.machine).text = "hvm"
    sub(os_element, "kernel").text = str(kernel)
    sub(os_element, "initrd").text = str(initrd)
    sub(os_element, "cmdline").text = cmdline
    if kind.gic_version:
        sub(sub(domain, "features"), "gic", version=kind.gic_version)
    cpu = sub(domain, "cpu", mode="custom", match="exact")
    sub(cpu, "model", fallback="forbid").text = kind.cpu
    for feature in kind.cpu_features if virtualization else ():
        sub(cpu, "feature", policy="require", name=feature)
    for event in ("on_poweroff", "on_reboot", "on_crash"):
        sub(domain, event).text = "destroy"
    devices = sub(domain, "devices")
    sub(devices, "emulator").text = kind.emulator
    disk_element = sub(devices, "disk", type="file", device="disk")
    sub(disk_element, "driver", name="qemu", type="raw")
    sub(disk_element, "source", file=str(disk))
    sub(disk_element, "backingStore")  # raw, made here: nothing for libvirt to probe
    sub(disk_element, "target", dev="vda", bus="virtio")
    sub(sub(devices, "serial", type="pty"), "target", port="0")
    sub(sub(devices, "console", type="pty"), "target", type="serial", port="0")
    sub(devices, "controller", type="usb", model="none")
    sub(devices, "memballoon", model="none")
    arguments: list[str] = []
    if virtualization and kind.machine_options:  # the planted fault drops these and the CPU features
        arguments += ["-machine", kind.machine_options]
    if ssh_port is not None:
        arguments += ["-netdev", f"user,id={NETDEV_ID},hostfwd=tcp:127.0.0.1:{ssh_port}-:22",
                      # libvirt puts the disk behind root ports from slot 1 on: the NIC takes the root bus's last slot.
                      "-device", f"virtio-net-pci,netdev={NETDEV_ID},romfile=,bus={kind.nic_bus},addr={kind.nic_slot}"]
    return serialized(domain, arguments)


def _free_port() -> int:
    with socket.socket() as probe:  # free now; QEMU refuses to start if another process takes it first
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _copy(source: Path, target: Path) -> None:
    """A sparse copy: the root file system is mostly holes."""
    result = subprocess.run(["cp", "--sparse=always", "--reflink=auto", str(source), str(target)],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise LabHostError(f"cannot copy {source} into the run: {result.stderr.strip()}")


class _Booted:
    """A lab domain started paused with its console attached, then resumed."""

    def __init__(self, conn, xml: str, console: Console):
        import libvirt

        self.conn, self.console = conn, console
        self.domain = conn.createXML(xml, libvirt.VIR_DOMAIN_START_PAUSED)
        try:
            self.stream = ConsoleStream(conn, self.domain, console)
            self.watch = DomainEndWatch(conn, self.domain, console)
            self.started = time.monotonic()
            self.domain.resume()
        except BaseException:
            self.destroy()
            raise

    def alive(self) -> bool:
        import libvirt

        try:
            return bool(self.domain.isActive())
        except libvirt.libvirtError:
            return False

    def destroy(self) -> None:
        import libvirt

        for part in ("watch", "stream"):
            if hasattr(self, part):
                getattr(self, part).close()
        try:
            self.domain.destroy()
        except libvirt.libvirtError:
            pass


def _wait_ready(booted: _Booted, timeout_s: float, what: str) -> str:
    ready = booted.console.wait_for(READY, timeout_s, booted.started, booted.alive)
    if not ready.matched:
        raise LabHostError(f"{what}: its libvirtd did not come up: {ready.reason}; last console lines: "
                           f"{ready.tail[-800:]}")
    if ready.match[0].startswith("failed"):
        raise LabHostError(f"{what}: {ready.match[0]}")
    return ready.match[0]


def seed_capabilities(run_id: str, owner: Owner, scratch: Path) -> Callable[[LabImage], None]:
    """Boot a freshly built image once so that libvirtd probes its emulators into the cache the image keeps.

    It boots a copy in the run directory (QEMU runs as libvirt-qemu, which cannot read the image cache),
    and the seeded file system replaces the built one.
    """

    def seed(image: LabImage) -> None:
        import libvirt

        files = [scratch / "seed-vmlinuz", scratch / "seed-stage1.cpio.gz", scratch / "seed-root.ext4"]
        for source, target in zip((image.kernel, image.initrd, image.disk), files, strict=True):
            _copy(source, target)
        name = domain_name(run_id, f"lab-{image.kind.arch}-seed")
        console = Console(scratch / "seed-console.log")
        xml = lab_domain_xml(image.kind, name, run_id, owner, *files,
                             f"console={image.kind.console} panic=-1 quiet archmatrix.lab.seed=1", ssh_port=None)
        conn = libvirt.open(LOCAL_URI)
        try:
            booted = _Booted(conn, xml, console)
            try:
                _wait_ready(booted, READY_TIMEOUT_S, f"seeding the {image.kind.label} image")
                deadline = time.monotonic() + 60  # it syncs, remounts its root read-only and powers off
                while booted.alive() and time.monotonic() < deadline:
                    time.sleep(0.2)
                if booted.alive():
                    raise LabHostError(f"seeding the {image.kind.label} image: it did not power off within 60 s")
            finally:
                booted.destroy()
                console.close()
        finally:
            conn.close()
        # Judged by what the file system holds, not by the console's last line (lost once as the domain ended).
        cached = _capabilities_cached(files[2])
        if not cached:
            raise LabHostError(f"seeding the {image.kind.label} image left no capabilities cache in it")
        _copy(files[2], image.disk)
        for path in files:
            path.unlink()

    return seed


def _host_key(booted: _Booted, console_log: Path, what: str, timeout_s: float = 60.0) -> str:
    """The lab's host key line from its console: printed before or after its libvirtd came up."""
    deadline = time.monotonic() + timeout_s
    while True:
        line = host_key_line(read_capped(console_log))
        if line:
            return line
        if time.monotonic() >= deadline or not booted.alive():
            raise LabHostError(f"{what}: its SSH server printed no host key (ARCHMATRIX-HOSTKEY) within "
                               f"{timeout_s:.0f} s of its libvirtd")
        time.sleep(0.2)


def _capabilities_cached(disk: Path) -> list[str]:
    """The capabilities cache files in an ext4 image, read with debugfs (no mount)."""
    result = subprocess.run(["debugfs", "-R", "ls -l /var/cache/libvirt/qemu/capabilities", str(disk)],
                            capture_output=True, text=True, check=False)
    return [word for word in result.stdout.split() if word.endswith(".xml")]


def _ssh_files(directory: Path, key: RunKey, port: int, host_key: str) -> tuple[Path, str]:
    """known_hosts with exactly the lab's key, and the command libvirt's ext transport runs."""
    known_hosts = directory / "known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:{port} {host_key}\n")
    ssh = ["ssh", "-F", "none", "-o", f"UserKnownHostsFile={known_hosts}", "-o", "GlobalKnownHostsFile=/dev/null",
           "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
           "-o", "ConnectTimeout=30", "-i", str(key.private_path), "-p", str(port), "-T", "-e", "none",
           "root@127.0.0.1", "virt-ssh-helper", "qemu:///system"]
    pipe = directory / "libvirt-over-ssh"
    pipe.write_text(f"#!/bin/sh\n# libvirt's ext transport: the lab's libvirtd over SSH\nexec {shlex.join(ssh)}\n")
    pipe.chmod(0o700)
    return pipe, f"qemu+ext:///system?command={pipe}"


def start_lab_host(kind: LabKind, run_dir: Path, run_id: str, owner: Owner, cache_root: Path,
                   say: Callable[[str], None], virtualization: bool = True) -> LabHost:
    """Build (or find) the kind's image, boot it, and wait until its libvirtd answers over SSH."""
    import libvirt

    what = f"lab host {kind.label}"
    directory = run_dir / "labs" / kind.arch
    directory.mkdir(parents=True, mode=0o711)
    try:
        try:
            image = LabImages(cache_root, say).get_or_build(kind, seed_capabilities(run_id, owner, directory))
        except (LabImageError, LabHostError, libvirt.libvirtError, OSError) as error:
            raise LabHostError(f"{what}: {error}") from None
        for source, name in ((image.kernel, "vmlinuz"), (image.initrd, "stage1.cpio.gz"), (image.disk, "root.ext4")):
            _copy(source, directory / name)
        key = RunKey.load(run_dir)
        console = Console(directory / "console.log")
        conn = libvirt.open(LOCAL_URI)
        name = domain_name(run_id, kind.label)
        for attempt in range(PORT_ATTEMPTS):
            port = _free_port()
            xml = lab_domain_xml(kind, name, run_id, owner, directory / "vmlinuz", directory / "stage1.cpio.gz",
                                 directory / "root.ext4",
                                 f"console={kind.console} panic=-1 quiet archmatrix.ssh_key={key.public_blob}", port,
                                 virtualization)
            try:
                booted = _Booted(conn, xml, console)
                break
            except libvirt.libvirtError as error:
                if "host forwarding rule" not in str(error) or attempt == PORT_ATTEMPTS - 1:
                    conn.close()
                    raise LabHostError(f"{what}: libvirt could not start it: {error}") from None
        try:
            _wait_ready(booted, READY_TIMEOUT_S, what)
            host_line = _host_key(booted, console.log_path, what)
            text = read_capped(console.log_path)
            kvm = KERNEL_UP.search(text.encode())
            boot_s = time.monotonic() - booted.started
            pipe, uri = _ssh_files(directory, key, port, host_line)
            ssh = SshAccess("root", "127.0.0.1", port, key=str(key.private_path),
                            fingerprint=fingerprint_of_line(host_line))
            spec = HostSpec(kind.label, uri, "lab", ssh, details={
                "lab_arch": kind.arch,
                "lab_image": image.key,
                "lab_machine": ",".join([kind.machine] + ([kind.machine_options] if virtualization and
                                                           kind.machine_options else [])),
                "lab_cpu": "+".join([kind.cpu] + (list(kind.cpu_features) if virtualization else [])),
                "lab_memory_mib": kind.memory_mib,
                "lab_vcpus": kind.vcpus,
                "lab_dev_kvm": kvm.group(1).decode() if kvm else "unknown",
                "lab_ready_s": round(boot_s, 1),
                "timeout_factor": kind.timeout_factor,
                "tcg_slowdown": kind.tcg_slowdown,
                # Its KVM probe boots quiet: every console byte of a KVM guest is an exit the emulated lab handles.
                "kvm_probe_quiet": True,
                "lab_qemu_package": image.version_of(kind.emulator_packages[0]),
                "lab_libvirt_package": image.version_of("libvirt-daemon"),
            })
            say(f"{what} ready in {boot_s:.1f} s (libvirtd over SSH on 127.0.0.1:{port}, /dev/kvm "
                f"{spec.details['lab_dev_kvm']})")
            return LabHost(kind, spec, directory, boot_s, conn, booted.domain, booted.stream, booted.watch, console)
        except BaseException:
            booted.destroy()
            conn.close()
            raise
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise
