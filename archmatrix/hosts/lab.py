"""Lab hosts at run time: boot one through this machine's libvirt, reach its libvirtd, stop it.

A lab host is a domain like any cell's (named and tagged with the run, swept and audited the same way), started
through the same guest path (archmatrix/guest/boot.py: its SSH port drawn and drawn again if taken, paused, its
console attached, resumed), with the virtualization extensions on, from a copy of its cached image in the run
directory. The harness reaches it only over SSH: its port 22 is forwarded to a free port of this machine's
loopback, the run's key is on its kernel command line, and its host key is read from its console and pinned. Its
libvirtd is then reached with libvirt's `ext` transport, whose command runs `virt-ssh-helper` over that SSH
(OpenSSH's client, with the pinned key as its only known host); nothing listens on any port but that loopback SSH.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from archmatrix.cleanup.names import domain_name
from archmatrix.cleanup.owner import Owner
from archmatrix.core.arch import SERIAL
from archmatrix.guest.boot import domain_alive, free_local_port, started_domain, watched
from archmatrix.guest.console import Console
from archmatrix.guest.console_log import search
from archmatrix.guest.domain import DomainSpec, domain_xml
from archmatrix.guest.reach import wait_for_ssh_server
from archmatrix.guest.reaper import wait_for_reaped
from archmatrix.hosts.lab_catalog import LabKind
from archmatrix.hosts.lab_image import LabImages
from archmatrix.hosts.lab_recipe import LabImage, LabImageError
from archmatrix.hosts.spec import HostSpec
from archmatrix.ssh.keys import RunKey, fingerprint_of_line
from archmatrix.ssh.shell import SshAccess

LOCAL_URI = "qemu:///system"  # the lab boots on this machine's libvirt
READY = re.compile(rb"ARCHMATRIX-LAB (libvirt-up|seeded|failed: [^\r\n]*)")
KERNEL_UP_TEXT = re.compile(r"ARCHMATRIX-LAB kernel-up uptime=\S+ kvm=(\w+)")  # read from the log as text
READY_TIMEOUT_S = 180.0  # unseeded, its libvirtd probes two emulators under nested emulation


class LabHostError(RuntimeError):
    """A lab host could not be built, booted or reached; the message says which and why."""


@dataclass
class LabHost:
    kind: LabKind
    spec: HostSpec
    directory: Path  # the run's copy of its image, its console log, the SSH files: removed by stop()
    boot_s: float  # domain start to a libvirtd that answers
    _running: ExitStack = field(repr=False)  # its domain, console stream and connection

    def stop(self) -> None:
        """Destroy the lab's domain (its guests go with it) and remove its files; safe to call again."""
        self._running.close()
        wait_for_reaped()  # gone before the end-of-run sweep looks for the run's domains
        shutil.rmtree(self.directory, ignore_errors=True)


def lab_domain_spec(kind: LabKind, name: str, run_id: str, owner: Owner, kernel: Path, initrd: Path, disk: Path,
                    cmdline: str, ssh_port: int | None, virtualization: bool = True) -> DomainSpec:
    """The lab host's domain: the kind's machine and CPU, its disk, a pty console, and a NIC for SSH only.

    Its TCG translation cache is QEMU's default: its own guests run under two emulators.
    """
    return DomainSpec(
        name=name, domain_type="qemu", arch=kind.arch, machine=kind.machine, emulator=kind.emulator,
        cpu_model=kind.cpu, cpu_via_qemu_args=False, memory_mib=kind.memory_mib, kernel=str(kernel),
        initrd=str(initrd), cmdline=cmdline, console=SERIAL, run_id=run_id, cell_id=f"lab-{kind.arch}",
        owner=owner, nic_device="virtio-net-pci" if ssh_port else None, ssh_port=ssh_port, disk=str(disk),
        vcpus=kind.vcpus, cpu_features=kind.cpu_features if virtualization else (), gic_version=kind.gic_version,
        machine_options=kind.machine_options if virtualization else "",  # the planted fault drops both
    )


