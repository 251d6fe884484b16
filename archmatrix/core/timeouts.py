"""One timeout policy: every bound of a cell is the catalog's (or the user's) seconds times one factor.

The factor is --timeout-factor times the host's: for TCG guests the host's speed as measured at the start of the
run (archmatrix/hosts/speed_probe.py, archmatrix/core/host_speed.py), else the host's own factor (a lab host runs
its guests under nested emulation). It is applied here and only here, to every bound alike: the boot's, the SSH
phase's, the KVM probe's and its first-output bound. And here is said how much of a bound's end shows whether a
guest was still booting when it ran out (PROGRESS_SHARE).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from archmatrix.core.arch import Arch

SSH_TIMEOUT_S = {"tcg": 90.0, "kvm": 60.0}  # login prompt -> SSH answered and the network check done
KVM_PROBE_TIMEOUT_S = 20.0  # the KVM probe guest's banner
KVM_PROBE_FIRST_OUTPUT_S = 5.0  # its first console byte: a kernel under working KVM prints within a second
SPEED_PROBE_TIMEOUT_S = 60.0  # the speed probe's payload to its end: 120 times the reference machine's


# The last eighth of a boot bound: a guest whose console sent anything then was still booting when the bound ran out
# (120 s: its last 15 s). Proportional, so a host's measured slowness stretches it as it stretches the bound; a
# booting kernel prints far more often (aarch64 under TCG here: 265 lines in 1.2 s, the longest quiet 0.27 s).
PROGRESS_SHARE = 1 / 8


@dataclass(frozen=True)
class Timeouts:
    factor: float = 1.0  # --timeout-factor
    boot_overrides: dict[str, float] = field(default_factory=dict)  # "arch" or "arch-accel" -> seconds
    kvm_probe_s: float = KVM_PROBE_TIMEOUT_S
    kvm_probe_first_output_s: float = KVM_PROBE_FIRST_OUTPUT_S
    host_factor: float = 1.0  # the host's own: its KVM guests, and its TCG guests while its speed is not measured
    tcg_speed: float | None = None  # the host's TCG measured against the reference machine's (core/host_speed.py)

    def for_host(self, host_factor: float, tcg_speed: float | None = None) -> Timeouts:
        """The same policy on a host whose guests run `host_factor` times slower than this machine's, and whose
        TCG was measured `tcg_speed` times slower than the reference machine's (None: not measured)."""
        return replace(self, host_factor=host_factor, tcg_speed=tcg_speed)

    def _scale(self, accel: str) -> float:
        measured = self.tcg_speed if accel == "tcg" and self.tcg_speed is not None else None
        return self.factor * (measured if measured is not None else self.host_factor)

    def boot(self, arch: Arch, accel: str) -> float:
        """Domain start to login prompt (or a user image's success pattern)."""
        seconds = self.boot_overrides.get(f"{arch.name}-{accel}", self.boot_overrides.get(arch.name))
        return (seconds or arch.timeout_for(accel)) * self._scale(accel)

    def ssh(self, accel: str) -> float:
        return SSH_TIMEOUT_S[accel] * self._scale(accel)

    def kvm_probe(self) -> float:
        return self.kvm_probe_s * self.factor * self.host_factor

    def kvm_probe_first_output(self) -> float:
        return self.kvm_probe_first_output_s * self.factor * self.host_factor

    def speed_probe(self) -> float:
        return SPEED_PROBE_TIMEOUT_S * self.factor * self.host_factor


def seconds_said(seconds: float) -> str:
    """A bound as the verdicts say it: whole seconds from 10 s, tenths below (a planted 0.5 s bound is not "0 s")."""
    return f"{seconds:.0f}" if seconds >= 10 or seconds == int(seconds) else f"{seconds:.1f}"


def progress_window(bound_s: float) -> float:
    """How much of a bound's end is looked at for console output, when it ran out."""
    return bound_s * PROGRESS_SHARE


DEFAULT_TIMEOUTS = Timeouts()
