"""The lab host's image: a Debian system of the lab's arch with libvirt and QEMU, built from Debian packages.

`mmdebstrap --variant=extract` unpacks the packages of the other arch without
running anything of it (17 s here for about 150 packages); the files of
images/lab/ give it the accounts, libvirt's configuration and an init that
starts libvirtd and an SSH server only. The tree becomes an ext4 file system
(`mke2fs -d`, no mount) booted through a small stage-1 initramfs that loads
the disk's modules. One build-time boot lets libvirtd probe every emulator
into its capabilities cache, which the image keeps: a lab host's libvirtd
then answers in about a second instead of after six per emulator.

Cached under the image cache by a hash of the recipe (files, packages,
builder) and of the candidate versions of its packages; the manifest lists
every package and version, and the sha256 of each file: an image is re-hashed
before each use, and a damaged one rebuilt, never booted.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from archmatrix.cleanup.scratch import ScratchArea
from archmatrix.files import write_atomically
from archmatrix.hosts.lab_catalog import LabKind
from archmatrix.hosts.lab_image_hashes import damage_of, file_hashes
from archmatrix.images import cpio
from archmatrix.images.apt_sources import SourcesError, configured_sources
from archmatrix.images.debian import MIRROR_SYNC
from archmatrix.images.guest_userland import MODULE_DIR, ModuleIndex, UserlandError, modules_in_load_order
from archmatrix.paths import RECIPES

RECIPE_DIR = RECIPES / "lab"
UDHCPC_SCRIPT = RECIPE_DIR.parent / "udhcpc.script"
RELEASE = "bookworm"
# base-files: /etc/os-release (the host's distribution in the matrix) and /var/run.
BASE_PACKAGES = ("base-files", "libvirt-daemon", "libvirt-daemon-driver-qemu", "libvirt-clients", "dropbear-bin",
                 "busybox-static")
STAGE1_MODULES = ("virtio_pci", "virtio_blk", "ext4", "crc32c_generic")  # the disk and its file system
LAB_MODULES = ("virtio_net",)  # its NIC (the virtio PCI transport is loaded by stage 1), and its kind's KVM
# Not needed in a lab host and large: documentation, and the emulators of guest arches it does not offer.
PRUNED = ("usr/share/doc", "usr/share/man", "usr/share/locale", "usr/share/info", "usr/share/lintian",
          "usr/share/bug", "var/cache/apt", "var/lib/apt/lists", "usr/bin/qemu-storage-daemon",
          "usr/bin/qemu-system-arm", "usr/bin/qemu-system-i386")
DISK_SLACK_MIB = 256  # free space for libvirt's logs and state
BUILD_TIMEOUT_S = 900.0
SEED_TIMEOUT_S = 300.0


# apt's words for an index it could not fetch, up to the next line: the suite is the part after /dists/.
BROKEN_INDEX = re.compile(r"Failed to fetch \S+/dists/([^/\s]+)/[^|]*")


class LabImageError(RuntimeError):
    """The lab host's image could not be built; says which step and why."""


@dataclass(frozen=True)
class LabImage:
    kind: LabKind
    kernel: Path
    initrd: Path  # stage 1
    disk: Path  # ext4, read-only here: each lab boots a copy
    manifest: Path
    key: str

    def version_of(self, package: str) -> str | None:
        packages = dict(json.loads(self.manifest.read_text())["packages"])
        return packages.get(package)


def recipe_files() -> dict[str, bytes]:
    """images/lab/ and the udhcpc hook, by their path in the image."""
    files = {str(path.relative_to(RECIPE_DIR)): path.read_bytes()
             for path in sorted(RECIPE_DIR.rglob("*")) if path.is_file() and path.name != "README.md"}
    files["etc/udhcpc.script"] = UDHCPC_SCRIPT.read_bytes()
    return files


def packages_of(kind: LabKind) -> tuple[str, ...]:
    return (kind.kernel_package, *BASE_PACKAGES, *kind.emulator_packages)


