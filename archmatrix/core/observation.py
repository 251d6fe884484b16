"""What one boot of a cell's guest showed: a plain value the checks judge.

Shared between xdist workers as JSON, so it holds only plain data.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


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
    qemu: dict | None = None  # QemuAnswers, as QEMU's monitor gave them
    qmp_error: str = ""
    banner: dict | None = None  # arch, release, endian as the guest printed them
    first_output_s: float | None = None  # domain start -> the console's first byte
    banner_s: float | None = None  # domain start -> banner
    login_s: float | None = None  # domain start -> login prompt
    boot_failure: str = ""
    console_tail: str = ""
    kernel_consoles: list[str] = field(default_factory=list)
    console_bytes: int = 0  # what the console stream carried in all
    kernel_on_host: str = ""  # where the libvirt host read the kernel: a staged copy or an uploaded volume
    qemu_peak_rss_kib: int | None = None  # the guest's QEMU at its login prompt (VmHWM), where readable
    boot_files_s: float | None = None  # placing kernel and initrd there (a copy, an upload, or a run's earlier one)
    # A user's image without our banner: what its kernel printed (archmatrix/core/kernel_evidence.py)
    kernel_evidence: dict | None = None
    # Over SSH (archmatrix/guest/reach.py): how it answered, what the guest said it runs on, the file it fetched.
    ssh: dict | None = None
    guest_arch: dict | None = None
    network: dict | None = None

    @property
    def booted(self) -> bool:
        return self.login_s is not None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Observation:
        return cls(**data)
