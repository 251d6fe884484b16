"""Static busybox and dropbear built from Debian's source packages with a Debian cross compiler.

For the arches no Debian release builds busybox-static and dropbear-bin for
(ppc64, mips: no Debian port). The sources are the machine's release's
`busybox` and `dropbear` source packages, unpacked once under cache_root/src/userland
(archmatrix/images/source_packages.py) and built out of tree into the caller's workdir, so
the shared trees stay clean. busybox gets Debian's own busybox-static config
(debian/config/pkg/static): the same applets as the busybox-static that the
other arches' images take from Debian.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections.abc import Callable
from pathlib import Path

from archmatrix.images.apt_sources import SourcesError
from archmatrix.images.debian import PackageFetchError
from archmatrix.images.elf_deps import ElfError, elf_needs
from archmatrix.images.kernel_build import KernelBuildError, options_not_taken, run_logged
from archmatrix.images.source_packages import SOURCE_PACKAGES, Progress, SourcePackage, source_packages

BUSYBOX_DEBIAN_CONFIG = "debian/config/pkg/static"  # what Debian builds busybox-static with

# Changes to Debian's busybox-static config, with the reason: symbol -> value, None for "is not set".
# None so far: with the 6.1 kernel headers of Debian 12's cross libcs all its applets (tc included) build.
BUSYBOX_CONFIG_CHANGES: dict[str, str | None] = {}

# Applets images/init.sh and images/udhcpc.script run, and what a user logged in over SSH expects:
# applet -> its config symbol. A config without one of them fails the build by name.
REQUIRED_APPLETS = {
    "sh": "ASH", "mount": "MOUNT", "dd": "DD", "od": "OD", "tr": "TR", "hostname": "HOSTNAME", "echo": "ECHO",
    "cat": "CAT", "insmod": "INSMOD", "ifconfig": "IFCONFIG", "route": "ROUTE", "udhcpc": "UDHCPC", "sed": "SED",
    "ls": "LS", "mkdir": "MKDIR", "chmod": "CHMOD", "grep": "GREP", "cut": "CUT", "login": "LOGIN",
    "uname": "UNAME", "sleep": "SLEEP", "wget": "WGET", "sha256sum": "SHA256SUM", "nc": "NC", "ps": "PS",
    "head": "HEAD", "tail": "TAIL", "vi": "VI", "kill": "KILL", "free": "FREE", "df": "DF", "ip": "IP",
}

# No zlib (none is built for the cross targets; SSH compression buys nothing on a local link), no
# utmp/wtmp/lastlog (the guest has no /var/log, and nothing reads them).
DROPBEAR_CONFIGURE = ("--enable-static", "--disable-zlib", "--disable-lastlog", "--disable-utmp",
                      "--disable-utmpx", "--disable-wtmp", "--disable-wtmpx", "--disable-pututline",
                      "--disable-pututxline")
DROPBEAR_PROGRAMS = "dropbear dropbearkey"
# The cross libcs have no crypt() (Debian's is libxcrypt's, built for no cross target). Without one dropbear
# compiles out password logins and with them the -s and -g options that images/init.sh passes to refuse them:
# it links this libcrypt.a instead, whose crypt() matches no password.
NO_CRYPT_C = "char *crypt(const char *key, const char *salt) { (void)key; (void)salt; return 0; }\n"

# Added to run_logged's kernel_build.REPRODUCIBLE_ENV: busybox's kconfig would write the build's date into
# the banner (`busybox --help`, AUTOCONF_TIMESTAMP) and its .config.
BUSYBOX_ENV = ("KCONFIG_NOTIMESTAMP=1", "SOURCE_DATE_EPOCH=0")

OUTPUTS = {"bin/busybox": "busybox", "usr/sbin/dropbear": "dropbear", "usr/bin/dropbearkey": "dropbearkey"}


class UserlandBuildError(RuntimeError):
    """busybox or dropbear could not be fetched or built; the message names the arch, the step and the log."""


# --- busybox ------------------------------------------------------------------------------------------

def busybox_config(debian_config: str, changes: dict[str, str | None]) -> str:
    """Debian's config with `changes` (symbol without CONFIG_ -> value, None: not set) in place or appended."""
    lines = debian_config.splitlines()
    for symbol, value in changes.items():
        wanted = f"CONFIG_{symbol}={value}" if value is not None else f"# CONFIG_{symbol} is not set"
        pattern = re.compile(rf"^(# )?CONFIG_{symbol}(=| is not set)")
        at = [i for i, line in enumerate(lines) if pattern.match(line)]
        if at:
            lines[at[0]] = wanted
        else:
            lines.append(wanted)
    return "\n".join(lines) + "\n"


