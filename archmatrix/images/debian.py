"""Fetch Debian packages of any architecture through a private apt state.

apt reads the host's sources (so no mirror is written anywhere) but keeps its
lists, cache and dpkg status in a directory of ours: the host's dpkg
configuration is never changed and no root is needed.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from archmatrix.cleanup.scratch import held
from archmatrix.files import sha256_of
from archmatrix.images.apt_indexes import IndexFailure, index_failures, local_reason, mirror_sync_warnings


class PackageFetchError(RuntimeError):
    """apt could not resolve or download a package."""


@dataclass(frozen=True)
class DebianPackage:
    name: str
    version: str
    architecture: str
    sha256: str  # of the .deb file
    path: Path

    def identity(self) -> dict[str, str]:
        return {
            "name": self.name,
            "version": self.version,
            "architecture": self.architecture,
            "sha256": self.sha256,
        }


class PrivateApt:
    """apt-get/apt-cache for one Debian architecture, with state under `root`.

    `sources` (`deb` lines, see archmatrix/images/apt_sources.py) take the place of
    the machine's own when packages come from another Debian release.
    """

    def __init__(self, root: Path, debian_arch: str, timeout_s: float = 600.0,
                 sources: tuple[str, ...] | None = None):
        self.root = root
        self.debian_arch = debian_arch
        self.timeout_s = timeout_s
        self.sources = sources
        for sub in ("state/lists/partial", "cache/archives/partial", "sources.list.d"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        status = root / "state/status"
        if not status.exists():
            status.touch()
        if sources is not None:
            (root / "sources.list").write_text("".join(line + "\n" for line in sources))

    def _options(self) -> list[str]:
        options = {
            "Dir::State": self.root / "state",
            "Dir::State::status": self.root / "state/status",
            "Dir::Cache": self.root / "cache",
            # apt's binary cache of the indexes, which the machine's apt config may turn off (Debian's container
            # images do): without it every apt call parses every index again, 0.45 CPU-s each, some 80 calls on a
            # cold run. With it, 0.1 s. Only the package cache (36 MB for bookworm), not the source cache.
            "Dir::Cache::pkgcache": "pkgcache.bin",
            "APT::Architecture": self.debian_arch,
            "APT::Architectures": self.debian_arch,
            "Acquire::Retries": "3",
        }
        if self.sources is not None:
            options["Dir::Etc::sourcelist"] = self.root / "sources.list"
            options["Dir::Etc::sourceparts"] = self.root / "sources.list.d"  # empty: none of the machine's
        if os.geteuid() == 0:
            # apt would drop to the _apt user, which cannot write our private dirs.
            options["APT::Sandbox::User"] = "root"
        return [arg for key, value in options.items() for arg in ("-o", f"{key}={value}")]

    def _bounded(self, command: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess:
        """Run apt with a time bound; on expiry kill it and its download methods (own process group).

        apt does not always fail when it cannot go on: on a full disk its store method was seen to wait forever.
        One apt at a time per state directory, across processes: several builders share one (the x86_64 image,
        every kernel built from source, the x86_64 firmware disk use apt/amd64), and apt's own locks would
        fail the second at once rather than wait.
        """
        with held(self.root / ".lock"):
            return self._bounded_unlocked(command, cwd)

    def _bounded_unlocked(self, command: list[str], cwd: Path | None) -> subprocess.CompletedProcess:
        process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   start_new_session=True)
        try:
            stdout, stderr = process.communicate(timeout=self.timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            raise PackageFetchError(
                f"{command[0]} {command[-1]} for Debian arch {self.debian_arch} did not finish within "
                f"{self.timeout_s:.0f} s (a stalled mirror, or a full disk under {self.root}?)"
            ) from None
        return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)

    def _run(self, tool: str, args: list[str], cwd: Path | None = None) -> str:
        command = [tool, "-q", *self._options(), *args]
        result = self._bounded(command, cwd)
        if result.returncode != 0:
            detail = (result.stderr or result.stdout).strip().splitlines()[-5:]
            raise PackageFetchError(
                f"{tool} {' '.join(args)} failed for Debian arch {self.debian_arch} "
                f"(exit {result.returncode}): {' / '.join(detail)}"
            )
        return result.stdout

    def update(self) -> list[str]:
        """Refresh the indexes; return warnings for indexes a mirror caught mid-sync could not give whole.

        A mirror caught mid-sync can serve one index (say bookworm-security for one arch) whose hash does not
        match its signed Release file. apt then ignores that index; we go on with the verified ones and say so,
        rather than fail the whole build. Any other failure (no space left, no permission, no answer) is an
        error naming apt's reason: taken for a mirror's, it once left the build to fail later for want of a
        package ("no candidate"), the real cause lost. No index at all is an error too.
        """
        result, failures = self._fetch_indexes()
        lists = [p for p in (self.root / "state/lists").glob("*_Packages*") if p.is_file()]
        # apt exits 0 when it could fetch nothing at all (unreachable mirror): no index is the failure.
        if not lists or (result.returncode != 0 and not failures):
            # apt's own "E:" lines say why (e.g. "File has unexpected size ... Mirror sync in progress?").
            output = (result.stderr or result.stdout).strip().splitlines()
            detail = [line for line in output if line.startswith("E: Failed")][:2] or output[-3:]
            raise PackageFetchError(
                f"apt-get update failed for Debian arch {self.debian_arch}: no package index could be fetched "
                f"from the configured sources (exit {result.returncode}): {' / '.join(detail)}"
            )
        return mirror_sync_warnings(failures)

    def _fetch_indexes(self) -> tuple[subprocess.CompletedProcess, list[IndexFailure]]:
        """apt-get update, and the indexes it did not keep; PackageFetchError if one was lost for a local reason."""
        result = self._bounded(["apt-get", "-q", *self._options(), "update"])
        failures = index_failures(result.stdout + "\n" + result.stderr)
        local = [failure for failure in failures if not failure.mirror_sync]
        if local:
            raise PackageFetchError(
                f"apt-get update for Debian arch {self.debian_arch} could not fetch "
                + "; ".join(f"{failure.index}: {local_reason(failure, self.root)}" for failure in local))
        return result, failures

    def candidate(self, name: str) -> dict[str, str]:
        """The fields of the version apt would install."""
        stanza = self._run("apt-cache", ["show", "--no-all-versions", name])
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            match = re.match(r"^([A-Za-z0-9-]+): (.*)$", line)
            if match:
                fields.setdefault(match.group(1), match.group(2))
        return fields

    def _depends_on(self, package: str, prefix: str) -> str | None:
        for alternative in self.candidate(package).get("Depends", "").split(","):
            name = alternative.strip().split(" ")[0]
            if name.startswith(prefix):
                return name
        return None

    def kernel_packages(self, meta: str) -> list[str]:
        """The packages that may hold the kernel file of meta package `meta`.

        linux-image-arm64 -> linux-image-6.1.0-NN-arm64 (the versioned image it depends on); since
        Linux 6.17 Debian moved the file itself to linux-binary-VERSION, which that one depends on.
        """
        image = self._depends_on(meta, "linux-image-")
        if image is None:
            raise PackageFetchError(f"{meta} ({self.debian_arch}) depends on no linux-image package: "
                                    f"{self.candidate(meta).get('Depends', '')!r}")
        binary = self._depends_on(image, "linux-binary-")
        return [image] + ([binary] if binary else [])

    def download(self, names: list[str], dest: Path) -> list[DebianPackage]:
        dest.mkdir(parents=True, exist_ok=True)
        before = set(dest.glob("*.deb"))
        self._run("apt-get", ["download", *names], cwd=dest)
        packages = []
        for name in names:
            fields = self.candidate(name)
            matches = [p for p in dest.glob(f"{name}_*.deb") if p not in before]
            if len(matches) != 1:
                raise PackageFetchError(f"apt-get download {name} left {len(matches)} files in {dest}")
            packages.append(
                DebianPackage(
                    name=name,
                    version=fields["Version"],
                    architecture=fields.get("Architecture", self.debian_arch),
                    sha256=sha256_of(matches[0]),
                    path=matches[0],
                )
            )
        return packages
