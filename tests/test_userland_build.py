"""The pure logic of building busybox and dropbear from Debian's sources (no apt, no compiler)."""

import struct

import pytest

from archmatrix.images import source_packages
from archmatrix.images.apt_sources import deb_src_lines
from archmatrix.images.kernel_build import FRAGMENT_DIR, fragment_options
from archmatrix.images.source_packages import dsc_field, dsc_of
from archmatrix.images.userland_build import (
    REQUIRED_APPLETS,
    UserlandBuildError,
    build_commands,
    build_static_userland,
    busybox_config,
    is_static_elf,
    missing_applets,
)
from archmatrix.paths import RECIPES
from tests.helpers import INDEX_TARGETS


def test_deb_src_lines_follow_the_machines_debian_suites():
    assert deb_src_lines(INDEX_TARGETS) == (
        "deb-src http://debian.mirror.example/debian bookworm main",
        "deb-src http://debian.mirror.example/debian bookworm-updates main",
        "deb-src http://debian.mirror.example/debian-security bookworm-security main",
        "deb-src http://mirror.example/debian bookworm main",
    )


def test_deb_src_lines_need_a_debian_release_suite():
    only_security = "deb\tPackages\tDebian\thttp://s.example/\tbookworm-security\tbookworm-security"
    assert deb_src_lines(only_security) == ()
    assert deb_src_lines("") == ()


PRINT_URIS = """Reading package lists...
NOTICE: 'busybox' packaging is maintained in the 'Git' version control system at:
'http://m.example/pool/busybox_1.35.0-4%2bdeb12u1.dsc' busybox_1.35.0-4+deb12u1.dsc 2321 SHA256:9c01
'http://m.example/pool/busybox_1.35.0.orig.tar.bz2' busybox_1.35.0.orig.tar.bz2 2480624 SHA256:faee
"""


def test_the_dsc_apt_would_fetch_names_the_version():
    assert dsc_of(PRINT_URIS, "busybox") == "busybox_1.35.0-4+deb12u1.dsc"
    assert dsc_of(PRINT_URIS, "dropbear") is None


def test_dsc_field_reads_a_signed_dsc():
    dsc = ("-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\nFormat: 3.0 (quilt)\nSource: busybox\n"
           "Version: 1:1.35.0-4+deb12u1\nMaintainer: x\n")
    assert dsc_field(dsc, "Version") == "1:1.35.0-4+deb12u1"
    assert dsc_field(dsc, "Source") == "busybox"
    assert dsc_field(dsc, "Binary") is None


DEBIAN_CONFIG = "CONFIG_STATIC=y\nCONFIG_TC=y\n# CONFIG_PAM is not set\nCONFIG_EXTRA_CFLAGS=\"\"\n"


def test_busybox_config_changes_replace_in_place_or_append():
    changed = busybox_config(DEBIAN_CONFIG, {"TC": None, "PAM": "y", "NEW": '"x"'})
    assert changed.splitlines() == ["CONFIG_STATIC=y", "# CONFIG_TC is not set", "CONFIG_PAM=y",
                                    'CONFIG_EXTRA_CFLAGS=""', 'CONFIG_NEW="x"']
    assert busybox_config(DEBIAN_CONFIG, {}) == DEBIAN_CONFIG


def test_busybox_config_change_does_not_touch_longer_names():
    config = "CONFIG_TC=y\nCONFIG_TCPSVD=y\n"
    assert busybox_config(config, {"TC": None}) == "# CONFIG_TC is not set\nCONFIG_TCPSVD=y\n"


def test_missing_applets_names_the_applets_and_static():
    full = "".join(f"CONFIG_{symbol}=y\n" for symbol in REQUIRED_APPLETS.values()) + "CONFIG_STATIC=y\n"
    assert missing_applets(full) == []
    partial = full.replace("CONFIG_UDHCPC=y", "# CONFIG_UDHCPC is not set").replace("CONFIG_STATIC=y\n", "")
    assert missing_applets(partial) == ["udhcpc", "(CONFIG_STATIC)"]


def test_required_applets_cover_what_init_runs():
    root = RECIPES
    scripts = (root / "init.sh").read_text() + (root / "udhcpc.script").read_text()
    for applet in ("mount", "udhcpc", "ifconfig", "route", "dd", "od", "hostname", "login", "insmod"):
        assert applet in scripts and applet in REQUIRED_APPLETS


def elf(wide: bool, order: str, segment_types: list[int]) -> bytes:
    """A header-only ELF executable with program headers of the given types."""
    endian = "<" if order == "little" else ">"
    ident = b"\x7fELF" + bytes([2 if wide else 1, 1 if order == "little" else 2, 1]) + bytes(9)
    if wide:
        header = ident + struct.pack(endian + "HHIQQQIHHHHHH", 2, 21, 1, 0, 64, 0, 0, 64, 56, len(segment_types),
                                     0, 0, 0)
        segments = b"".join(struct.pack(endian + "I", kind) + bytes(52) for kind in segment_types)
    else:
        header = ident + struct.pack(endian + "HHIIIIIHHHHHH", 2, 8, 1, 0, 52, 0, 0, 52, 32, len(segment_types),
                                     0, 0, 0)
        segments = b"".join(struct.pack(endian + "I", kind) + bytes(28) for kind in segment_types)
    return header + segments


@pytest.mark.parametrize("wide,order", [(True, "big"), (False, "big"), (True, "little"), (False, "little")])
def test_is_static_elf(wide, order):
    PT_LOAD, PT_INTERP, PT_NOTE = 1, 3, 4
    assert is_static_elf(elf(wide, order, [PT_LOAD, PT_LOAD, PT_NOTE]))
    assert not is_static_elf(elf(wide, order, [PT_LOAD, PT_INTERP, PT_LOAD]))


def test_is_static_elf_refuses_what_is_not_elf():
    assert not is_static_elf(b"#!/bin/sh\n")
    assert not is_static_elf(b"")


def test_build_commands_name_no_path_of_this_machine():
    commands = build_commands("mips-linux-gnu-", ("-march=mips32r2",))
    assert any("--host=mips-linux-gnu" in command for command in commands)
    assert any("-march=mips32r2" in command for command in commands)
    assert not any("/tmp" in command or "/root" in command for command in commands)


def test_without_dpkg_source_the_error_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr(source_packages.shutil, "which", lambda name: None)
    with pytest.raises(UserlandBuildError) as raised:
        build_static_userland("mips", "mips-linux-gnu-", (), tmp_path / "cache", tmp_path / "work",
                              tmp_path / "build.log", lambda line: None)
    message = str(raised.value)
    assert "mips" in message and "dpkg-dev" in message and str(tmp_path / "build.log") in message


@pytest.mark.parametrize("fragment", ["ppc64.config", "mips.config"])
def test_fragments_have_what_the_network_and_ssh_need(fragment):
    options = fragment_options((FRAGMENT_DIR / fragment).read_text())
    for name in ("NET", "INET", "PACKET", "UNIX", "PCI", "VIRTIO_PCI", "VIRTIO_NET", "MULTIUSER", "UNIX98_PTYS"):
        assert options.get(f"CONFIG_{name}") == "y", name