def recipe_key(kind: LabKind, versions: dict[str, str]) -> str:
    identity = {
        # The builder's own source: a change to how the image is made makes another image.
        "builder": hashlib.sha256(Path(__file__).read_bytes()).hexdigest(),
        "release": RELEASE, "kind": kind.arch, "packages": packages_of(kind),
        "versions": versions, "stage1": STAGE1_MODULES, "modules": LAB_MODULES, "pruned": PRUNED,
        "files": {path: hashlib.sha256(data).hexdigest() for path, data in recipe_files().items()},
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


def lab_cache_dir(cache_root: Path) -> Path:
    return Path(cache_root) / "lab-hosts"


def candidate_versions(kind: LabKind, sources: tuple[str, ...], workdir: Path) -> dict[str, str]:
    """The versions the build would take of the recipe's own packages, from the same sources."""
    # mmdebstrap's --simulate resolves without downloading: its output names every package and version.
    result = _mmdebstrap(kind, sources, workdir, "--simulate", "--verbose", target="/dev/null", timeout_s=300)
    versions: dict[str, str] = {}
    for line in result.splitlines():
        # "Inst libvirt0 (9.0.0-4+deb12u2 Debian:12.12/stable [arm64])"
        words = line.split()
        if len(words) >= 3 and words[0] == "Inst" and words[2].startswith("("):
            versions[words[1]] = words[2].lstrip("(")
    if not versions:
        raise LabImageError(f"mmdebstrap --simulate for the {kind.label} image listed no packages: {result[-500:]}")
    return dict(sorted(versions.items()))


def _mmdebstrap(kind: LabKind, sources: tuple[str, ...], workdir: Path, *extra: str, target: str,
                timeout_s: float = BUILD_TIMEOUT_S) -> str:
    command = ["mmdebstrap", "--variant=extract", f"--architectures={kind.debian_arch}",
               "--aptopt=APT::Install-Recommends \"false\"", f"--include={','.join(packages_of(kind))}",
               *extra, RELEASE, target, *sources]
    try:
        result = subprocess.run(command, cwd=workdir, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        raise LabImageError(f"mmdebstrap for the {kind.label} image did not finish within {timeout_s:.0f} s") from None
    if result.returncode != 0:
        lines = (result.stderr + result.stdout).strip().splitlines()
        tail = " | ".join([line for line in lines if line.startswith("E: Failed to fetch")][:1] + lines[-6:])
        raise LabImageError(f"mmdebstrap for the {kind.label} image failed (exit {result.returncode}): {tail}")
    return result.stdout + result.stderr


class LabImages:
    """Lab host images in the image cache: found by key, or built (one builder at a time per kind)."""

    def __init__(self, cache_root: Path, say: Callable[[str], None]):
        self.root = lab_cache_dir(cache_root)
        self.scratch = ScratchArea(cache_root)
        self.say = say

    def get_or_build(self, kind: LabKind, seed: Callable[[LabImage], None] | None = None) -> LabImage:
        """The cached image of `kind`, else a new one; `seed` boots it once to fill libvirt's cache."""
        if shutil.which("mmdebstrap") is None or shutil.which("mke2fs") is None:
            raise LabImageError("building a lab host needs mmdebstrap and mke2fs; as root: "
                                "apt-get install mmdebstrap e2fsprogs")
        try:
            sources = configured_sources(RELEASE)
        except SourcesError as error:
            raise LabImageError(f"cannot build the {kind.label} image: {error}") from None
        self.root.mkdir(parents=True, exist_ok=True)
        with self.scratch.lock(f"lab-{kind.arch}"):
            self.scratch.stale(f"lab-{kind.arch}")  # a killed build's: its lock is ours now
            workdir = self.scratch.new(f"lab-{kind.arch}")
            try:
                started = time.monotonic()
                try:
                    versions, sources = self._versions_from_whole_suites(kind, sources, workdir)
                except LabImageError as error:
                    newest = self._newest(kind)
                    if newest is None:
                        raise
                    damage = damage_of(newest.manifest.parent)
                    if damage:
                        raise LabImageError(f"the cached {kind.label} image {newest.key} is damaged ({damage}) and "
                                            f"cannot be rebuilt now: package versions unknown ({error})") from None
                    self.say(f"  {kind.label}: package versions unknown ({error}); using the cached image "
                             f"{newest.key}")
                    return newest
                key = recipe_key(kind, versions)
                image = self._cached(kind, key)
                if image is not None:
                    damage = damage_of(image.manifest.parent)
                    if damage is None:
                        return image
                    self.say(f"  {kind.label}: the cached image {key} is damaged ({damage}); rebuilding it")
                    shutil.rmtree(image.manifest.parent)
                self.say(f"building the {kind.label} host image {key} ({len(versions)} Debian packages)")
                image = self._build(kind, key, versions, sources, workdir, started)
                if seed is not None:
                    seeding = time.monotonic()
                    seed(image)
                    self.say(f"  {kind.label}: libvirt's capabilities cache seeded by one boot in "
                             f"{time.monotonic() - seeding:.1f} s")
                manifest = json.loads(image.manifest.read_text())
                manifest["build_s"] = round(time.monotonic() - started, 1)
                manifest["sha256"] = file_hashes(image.manifest.parent)  # as seeded: what each use re-hashes
                write_atomically(image.manifest, json.dumps(manifest, indent=1) + "\n")
                for path in image.manifest.parent.iterdir():
                    path.chmod(0o644)
                os.rename(image.manifest.parent, self.root / f"{kind.arch}-{key}")
                for older in self.root.glob(f"{kind.arch}-*"):  # superseded: 280 MB each
                    if older.name != f"{kind.arch}-{key}":
                        shutil.rmtree(older, ignore_errors=True)
                self.say(f"  built the {kind.label} image in {manifest['build_s']} s")
                return self._cached(kind, key)
            finally:
                shutil.rmtree(workdir, ignore_errors=True)

    def _versions_from_whole_suites(self, kind: LabKind, sources: tuple[str, ...],
                                    workdir: Path) -> tuple[dict[str, str], tuple[str, ...]]:
        """The candidate versions, and the sources they come from.

        A suite whose index cannot be fetched whole is left out, and said so: the security suite's ppc64el
        index once came with another size than its Release file said ("Mirror sync in progress?").
        """
        while True:
            try:
                return candidate_versions(kind, sources, workdir), sources
            except LabImageError as error:
                broken = BROKEN_INDEX.search(str(error))
                if broken and not MIRROR_SYNC.search(broken.group(0)):
                    raise  # not the mirror's fault (no space, no permission, no answer): the error says which
                kept = tuple(line for line in sources if not broken or line.split()[2] != broken.group(1))
                if not broken or len(kept) == len(sources) or not kept:
                    raise
                self.say(f"  {kind.label}: the {broken.group(1)} index of {kind.debian_arch} cannot be fetched "
                         f"whole; building without that suite")
                sources = kept

    def _newest(self, kind: LabKind) -> LabImage | None:
        built = sorted(self.root.glob(f"{kind.arch}-*/manifest.json"), key=lambda path: path.stat().st_mtime)
        return self._cached(kind, built[-1].parent.name.removeprefix(f"{kind.arch}-")) if built else None

    def _cached(self, kind: LabKind, key: str) -> LabImage | None:
        directory = self.root / f"{kind.arch}-{key}"
        if not (directory / "manifest.json").is_file():
            return None
        return LabImage(kind, directory / "vmlinuz", directory / "stage1.cpio.gz", directory / "root.ext4",
                        directory / "manifest.json", key)

    def _build(self, kind: LabKind, key: str, versions: dict[str, str], sources: tuple[str, ...], workdir: Path,
               started: float) -> LabImage:
        tree = workdir / "tree"
        _mmdebstrap(kind, sources, workdir, "--format=directory", target=str(tree))
        self.say(f"  {kind.label}: unpacked in {time.monotonic() - started:.1f} s")
        out = workdir / "out"
        out.mkdir()
        kernel_version, vmlinuz = _kernel_of(tree)
        shutil.copyfile(vmlinuz, out / "vmlinuz")
        modules_root = tree / "lib/modules" / kernel_version
        stage1_modules = _modules(modules_root, STAGE1_MODULES)
        lab_modules = _modules(modules_root, LAB_MODULES + kind.kvm_modules)
        for path in PRUNED:
            shutil.rmtree(tree / path, ignore_errors=True) if (tree / path).is_dir() else (tree / path).unlink(
                missing_ok=True)
        shutil.rmtree(modules_root)  # the lab loads only what lib/modules/lab holds
        shutil.rmtree(tree / "boot")
        for path, data in recipe_files().items():
            if path == "stage1-init":
                continue
            target = tree / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            target.chmod(0o755 if data.startswith(b"#!") else 0o644)
        for path, data in lab_modules.items():
            target = tree / "lib/modules/lab" / Path(path).name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        (tree / "bin/sh").unlink(missing_ok=True)
        (tree / "bin/sh").symlink_to("busybox")  # an extract has no /bin/sh: dash's maintainer script never ran
        for directory in ("proc", "sys", "dev", "run", "tmp", "root", "var/log", "var/tmp"):
            (tree / directory).mkdir(parents=True, exist_ok=True)  # no base-files: the extract lacks them
        (tree / "tmp").chmod(0o1777)
        for link, target in (("var/run", "/run"), ("var/lock", "/run/lock")):
            if (tree / link).is_dir() and not (tree / link).is_symlink():
                shutil.rmtree(tree / link)
            (tree / link).unlink(missing_ok=True)
            (tree / link).symlink_to(target)  # base-files' links: libvirt's clients look in /var/run
        (out / "stage1.cpio.gz").write_bytes(_stage1(tree, stage1_modules))
        tree_mib = _tree_mib(tree)
        size_mib = tree_mib + DISK_SLACK_MIB
        result = subprocess.run(["mke2fs", "-q", "-t", "ext4", "-L", "lab", "-d", str(tree), str(out / "root.ext4"),
                                 f"{size_mib}M"], capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise LabImageError(f"mke2fs of the {kind.label} image failed: {result.stderr.strip()}")
        manifest = {"kind": kind.arch, "key": key, "release": RELEASE, "sources": list(sources),
                    "kernel": kernel_version, "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "disk_mib": size_mib, "packages": sorted(versions.items())}
        write_atomically(out / "manifest.json", json.dumps(manifest, indent=1) + "\n")
        shutil.rmtree(tree)
        self.say(f"  {kind.label}: root file system of {tree_mib} MiB in {size_mib} MiB written in "
                 f"{time.monotonic() - started:.1f} s")
        return LabImage(kind, out / "vmlinuz", out / "stage1.cpio.gz", out / "root.ext4", out / "manifest.json", key)


def _kernel_of(tree: Path) -> tuple[str, Path]:
    kernels = sorted((tree / "boot").glob("vmlinu[xz]-*"))  # Power's is an ELF vmlinux
    if len(kernels) != 1:
        raise LabImageError(f"the lab image should hold one kernel in /boot, found {[k.name for k in kernels]}")
    return kernels[0].name.split("-", 1)[1], kernels[0]


def _modules(modules_root: Path, wanted: tuple[str, ...]) -> dict[str, bytes]:
    names = [str(path.relative_to(modules_root.parent.parent.parent))
             for path in modules_root.rglob("*.ko*")]
    builtin = modules_root / "modules.builtin"
    index = ModuleIndex(names, builtin.read_text() if builtin.is_file() else "")
    root = modules_root.parent.parent.parent
    try:
        return modules_in_load_order(wanted, index, lambda paths: {path: (root / path).read_bytes() for path in paths})
    except UserlandError as error:
        raise LabImageError(f"the lab's kernel modules: {error}") from None


def _stage1(tree: Path, modules: dict[str, bytes]) -> bytes:
    busybox = (tree / "bin/busybox").read_bytes()
    entries = [cpio.directory("bin"), cpio.directory("dev"), cpio.char_device("dev/console", 5, 1),
               cpio.directory("modules"), cpio.directory("newroot"), cpio.directory("proc"),
               cpio.regular("bin/busybox", busybox, executable=True),
               cpio.regular("init", (RECIPE_DIR / "stage1-init").read_bytes(), executable=True)]
    prefix = MODULE_DIR + "/"
    entries += [cpio.regular("modules/" + path.removeprefix(prefix), data) for path, data in modules.items()]
    return gzip.compress(cpio.newc_archive(entries), compresslevel=6, mtime=0)


def _tree_mib(tree: Path) -> int:
    total = sum(path.lstat().st_size for path in tree.rglob("*"))
    return total // (1 << 20) + 1
