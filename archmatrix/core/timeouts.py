"""One timeout policy: every bound of a cell is the catalog's (or the user's) seconds times one factor.

The factor is --timeout-factor times the host's own (a lab host runs its guests under nested emulation); it is
applied here and only here, to every bound alike: the boot's, the SSH phase's, the KVM probe's and its
first-output bound.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from archmatrix.core.arch import Arch

SSH_TIMEOUT_S = {"tcg": 90.0, "kvm": 60.0}  # login prompt -> SSH answered and the network check done
KVM_PROBE_TIMEOUT_S = 20.0  # the KVM probe guest's banner
KVM_PROBE_FIRST_OUTPUT_S = 5.0  # its first console byte: a kernel under working KVM prints within a second


@dataclass(frozen=True)
class Timeouts:
    factor: float = 1.0
    boot_overrides: dict[str, float] = field(default_factory=dict)  # "arch" or "arch-accel" -> seconds
    kvm_probe_s: float = KVM_PROBE_TIMEOUT_S
    kvm_probe_first_output_s: float = KVM_PROBE_FIRST_OUTPUT_S

    def for_host(self, host_factor: float) -> Timeouts:
        """The same policy on a host whose guests run `host_factor` times slower than this machine's."""
        return Timeouts(self.factor * host_factor, self.boot_overrides, self.kvm_probe_s,
                        self.kvm_probe_first_output_s)

    def boot(self, arch: Arch, accel: str) -> float:
        """Domain start to login prompt (or a user image's success pattern)."""
        seconds = self.boot_overrides.get(f"{arch.name}-{accel}", self.boot_overrides.get(arch.name))
        return (seconds or arch.timeout_for(accel)) * self.factor

    def ssh(self, accel: str) -> float:
        return SSH_TIMEOUT_S[accel] * self.factor

    def kvm_probe(self) -> float:
        return self.kvm_probe_s * self.factor

    def kvm_probe_first_output(self) -> float:
        return self.kvm_probe_first_output_s * self.factor


DEFAULT_TIMEOUTS = Timeouts()
