"""What one boot of a cell's guest showed: a plain value the checks judge, read by attribute.

Shared between xdist workers as JSON (`to_dict`, `from_dict`), so its parts are plain frozen dataclasses; the
boot (archmatrix/guest/observe.py) fills them, the checks (checks.py) read them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from archmatrix.core.timeouts import seconds_said


@dataclass(frozen=True)
class QemuFacts:
    """What the running QEMU said through its monitor: the ground truth the domain XML is compared against."""

    target_arch: str  # query-target
    machine_type: str  # QOM type of /machine, e.g. "virt-7.2-machine"
    kvm_enabled: bool  # query-kvm
    kvm_present: bool
    qemu_version: str = ""  # query-version, e.g. "7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)"
    cpu_type: str | None = None  # QOM type of the first CPU, e.g. "cortex-a57-arm-cpu"
    removable_media: tuple[str, ...] = ()  # query-block: the file in each removable drive (a config drive's ISO)


@dataclass(frozen=True)
class Banner:
    """The guest's own words, as its /init printed them: `uname -m`, `uname -r` and the byte order."""

    arch: str
    release: str
    endian: str


@dataclass(frozen=True)
class SshFacts:
    """How the guest answered SSH, or why it did not."""

    port: int
    via: str  # "loopback", or a tunnel over the host's SSH
    host_key: str | None = None  # the fingerprint of the key the guest printed on its console
    answered_s: float | None = None  # domain start -> SSH answered
    connect_s: float | None = None
    error: str | None = None


@dataclass(frozen=True)
class GuestArchFacts:
    """What the guest said over SSH of what it runs on."""

    uname_m: str
    uname_status: int
    uname_error: str
    endian: str
    cpuinfo: str


@dataclass(frozen=True)
class NetworkFacts:
    """The file the guest fetched through its network, or why it could not."""

    url: str = ""
    host_port: int | None = None  # where the libvirt host served it, on its loopback (QEMU's forward goes there)
    bytes: int = 0
    expected_sha256: str = ""
    seen_sha256: str = ""
    seconds: float = 0.0
    server_requests: int = 0
    status: int = -1
    stderr: str = ""
    error: str | None = None


@dataclass(frozen=True)
class BootProgress:
    """What the console showed when a boot's bound ran out: a guest still printing (still booting, on a host
    slower than its bound allowed for) or one that had stopped, and how far it got."""

    bound_s: float
    window_s: float  # the end of the bound looked at (archmatrix/core/timeouts.py's progress_window)
    console_bytes: int  # in all, by then
    bytes_in_window: int
    last_output_s: float | None  # domain start -> the console's last byte, None: it printed nothing
    quiet_s: float | None  # the last byte -> the bound's end
    kernel_time_s: float | None = None  # the last printk timestamp it printed: how far the kernel got, its time

    @property
    def still_progressing(self) -> bool:
        return self.quiet_s is not None and self.quiet_s <= self.window_s

    def said(self) -> str:
        kernel = f", kernel time {self.kernel_time_s:.2f} s" if self.kernel_time_s is not None else ""
        bound = seconds_said(self.bound_s)
        if self.last_output_s is None:
            return f"the guest printed nothing within its {bound} s bound"
        if self.still_progressing:
            return (f"the guest was still printing when its {bound} s bound ran out: "
                    f"{self.bytes_in_window} bytes in its last {self.window_s:.1f} s, the last {self.quiet_s:.2f} s "
                    f"before the end ({self.console_bytes} bytes in all{kernel})")
        return (f"the guest had stopped printing {self.quiet_s:.1f} s before its {bound} s bound ran out "
                f"(nothing in its last {self.window_s:.1f} s; its last output {self.last_output_s:.2f} s after the "
                f"domain started{kernel})")


# Where a Nova cell ended: Nova's driver refused the image, libvirt refused Nova's domain, the guest did not
# come up, or it did and the checks judged it.
NOVA_ENDINGS = ("nova-refused", "libvirt-refused", "not-booted", "booted")


@dataclass(frozen=True)
class NovaFacts:
    """A Nova cell's domain: who wrote it, what it chose, what the boot changed of it, and where it ended."""

    version: str  # Nova's, as its driver says
    properties: dict  # the image properties the case had
    conf: dict  # the nova.conf options that were set
    ended: str = ""  # one of NOVA_ENDINGS
    detail: str = ""  # Nova's exception and message, libvirt's error, where the guest stopped
    choices: str = ""  # what Nova's XML chose, one line (archmatrix/nova/choices.py)
    required_traits: tuple[str, ...] = ()  # what the scheduler's image prefilter would require
    replaced: tuple[str, ...] = ()  # what the boot replaced of Nova's XML, and with what (a deployment's part)
    xml: str = ""  # Nova's domain XML, as its driver wrote it
    diff: str = ""  # Nova's XML against the booted one, unified
    remedy: str = ""  # for a known refusal by libvirt: which of Nova's decisions it is, what would boot it


PARTS = {"qemu": QemuFacts, "banner": Banner, "ssh": SshFacts, "guest_arch": GuestArchFacts,
         "network": NetworkFacts, "nova": NovaFacts, "boot_progress": BootProgress}


@dataclass(frozen=True)
class Observation:
    cell_id: str
    plan: dict
    image: dict
    console_log: str
    start_error: str = ""  # libvirt refused to start the domain
    live_emulator: str = ""
    live_emulator_real: str | None = None  # resolved on this machine, when the host is this machine
    expected_emulator_real: str | None = None
    live_machine: str = ""
    live_domain_type: str = ""
    process_exe: str | None = None  # real path of the running QEMU, when the host is this machine
    process_note: str = ""
    qemu: QemuFacts | None = None
    qmp_error: str = ""
    banner: Banner | None = None
    first_output_s: float | None = None  # domain start -> the console's first byte
    last_output_s: float | None = None  # domain start -> the console's last byte, while the boot watched it
    banner_s: float | None = None  # domain start -> banner
    login_s: float | None = None  # domain start -> login prompt
    boot_failure: str = ""
    boot_progress: BootProgress | None = None  # when the boot's bound ran out: still printing, or stopped
    console_tail: str = ""
    kernel_consoles: list[str] = field(default_factory=list)
    console_bytes: int = 0  # what the console stream carried in all
    kernel_on_host: str = ""  # where the libvirt host read the kernel: a staged copy or an uploaded volume
    qemu_peak_rss_kib: int | None = None  # the guest's QEMU at its login prompt (VmHWM), where readable
    boot_files_s: float | None = None  # placing kernel and initrd there (a copy, an upload, or a run's earlier one)
    # A user's image without our banner: what its kernel printed (core/kernel_evidence.py)
    kernel_evidence: dict | None = None
    ssh: SshFacts | None = None
    guest_arch: GuestArchFacts | None = None
    network: NetworkFacts | None = None
    nova: NovaFacts | None = None  # a Nova cell's

    @property
    def booted(self) -> bool:
        return self.login_s is not None

    @property
    def still_booting(self) -> bool:
        """Its boot's bound ran out while the guest was still printing: not booted, and not shown not to boot."""
        return not self.booted and self.boot_progress is not None and self.boot_progress.still_progressing

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Observation:
        known = {f.name for f in fields(cls)}
        values = {key: value for key, value in data.items() if key in known}
        for name, part in PARTS.items():
            if isinstance(values.get(name), dict):
                values[name] = part(**values[name])
        return cls(**values)
