"""What `apt-get update` says it did not keep, and why: a mirror caught mid-sync, or a cause of this machine's."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

# apt's words for an index whose bytes do not match its signed Release file: a mirror caught mid-sync.
MIRROR_SYNC = re.compile(r"Hash Sum mismatch|File has unexpected size|Mirror sync in progress", re.IGNORECASE)


@dataclass(frozen=True)
class IndexFailure:
    """A package index `apt-get update` began to fetch and did not keep, and why."""

    index: str  # "http://deb.debian.org/debian bookworm/main amd64 Packages"
    reason: str

    @property
    def mirror_sync(self) -> bool:
        """The mirror served bytes its signed Release file does not vouch for; anything else is not the mirror's."""
        return bool(MIRROR_SYNC.search(self.reason))


DATA_INDEX = re.compile(r" (?:Packages|Sources)$")  # the indexes packages are resolved from (not Release files)
SILENTLY_DROPPED = "apt began to fetch it, then dropped it without saying why"


def index_failures(output: str) -> list[IndexFailure]:
    """The package indexes apt's update output says it did not keep: the last word on each.

    "Err:N INDEX" and its indented reason; or "Get:N INDEX [size]" followed by "Ign:N INDEX" and nothing more:
    apt 2.6 was seen to drop an index that way when its file system filled (no Err line at all). An index that
    failed and then came whole on a retry ("Get:" after its "Err:", nothing after) is not a failure.
    """
    last: dict[str, tuple[str, str]] = {}  # index -> (its last status, apt's reason)
    lines = output.splitlines()
    for number, line in enumerate(lines):
        status, _, index = line.partition(" ")
        status = status.partition(":")[0]
        index = index.rsplit(" [", 1)[0].strip()
        if status not in ("Get", "Ign", "Err") or not DATA_INDEX.search(index):
            continue
        if status == "Ign" and last.get(index, ("",))[0] != "Get":
            continue  # never begun: an index the mirror does not have in that compression
        reason = []
        for follow in lines[number + 1:]:
            if not follow.startswith(" "):
                break
            reason.append(follow.strip())
        last[index] = (status, " ".join(reason))
    return [IndexFailure(index, reason if status == "Err" else SILENTLY_DROPPED)
            for index, (status, reason) in last.items() if status != "Get"]


def local_reason(failure: IndexFailure, root: Path) -> str:
    """apt's reason, or for an index it dropped silently what the file system says."""
    if failure.reason != SILENTLY_DROPPED:
        return failure.reason
    try:
        free = os.statvfs(root).f_bavail * os.statvfs(root).f_frsize
    except OSError:
        return failure.reason
    if free < 1024 * 1024:
        return f"No space left on device ({free} bytes free under {root}); {failure.reason}"
    return f"{failure.reason} ({free // (1024 * 1024)} MiB free under {root})"


def mirror_sync_warnings(failures: list[IndexFailure]) -> list[str]:
    """What a build says of the indexes a mirror mid-sync could not give whole (the others are errors)."""
    return [f"index not verified (a mirror mid-sync), ignored: {failure.index}" for failure in failures]
