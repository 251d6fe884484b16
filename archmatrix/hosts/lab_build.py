"""Building a lab host's image: its packages' versions resolved, unpacked, pruned, laid out, made an ext4 disk.

`mmdebstrap --variant=extract` unpacks the packages of the other arch without running anything of it; the tree
becomes an ext4 file system (`mke2fs -d`, no mount) booted through a small stage-1 initramfs that loads the
disk's modules.
"""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from archmatrix.files import write_atomically
from archmatrix.hosts.lab_catalog import LabKind
from archmatrix.hosts.lab_recipe import (
    LAB_MODULES,
    PRUNED,
    RECIPE_DIR,
    RELEASE,
    STAGE1_MODULES,
    LabImage,
    LabImageError,
    packages_of,
    recipe_files,
)
from archmatrix.images import cpio
from archmatrix.images.guest_userland import MODULE_DIR, ModuleIndex, UserlandError, modules_in_load_order

DISK_SLACK_MIB = 256  # free space for libvirt's logs and state
BUILD_TIMEOUT_S = 900.0


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


def build_lab_image(kind: LabKind, key: str, versions: dict[str, str], sources: tuple[str, ...], workdir: Path,
                    started: float, say: Callable[[str], None]) -> LabImage:
    """The image of `kind` built in `workdir`: its kernel, stage 1, ext4 root file system and manifest."""
    tree = workdir / "tree"
    _mmdebstrap(kind, sources, workdir, "--format=directory", target=str(tree))
    say(f"  {kind.label}: unpacked in {time.monotonic() - started:.1f} s")
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
    say(f"  {kind.label}: root file system of {tree_mib} MiB in {size_mib} MiB written in "
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