def _copy(source: Path, target: Path) -> None:
    """A sparse copy: the root file system is mostly holes."""
    result = subprocess.run(["cp", "--sparse=always", "--reflink=auto", str(source), str(target)],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise LabHostError(f"cannot copy {source} into the run: {result.stderr.strip()}")


class _Booted:
    """A lab domain started through the guest path (SSH port drawn, paused, console attached, resumed)."""

    def __init__(self, conn, spec_for: Callable[[int | None], DomainSpec], console: Console, with_ssh: bool):
        def xml_for(port: int | None) -> str:
            return domain_xml(spec_for(port))

        self.console = console
        self.running = ExitStack()
        try:
            self.domain, self.port = self.running.enter_context(
                started_domain(conn, xml_for, free_local_port if with_ssh else None))
            self.started = self.running.enter_context(watched(conn, self.domain, console))
        except BaseException:
            self.running.close()
            raise

    def alive(self) -> bool:
        return domain_alive(self.domain)


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
        cmdline = f"console={image.kind.console} panic=-1 quiet archmatrix.lab.seed=1"
        conn = libvirt.open(LOCAL_URI)
        try:
            booted = _Booted(conn, lambda port: lab_domain_spec(image.kind, name, run_id, owner, *files, cmdline,
                                                                 port), console, with_ssh=False)
            with booted.running:
                _wait_ready(booted, READY_TIMEOUT_S, f"seeding the {image.kind.label} image")
                deadline = time.monotonic() + 60  # it syncs, remounts its root read-only and powers off
                while booted.alive() and time.monotonic() < deadline:
                    time.sleep(0.2)
                if booted.alive():
                    raise LabHostError(f"seeding the {image.kind.label} image: it did not power off within 60 s")
            wait_for_reaped()
        finally:
            console.close()
            conn.close()
        # Judged by what the file system holds, not by the console's last line (lost once as the domain ended).
        cached = _capabilities_cached(files[2])
        if not cached:
            raise LabHostError(f"seeding the {image.kind.label} image left no capabilities cache in it")
        _copy(files[2], image.disk)
        for path in files:
            path.unlink()

    return seed


def _host_key(booted: _Booted, what: str, timeout_s: float = 60.0) -> str:
    """The lab's host key line, once it says its SSH server listens (as every guest of the harness says it)."""
    key, why = wait_for_ssh_server(booted.console, time.monotonic() + timeout_s, booted.alive)
    if key is None:
        raise LabHostError(f"{what}: not reachable over SSH: {why}")
    return f"{key.get_name()} {key.get_base64()}"


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
        running = ExitStack()  # from here on, whatever fails undoes what was made
        running.callback(console.close)
        conn = libvirt.open(LOCAL_URI)
        running.callback(conn.close)
        name = domain_name(run_id, kind.label)
        cmdline = f"console={kind.console} panic=-1 quiet archmatrix.ssh_key={key.public_blob}"
        try:
            try:
                booted = _Booted(conn, lambda port: lab_domain_spec(
                    kind, name, run_id, owner, directory / "vmlinuz", directory / "stage1.cpio.gz",
                    directory / "root.ext4", cmdline, port, virtualization), console, with_ssh=True)
            except libvirt.libvirtError as error:
                raise LabHostError(f"{what}: libvirt could not start it: {error}") from None
            running.enter_context(booted.running)
            _wait_ready(booted, READY_TIMEOUT_S, what)
            host_line = _host_key(booted, what)
            kvm = search(KERNEL_UP_TEXT, console.log_path)
            boot_s = time.monotonic() - booted.started
            port = booted.port
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
                "lab_dev_kvm": kvm.group(1) if kvm else "unknown",
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
            return LabHost(kind, spec, directory, boot_s, running)
        except BaseException:
            running.close()
            wait_for_reaped()
            raise
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise
