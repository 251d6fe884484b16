"""The Debian package sources of another release (or the machine's own source packages), derived from its apt.

Nothing names a mirror: each Debian suite apt is configured with (the
machine's release, its -updates and -security) gives the same suite of the
wanted release on the same mirror, or its `deb-src` line.
"""

from __future__ import annotations

import subprocess


class SourcesError(RuntimeError):
    """apt's configuration gives no Debian suite to derive another release's from."""


# The suites of a release packages are taken from; backports and others are left out.
_SUITE_SUFFIXES = ("", "-updates", "-security")
INDEX_FORMAT = "$(TARGET_OF)\t$(IDENTIFIER)\t$(ORIGIN)\t$(REPO_URI)\t$(RELEASE)\t$(CODENAME)"


def sources_for_release(index_targets: str, release: str) -> tuple[str, ...]:
    """`deb` lines for `release` from the Debian suites apt is configured with.

    `index_targets` is `apt-get indextargets --format INDEX_FORMAT` output: apt
    has parsed both sources formats (one-line and deb822) and, after an update,
    knows each suite's origin and codename. Each Debian suite of the machine's
    release (its codename, -updates, -security) gives the same suite of
    `release` on the same mirror. Only `main` is needed.
    """
    lines: list[str] = []
    for row in index_targets.splitlines():
        fields = row.split("\t")
        if len(fields) != 6:
            continue
        target_of, identifier, origin, uri, suite, codename = fields
        if target_of != "deb" or identifier != "Packages" or origin not in ("Debian", ""):
            continue
        name = codename or suite
        base, dash, rest = name.partition("-")
        suffix = dash + rest
        if suffix not in _SUITE_SUFFIXES:
            continue
        line = f"deb {uri.rstrip('/')} {release}{suffix} main"
        if line not in lines:
            lines.append(line)
    return tuple(lines)


def configured_index_targets() -> str:
    """`apt-get indextargets --format INDEX_FORMAT`: the suites apt is configured with, as it has parsed them."""
    result = subprocess.run(["apt-get", "indextargets", "--format", INDEX_FORMAT],
                            capture_output=True, text=True, check=False, timeout=60)
    if result.returncode != 0:
        raise SourcesError(f"apt-get indextargets failed (exit {result.returncode}): {result.stderr.strip()}")
    return result.stdout


def configured_sources(release: str) -> tuple[str, ...]:
    """`deb` lines for `release`, from the suites this machine's apt is configured with."""
    sources = sources_for_release(configured_index_targets(), release)
    if not any(line.split()[2] == release for line in sources):
        raise SourcesError(
            f"no Debian suite to take {release} from: apt is configured with no "
            "Debian release suite (e.g. 'bookworm' of a Debian mirror, component main) or has never "
            "downloaded its indexes; configure one in /etc/apt/sources.list(.d) and run apt-get update")
    return sources


def deb_src_lines(index_targets: str) -> tuple[str, ...]:
    """`deb-src` lines for the machine's Debian release, its -updates and -security, on the mirrors apt uses.

    `index_targets` is `apt-get indextargets --format INDEX_FORMAT` output. The release is the
    codename of the first Debian release suite there (a suite without a -suffix).
    """
    for row in index_targets.splitlines():
        fields = row.split("\t")
        if len(fields) == 6 and fields[0] == "deb" and fields[1] == "Packages" and fields[2] in ("Debian", ""):
            release = fields[5] or fields[4]
            if "-" not in release:
                return tuple("deb-src" + line.removeprefix("deb")
                             for line in sources_for_release(index_targets, release))
    return ()


def configured_deb_src_lines() -> tuple[str, ...]:
    """`deb-src` lines of the machine's own release, from the suites its apt is configured with."""
    lines = deb_src_lines(configured_index_targets())
    if not lines:
        raise SourcesError(
            "no Debian suite to take busybox and dropbear sources from: apt is configured with no Debian release "
            "suite (e.g. 'bookworm' of a Debian mirror, component main) or has never downloaded its indexes; "
            "configure one in /etc/apt/sources.list(.d) and run apt-get update")
    return lines
