"""Where archmatrix's own reading and Nova itself disagree, field by field, and whether each disagreement has a
stated reason: a difference without one fails, and so does a stated reason that no longer matches any difference
(so that the list of reasons stays true).
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase

from archmatrix.nova.decisions import NovaDecisions


@dataclass(frozen=True)
class Difference:
    where: str  # "host/virt_type/case"
    field: str
    nova: object
    own: object

    def __str__(self) -> str:
        return f"{self.where} {self.field}: Nova {self.nova!r}, own reading {self.own!r}"


@dataclass(frozen=True)
class StatedReason:
    pattern: str  # fnmatch pattern over Difference.where
    field: str
    reason: str

    def explains(self, difference: Difference) -> bool:
        return difference.field == self.field and fnmatchcase(difference.where, self.pattern)


def differences(where: str, nova: NovaDecisions, own: NovaDecisions) -> list[Difference]:
    theirs, ours = nova.compared(), own.compared()
    return [Difference(where, name, theirs[name], ours[name]) for name in theirs if theirs[name] != ours[name]]


def judged(found: list[Difference], stated: list[StatedReason]) -> tuple[list[Difference], list[StatedReason]]:
    """(the differences no stated reason explains, the stated reasons that explain no difference)."""
    unexplained = [difference for difference in found if not any(reason.explains(difference) for reason in stated)]
    stale = [reason for reason in stated if not any(reason.explains(difference) for difference in found)]
    return unexplained, stale