def missing_applets(config: str) -> list[str]:
    enabled = {line.split("=", 1)[0] for line in config.splitlines() if line.endswith("=y")}
    missing = [applet for applet, symbol in REQUIRED_APPLETS.items() if f"CONFIG_{symbol}" not in enabled]
    return missing + ([] if "CONFIG_STATIC=y" in config.splitlines() else ["(CONFIG_STATIC)"])


def _jobs() -> str:
    return f"-j{os.cpu_count() or 1}"


def _prefix_maps(*trees: Path) -> list[str]:
    # Paths of this machine's cache and scratch (assert messages carry __FILE__) stay out of the binaries.
    return [f"-ffile-prefix-map={tree}=." for tree in trees]


def _build_busybox(arch_name: str, cross_prefix: str, cflags: tuple[str, ...], source: SourcePackage,
                   workdir: Path, log_path: Path, progress: Progress) -> tuple[Path, str]:
    """Configure (Debian's busybox-static config) and build out of tree; the binary and the final .config."""
    out = workdir / "busybox-build"
    out.mkdir()
    seed = busybox_config((source.tree / BUSYBOX_DEBIAN_CONFIG).read_text(), BUSYBOX_CONFIG_CHANGES)
    (out / ".config").write_text(seed)
    make = ["env", *BUSYBOX_ENV, "make", "-C", str(source.tree), f"O={out}", f"CROSS_COMPILE={cross_prefix}"]
    progress(f"configuring busybox {source.version} ({BUSYBOX_DEBIAN_CONFIG})")
    # As debian/rules does: oldconfig, new symbols at their defaults (stdin is not the harness's terminal).
    # busybox's allnoconfig resets everything KCONFIG_ALLCONFIG sets, unlike the kernel's.
    run_logged(["sh", "-c", 'exec "$@" </dev/null', "sh", *make, "oldconfig"], workdir, log_path,
                f"{arch_name} busybox configure", progress, workdir)
    config = (out / ".config").read_text()
    not_taken = options_not_taken(seed, config)
    missing = missing_applets(config)
    if not_taken or missing:
        raise UserlandBuildError(f"{arch_name} busybox configure: options that did not take: {not_taken}, "
                                 f"applets missing: {missing}; log: {log_path}")
    progress(f"compiling busybox with make {_jobs()}")
    extra = " ".join([*cflags, *_prefix_maps(source.tree, out)])
    run_logged([*make, _jobs(), f"BB_EXTRA_VERSION=Debian {source.version} source", f"CONFIG_EXTRA_CFLAGS={extra}",
                 "busybox"], workdir, log_path, f"{arch_name} busybox make", progress, workdir)
    return out / "busybox", config  # stripped by busybox's Makefile with CROSS_COMPILE's strip


# --- dropbear -----------------------------------------------------------------------------------------

def _build_dropbear(arch_name: str, cross_prefix: str, cflags: tuple[str, ...], source: SourcePackage,
                    workdir: Path, log_path: Path, progress: Progress) -> dict[str, Path]:
    """configure and make out of tree (dropbear builds with VPATH); the stripped programs."""
    out = workdir / "dropbear-build"
    out.mkdir()
    no_crypt = out / "no-crypt"
    no_crypt.mkdir()
    (no_crypt / "crypt.c").write_text(NO_CRYPT_C)
    run_logged([f"{cross_prefix}gcc", "-Os", *cflags, "-c", "crypt.c"], no_crypt, log_path,
                f"{arch_name} dropbear no-crypt compile", progress, workdir)
    run_logged([f"{cross_prefix}ar", "rcD", "libcrypt.a", "crypt.o"], no_crypt, log_path,
                f"{arch_name} dropbear no-crypt ar", progress, workdir)
    cflags_value = " ".join(["-Os", *cflags, *_prefix_maps(source.tree, out)])
    progress(f"configuring dropbear {source.version} (static, --host={cross_prefix.rstrip('-')})")
    run_logged(["env", f"CFLAGS={cflags_value}", f"LDFLAGS=-L{no_crypt}", "sh", str(source.tree / "configure"),
                 f"--host={cross_prefix.rstrip('-')}", *DROPBEAR_CONFIGURE], out, log_path,
                f"{arch_name} dropbear configure", progress, workdir)
    progress(f"compiling dropbear with make {_jobs()}")
    run_logged(["make", _jobs(), f"PROGRAMS={DROPBEAR_PROGRAMS}", "STATIC=1"], out, log_path,
                f"{arch_name} dropbear make", progress, workdir)
    programs = {name: out / name for name in DROPBEAR_PROGRAMS.split()}
    run_logged([f"{cross_prefix}strip", *map(str, programs.values())], out, log_path,
                f"{arch_name} dropbear strip", progress, workdir)
    return programs


