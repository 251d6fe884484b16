"""Which guest arch a kernel file is for, read from its header, to refuse a mismatch before booting."""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

# ELF e_machine values (elf.h) -> (bits, byte order) -> catalog arch
ELF_ARCHES = {
    (183, 64, "little"): "aarch64",
    (21, 64, "little"): "ppc64le",
    (21, 64, "big"): "ppc64",
    (22, 64, "big"): "s390x",
    (8, 64, "little"): "mips64el",
    (8, 32, "little"): "mipsel",
    (8, 32, "big"): "mips",
    (8, 64, "big"): "mips64",
    (20, 32, "big"): "ppc",
    (62, 64, "little"): "x86_64",
    (3, 32, "little"): "i686",
    (4, 32, "big"): "m68k",
    (0x9026, 64, "little"): "alpha",
    (42, 32, "little"): "sh4",
    (243, 64, "little"): "riscv64",
}
HEAD_BYTES = 0x10020


def _from_header(head: bytes) -> str | None:
    if head[:4] == b"\x7fELF" and len(head) >= 20:
        bits = {1: 32, 2: 64}.get(head[4])
        order = {1: "little", 2: "big"}.get(head[5])
        if bits and order:
            machine = struct.unpack("<H" if order == "little" else ">H", head[18:20])[0]
            return ELF_ARCHES.get((machine, bits, order), f"elf-machine-{machine}-{bits}-{order}")
    if head[0x38:0x3C] == b"ARM\x64":  # arm64 Image header (Documentation/arch/arm64/booting.rst)
        return "aarch64"
    if head[0x38:0x3C] == b"RSC\x05" and head[:2] == b"MZ":  # riscv Image with its EFI stub's PE header
        pe = struct.unpack("<I", head[0x3C:0x40])[0]
        machine = struct.unpack("<H", head[pe + 4:pe + 6])[0] if head[pe:pe + 4] == b"PE\0\0" else None
        return {0x5064: "riscv64", 0x5032: "riscv32"}.get(machine)
    if head[0x202:0x206] == b"HdrS":  # x86 boot protocol; xloadflags bit 0: a 64-bit kernel
        return "x86_64" if len(head) > 0x236 and head[0x236] & 1 else "i686"
    if head[0x10008:0x1000E] == b"S390EP":  # s390 kernel image entry marker
        return "s390x"
    return None


def kernel_arch(path: Path) -> str | None:
    """The catalog arch `path` is built for, or None when its format is not one we can read."""
    with open(path, "rb") as stream:
        head = stream.read(HEAD_BYTES)
    if head[:2] == b"\x1f\x8b":  # a gzip-compressed Image (some distributions' arm64 vmlinuz)
        try:
            head = gzip.GzipFile(fileobj=open(path, "rb")).read(HEAD_BYTES)
        except (OSError, EOFError, zlib.error):
            return None
    return _from_header(head)
