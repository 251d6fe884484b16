"""The KVM probe's payload: a few hundred bytes that print a banner on the serial port as soon as they run.

Where KVM works they print within milliseconds of QEMU starting the guest, so a short bound settles
"claimed but broken" too, instead of a kernel's boot. The KVM cell itself still boots a real kernel.

Written here as machine code, no toolchain needed, for the host arches most KVM hosts are:
- x86_64: a Multiboot image with the a.out kludge (a flat binary QEMU's -kernel loads at 1 MiB, in 32-bit
  protected mode); it writes to COM1 (port 0x3f8) with `out`, each byte a VM exit QEMU's UART takes.
- aarch64: an arm64 Image (the header QEMU's loader and the boot protocol read); it stores to the virt
  board's PL011 data register (0x09000000) with the MMU off.
Other host arches probe with the built-in kernel (archmatrix/hosts/kvm_probe.py).
"""

from __future__ import annotations

import struct

PAYLOAD_RELEASE = "kvm-probe-payload"


def banner(arch: str) -> bytes:
    """What the payload prints: the banner the harness waits for, and a prompt, as a built-in image would."""
    return f"\r\nARCHMATRIX-BANNER arch={arch} release={PAYLOAD_RELEASE} endian=little\r\nkvm-probe login: ".encode()


def x86_64_payload() -> bytes:
    load = 0x100000
    magic, flags = 0x1BADB002, 0x00010000  # the a.out kludge: load and entry addresses given here
    header = struct.pack("<8I", magic, flags, (-(magic + flags)) & 0xFFFFFFFF, load, load, 0, 0, load + 0x20)
    message_at = load + 0x36
    code = b"".join([
        b"\xfc",  # cld
        b"\xbe" + struct.pack("<I", message_at),  # mov esi, message
        b"\x66\xba\xf8\x03",  # mov dx, 0x3f8
        b"\xac",  # next: lodsb
        b"\x84\xc0",  # test al, al
        b"\x74\x03",  # jz done
        b"\xee",  # out dx, al
        b"\xeb\xf8",  # jmp next
        b"\xfa\xf4\xeb\xfd",  # done: cli; hlt; jmp hlt
    ])
    assert len(header) + len(code) == message_at - load
    return header + code + banner("x86_64") + b"\0"


def aarch64_payload() -> bytes:
    words = [
        0xD2A12001,  # 0x40: movz x1, #0x0900, lsl #16   (the PL011's data register)
        0x100000E2,  # 0x44: adr x2, message (0x60)
        0x38401440,  # 0x48: next: ldrb w0, [x2], #1
        0x34000060,  # 0x4c: cbz w0, done (0x58)
        0x39000020,  # 0x50: strb w0, [x1]
        0x17FFFFFD,  # 0x54: b next
        0xD503207F,  # 0x58: done: wfi
        0x17FFFFFF,  # 0x5c: b done
    ]
    body = struct.pack("<8I", *words) + banner("aarch64") + b"\0"
    size = 0x40 + len(body)
    # arm64 Image header: branch past it, text_offset, image_size, flags (little endian), magic "ARM\x64".
    header = struct.pack("<II QQQ QQQ I I", 0x14000010, 0, 0x80000, size, 0b1010, 0, 0, 0, 0x644D5241, 0)
    assert len(header) == 0x40
    return header + body


PAYLOADS = {"x86_64": x86_64_payload, "aarch64": aarch64_payload}


def payload_for(host_arch: str) -> bytes | None:
    build = PAYLOADS.get(host_arch)
    return build() if build else None