# --- the whole ----------------------------------------------------------------------------------------

def is_static_elf(data: bytes) -> bool:
    """An ELF executable that needs no dynamic loader and no shared library."""
    try:
        needs = elf_needs(data)
    except ElfError:
        return False
    return needs.interpreter is None and not needs.needed


def build_commands(cross_prefix: str, cflags: tuple[str, ...]) -> list[str]:
    """What was run, for the manifest (<busybox>, <dropbear>: the unpacked sources; <out>: the build dir)."""
    host = cross_prefix.rstrip("-")
    return [
        *(f"dpkg-source -x {name}_<version>.dsc" for name in SOURCE_PACKAGES),
        f"{' '.join(BUSYBOX_ENV)} make -C <busybox> O=<out> CROSS_COMPILE={cross_prefix} "
        f"oldconfig </dev/null, <out>/.config: {BUSYBOX_DEBIAN_CONFIG} with {BUSYBOX_CONFIG_CHANGES or 'no changes'}",
        f"{' '.join(BUSYBOX_ENV)} make -C <busybox> O=<out> CROSS_COMPILE={cross_prefix} "
        f"BB_EXTRA_VERSION='Debian <version> source' "
        f"CONFIG_EXTRA_CFLAGS='{' '.join([*cflags, '-ffile-prefix-map=<busybox>=.', '-ffile-prefix-map=<out>=.'])}' "
        "busybox",
        f"{cross_prefix}gcc -Os {' '.join(cflags)} -c crypt.c; {cross_prefix}ar rcD <no-crypt>/libcrypt.a crypt.o "
        f"(crypt.c: {NO_CRYPT_C.strip()})",
        f"CFLAGS='{' '.join(['-Os', *cflags, '-ffile-prefix-map=<dropbear>=.', '-ffile-prefix-map=<out>=.'])}' "
        f"LDFLAGS=-L<no-crypt> <dropbear>/configure --host={host} {' '.join(DROPBEAR_CONFIGURE)}",
        f"make PROGRAMS='{DROPBEAR_PROGRAMS}' STATIC=1",
        f"{cross_prefix}strip {DROPBEAR_PROGRAMS}",
    ]


def build_static_userland(arch_name: str, cross_prefix: str, cflags: tuple[str, ...], cache_root: Path,
                          workdir: Path, log_path: Path, progress: Callable[[str], None],
                          ) -> tuple[dict[str, bytes], dict]:
    """busybox, dropbear and dropbearkey, static, for the arch of `cross_prefix`: image path -> content,
    and the manifest's record of how (source packages, commands, output hashes)."""
    step = "fetching Debian's busybox and dropbear sources"
    try:
        sources, warnings = source_packages(cache_root, log_path, progress)
        busybox, dropbear = sources
        step = "building busybox"
        started = time.monotonic()
        busybox_file, config = _build_busybox(arch_name, cross_prefix, cflags, busybox, workdir, log_path, progress)
        progress(f"busybox built in {time.monotonic() - started:.0f} s ({busybox_file.stat().st_size >> 10} KiB)")
        step = "building dropbear"
        started = time.monotonic()
        files = {"busybox": busybox_file,
                 **_build_dropbear(arch_name, cross_prefix, cflags, dropbear, workdir, log_path, progress)}
        progress(f"dropbear built in {time.monotonic() - started:.0f} s "
                 f"({', '.join(f'{n} {files[n].stat().st_size >> 10} KiB' for n in DROPBEAR_PROGRAMS.split())})")
    except (KernelBuildError, PackageFetchError, SourcesError) as error:  # run_logged's, apt's
        raise UserlandBuildError(f"{arch_name} userland, {step}: {error}\n(log: {log_path})") from None
    except OSError as error:  # a full disk, a vanished directory
        raise UserlandBuildError(f"{arch_name} userland, {step}: {error}\n(log: {log_path})") from None
    built = {path: files[name].read_bytes() for path, name in OUTPUTS.items()}
    dynamic = [path for path, data in built.items() if not is_static_elf(data)]
    if dynamic:
        raise UserlandBuildError(f"{arch_name} userland: not static executables: {', '.join(dynamic)}; "
                                 f"log: {log_path}")
    manifest_part = {
        "sources": [source.identity() for source in sources],
        "busybox_config_sha256": hashlib.sha256(config.encode()).hexdigest(),
        "build_commands": build_commands(cross_prefix, cflags),
        "sha256": {path: hashlib.sha256(data).hexdigest() for path, data in built.items()},
        "warnings": warnings,
    }
    return built, manifest_part
