"""Numbers a person gives: written plainly, finite, and within a stated range.

`value <= 0` let NaN through (every comparison with NaN is false): a NaN deadline made the console and
SSH waits spin for a guest's whole life. Every number archmatrix takes passes check_number instead.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from archmatrix.inputs import InputError, at, shown

# What a person writes: no "nan", "inf", "0x10", "1_000" or spaces, which float() and int() would take.
DECIMAL = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
WHOLE = re.compile(r"[+-]?\d+")
LONGEST_WHOLE = 18  # digits: past any range here, and short of int()'s own limit on long text


@dataclass(frozen=True)
class Bounds:
    """A range of valid numbers, and how a message states it."""

    low: float
    high: float
    unit: str = ""  # "seconds", "MiB": "a number of seconds ..."
    above_low: bool = False  # low itself is not valid ("greater than 0")
    whole: bool = False
    note: str = ""  # what a special value means, e.g. "0: QEMU's own default"

    def __str__(self) -> str:
        what = ("a whole number" if self.whole else "a number") + (f" of {self.unit}" if self.unit else "")
        low, high = f"{self.low:g}", f"{self.high:g}"
        stated = f"{what} greater than {low} and at most {high}" if self.above_low else f"{what} from {low} to {high}"
        return f"{stated} ({self.note})" if self.note else stated

    def holds(self, number: float) -> bool:
        return (self.low < number if self.above_low else self.low <= number) and number <= self.high


def check_number(value: object, where: str, bounds: Bounds) -> float | int:
    """`value` (text as typed, or a number from a file) as a number within `bounds`, else InputError."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise InputError(f"{at(where)}{shown(value)} is {type(value).__name__}, not a number; valid: {bounds}")
    if isinstance(value, str):
        if (WHOLE if bounds.whole else DECIMAL).fullmatch(value) is None:
            problem = "not finite" if value.strip().lstrip("+-").lower() in ("nan", "inf", "infinity") else (
                "not a whole number" if bounds.whole else "not a number")
            raise InputError(f"{at(where)}{shown(value)} is {problem}; valid: {bounds}")
        if bounds.whole and len(value.lstrip("+-")) > LONGEST_WHOLE:
            raise InputError(f"{at(where)}{shown(value)} is out of range; valid: {bounds}")
        number = int(value) if bounds.whole else float(value)
        if math.isinf(number):  # a decimal too large for a float
            raise InputError(f"{at(where)}{shown(value)} is out of range; valid: {bounds}")
    else:
        number = value
    if bounds.whole and not isinstance(number, int):
        raise InputError(f"{at(where)}{shown(value)} is not a whole number; valid: {bounds}")
    if not math.isfinite(number):
        raise InputError(f"{at(where)}{shown(value)} is not finite; valid: {bounds}")
    if not bounds.holds(number):
        raise InputError(f"{at(where)}{shown(value)} is out of range; valid: {bounds}")
    return number


# The ranges of archmatrix's own numbers, stated once for every place that takes them.
SECONDS = Bounds(0, 86400, "seconds", above_low=True)  # up to a day: a boot, an apt command, a probe
TIMEOUT_FACTOR = Bounds(0, 100, above_low=True)
CONSOLE_CAP_MIB = Bounds(0, 65536, "MiB", above_low=True)
TB_CACHE_MIB = Bounds(0, 4096, "MiB", whole=True, note="0: QEMU's own default")
PORT = Bounds(1, 65535, whole=True)
SLOWER_RATIO = Bounds(1, 1000)
SLOWER_MIN_S = Bounds(0, 86400, "seconds")
