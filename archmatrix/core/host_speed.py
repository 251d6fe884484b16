"""How much slower a host runs TCG than the reference machine, and what that makes of its TCG bounds.

The catalog's boot bounds (and the SSH phase's) were set on the reference machine. A host measured `ratio` times
slower gets its TCG bounds multiplied by the ratio; one within NOISE_BAND of the reference keeps them (the
payload's own spread on the reference machine while it is busy). A faster host keeps them too: they are generous
there already. KVM guests do not run under TCG: their bounds keep the host's own factor.
"""

from __future__ import annotations

from dataclasses import dataclass

# The reference machine's own spread: 1.25x between the fastest and slowest of 20 probes when quiet, and a first
# payload's 1.68x while the machine was busy with others' work (load average 3.6 to 5.9 on its 2 cores).
NOISE_BAND = 2.0
MAX_FACTOR = 100.0  # as --timeout-factor's bound: a bound stays finite whatever a host measures


@dataclass(frozen=True)
class HostSpeed:
    factor: float | None  # what the host's TCG bounds are multiplied by; None: not measured
    payload: str | None = None  # the arch of the payload timed
    seconds: float | None = None  # its loop on this host, START to END on the console
    reference_s: float | None = None  # the same on the reference machine
    detail: str = ""


def measured(payload: str, seconds: float, reference_s: float) -> HostSpeed:
    ratio = seconds / reference_s
    factor = min(round(ratio, 2), MAX_FACTOR) if ratio >= NOISE_BAND else 1.0
    scaled = (f"its TCG bounds x{factor:g}" if factor > 1 else
              f"within {NOISE_BAND:g}x of it: the catalog's TCG bounds as they are")
    return HostSpeed(factor, payload, round(seconds, 3), reference_s,
                     f"the {payload} payload's loop ran {seconds:.2f} s under TCG, {ratio:.2f}x the reference "
                     f"machine's {reference_s:.2f} s: {scaled}")


def too_slow(payload: str, bound_s: float, reference_s: float) -> HostSpeed:
    """The payload did not finish within the probe's bound: the host is at least that much slower."""
    ratio = bound_s / reference_s
    factor = min(round(ratio, 2), MAX_FACTOR)
    return HostSpeed(factor, payload, None, reference_s,
                     f"the {payload} payload's loop did not end within {bound_s:.0f} s under TCG, at least "
                     f"{ratio:.0f}x the reference machine's {reference_s:.2f} s: its TCG bounds x{factor:g}")


def unmeasured(why: str) -> HostSpeed:
    return HostSpeed(None, detail=f"not measured: {why}; its TCG bounds take the host's own factor")
