"""What a dynamically linked ELF program needs to start: its interpreter and its DT_NEEDED libraries.

Read at image build time, so that a program put into a guest image without a
library it needs fails the build by name instead of failing silently in the guest.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

PT_DYNAMIC, PT_INTERP = 2, 3
DT_NULL, DT_NEEDED, DT_STRTAB = 0, 1, 5


class ElfError(ValueError):
    """Not an ELF file this reader understands."""


@dataclass(frozen=True)
class ElfNeeds:
    interpreter: str | None  # PT_INTERP, e.g. /lib/ld-linux-aarch64.so.1; None: static
    needed: tuple[str, ...]  # DT_NEEDED sonames, in order


def _layout(data: bytes) -> tuple[str, bool]:
    if data[:4] != b"\x7fELF":
        raise ElfError("no ELF magic")
    bits = {1: False, 2: True}.get(data[4])
    order = {1: "<", 2: ">"}.get(data[5])
    if bits is None or order is None:
        raise ElfError(f"unknown ELF class {data[4]} or data encoding {data[5]}")
    return order, bits


def _segments(data: bytes, order: str, wide: bool) -> list[tuple[int, int, int, int]]:
    """(type, file offset, virtual address, file size) of each program header."""
    if wide:
        phoff, = struct.unpack_from(order + "Q", data, 0x20)
        phentsize, phnum = struct.unpack_from(order + "HH", data, 0x36)
    else:
        phoff, = struct.unpack_from(order + "I", data, 0x1C)
        phentsize, phnum = struct.unpack_from(order + "HH", data, 0x2A)
    segments = []
    for index in range(phnum):
        at = phoff + index * phentsize
        if wide:
            p_type, _flags, offset, vaddr, _paddr, filesz = struct.unpack_from(order + "IIQQQQ", data, at)
        else:
            p_type, offset, vaddr, _paddr, filesz = struct.unpack_from(order + "IIIII", data, at)
        segments.append((p_type, offset, vaddr, filesz))
    return segments


def _file_offset(segments, address: int) -> int:
    """Where virtual `address` sits in the file, through the PT_LOAD segment that maps it."""
    for p_type, offset, vaddr, filesz in segments:
        if p_type == 1 and vaddr <= address < vaddr + filesz:
            return offset + address - vaddr
    raise ElfError(f"address {address:#x} is in no loaded segment")


def elf_needs(data: bytes) -> ElfNeeds:
    order, wide = _layout(data)
    try:
        segments = _segments(data, order, wide)
        interpreter = None
        dynamic = None
        for p_type, offset, _vaddr, filesz in segments:
            if p_type == PT_INTERP:
                interpreter = data[offset:offset + filesz].rstrip(b"\0").decode()
            elif p_type == PT_DYNAMIC:
                dynamic = (offset, filesz)
        if dynamic is None:
            return ElfNeeds(interpreter, ())
        entry = struct.Struct(order + ("qQ" if wide else "iI"))
        needed_offsets, strtab = [], None
        for at in range(dynamic[0], dynamic[0] + dynamic[1], entry.size):
            tag, value = entry.unpack_from(data, at)
            if tag == DT_NULL:
                break
            if tag == DT_NEEDED:
                needed_offsets.append(value)
            elif tag == DT_STRTAB:
                strtab = _file_offset(segments, value)
    except struct.error as error:
        raise ElfError(f"truncated ELF file: {error}") from None
    if needed_offsets and strtab is None:
        raise ElfError("DT_NEEDED entries but no string table")
    names = tuple(data[strtab + at:data.index(b"\0", strtab + at)].decode() for at in needed_offsets)
    return ElfNeeds(interpreter, names)
