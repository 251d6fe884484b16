"""The run's options, checked, as one value: what every part of a run reads of them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from archmatrix.core.timeouts import Timeouts
from archmatrix.hosts.spec import HostSpec
from archmatrix.nova.environment import DEFAULT_VERSION as NOVA_VERSION

# TCG's translation cache per guest. QEMU's default is 1 GiB; these boots fill less than 32 MiB of it
# (peak RSS and boot time alike at 16, 32, 64, 256 MiB and the default, measured per built-in arch), and
# 64 MiB bounds what many guests at once can take, as Nova's [libvirt]tb_cache_size does.
DEFAULT_TB_CACHE_MIB = 64


@dataclass(frozen=True)
class Settings:
    arches: tuple[str, ...]  # empty: the catalog's default arches (or a test's marker)
    accels: tuple[str, ...]
    hosts: tuple[HostSpec, ...]  # the libvirt hosts given (or this machine); container hosts come on top
    image_cache: Path
    report_dir: Path
    user_images: dict[str, tuple[Path, Path | None]] = field(default_factory=dict)  # a disk: (disk, None)
    user_disks: frozenset[str] = frozenset()  # arches whose --image is a disk, booted through the firmware
    boot_from: str = "kernel"  # the built-in images: "kernel" (libvirt's direct boot) or "disk" (the firmware's)
    machines: dict[str, str] = field(default_factory=dict)
    kvm_probe_timeout: float = 20.0
    kvm_probe_first_output: float = 5.0
    timeout_factor: float = 1.0
    boot_timeouts: dict[str, float] = field(default_factory=dict)  # "arch" or "arch-accel" -> seconds
    kernel_args: dict[str, str] = field(default_factory=dict)
    success_patterns: dict[str, str] = field(default_factory=dict)  # arch -> regex its --image shows when up
    # arch -> Nova image properties: its cells boot what Nova's libvirt driver would (archmatrix/nova/plan.py)
    image_properties: dict[str, dict[str, str]] = field(default_factory=dict)
    console_cap_mib: float = 64.0
    tb_cache_mib: int = DEFAULT_TB_CACHE_MIB  # 0: QEMU's own default
    container_releases: tuple[str, ...] = ()
    lab_hosts: tuple[str, ...] = ()  # arches of the lab hosts the run boots (archmatrix/hosts/lab_catalog.py)
    lab_without_kvm: bool = False  # a planted fault: lab hosts boot without the virtualization extensions
    nova: bool = False  # also every cell with the domain Nova's own driver writes (archmatrix/nova/cells.py)
    nova_version: str = NOVA_VERSION
    nova_conf: dict[str, str] = field(default_factory=dict)  # "section.option" -> value, as nova.conf has it
    nova_config_drive: bool = True  # the Nova cells' instances ask for a config drive

    def timeouts(self, host_factor: float = 1.0, tcg_speed: float | None = None) -> Timeouts:
        """The run's one timeout policy (archmatrix/core/timeouts.py), on a host `host_factor` times slower, whose
        TCG was measured `tcg_speed` times slower than the reference machine's."""
        return Timeouts(self.timeout_factor, self.boot_timeouts, self.kvm_probe_timeout,
                        self.kvm_probe_first_output).for_host(host_factor, tcg_speed)
