"""The speed probe's payload: a fixed loop between two console lines, timed under TCG on each host.

It prints START, runs LOOPS iterations of a xorshift (a few ALU instructions and a branch, the same work on every
host), prints END followed by a banner and a prompt (so the harness's boot reads it as any guest), and halts.
The time from START to END, as the console stream delivers them, is how fast the host runs TCG guest code;
against the same payload's time on the reference machine (archmatrix/hosts/speed_probe.py) it scales the TCG
bounds. Written as machine code like the KVM probe's payload (archmatrix/hosts/kvm_payload.py), no toolchain:
- x86_64: a Multiboot image with the a.out kludge, 32-bit protected mode, COM1 at 0x3f8;
- aarch64: an arm64 Image, the virt board's PL011 at 0x09000000, the MMU off.
"""

from __future__ import annotations

import struct

PAYLOAD_RELEASE = "speed-probe-payload"
START = b"\r\nARCHMATRIX-SPEED start\r\n"
LOOPS = 0x08000000  # 134 million: 0.3 s of TCG on the reference machine, long beside the stream's milliseconds


def _end(arch: str) -> bytes:
    return (f"ARCHMATRIX-SPEED end\r\nARCHMATRIX-BANNER arch={arch} release={PAYLOAD_RELEASE} endian=little\r\n"
            f"speed-probe login: ").encode()


def x86_64_payload() -> bytes:
    load = 0x100000
    magic, flags = 0x1BADB002, 0x00010000  # the a.out kludge: load and entry addresses given here
    code_at = load + 0x20

    def prints(message_at: int) -> bytes:
        return b"".join([
            b"\xbe" + struct.pack("<I", message_at),  # mov esi, message
            b"\xac",  # next: lodsb
            b"\x84\xc0",  # test al, al
            b"\x74\x03",  # jz past
            b"\xee",  # out dx, al
            b"\xeb\xf8",  # jmp next
        ])

    def code(start_at: int, end_at: int) -> bytes:
        return b"".join([
            b"\xfc",  # cld
            b"\x66\xba\xf8\x03",  # mov dx, 0x3f8
            prints(start_at),
            b"\xb9" + struct.pack("<I", LOOPS),  # mov ecx, LOOPS
            b"\xbb\x78\x56\x34\x12",  # mov ebx, 0x12345678
            # loop: the xorshift32 step, ebx ^= ebx << 13; ebx ^= ebx >> 17; ebx ^= ebx << 5
            b"\x89\xd8", b"\xc1\xe0\x0d", b"\x31\xc3",  # mov eax, ebx; shl eax, 13; xor ebx, eax
            b"\x89\xd8", b"\xc1\xe8\x11", b"\x31\xc3",  # mov eax, ebx; shr eax, 17; xor ebx, eax
            b"\x89\xd8", b"\xc1\xe0\x05", b"\x31\xc3",  # mov eax, ebx; shl eax, 5; xor ebx, eax
            b"\x49",  # dec ecx
            b"\x75\xe8",  # jnz loop
            prints(end_at),
            b"\xfa\xf4\xeb\xfd",  # done: cli; hlt; jmp hlt
        ])

    size = len(code(0, 0))
    start_at = code_at + size
    end_at = start_at + len(START) + 1
    header = struct.pack("<8I", magic, flags, (-(magic + flags)) & 0xFFFFFFFF, load, load, 0, 0, code_at)
    return header + code(start_at, end_at) + START + b"\0" + _end("x86_64") + b"\0"


def aarch64_payload() -> bytes:
    messages_at = 0x94  # after the header (0x40 bytes) and the 21 instructions below
    end_at = messages_at + len(START) + 1

    def adr(rd: int, at: int, target: int) -> int:
        offset = target - at
        return 0x10000000 | ((offset & 0x3) << 29) | (((offset >> 2) & 0x7FFFF) << 5) | rd

    words = [
        0xD2A12001,  # 0x40: movz x1, #0x0900, lsl #16   (the PL011's data register)
        adr(2, 0x44, messages_at),  # 0x44: adr x2, START
        0x38401440,  # 0x48: next: ldrb w0, [x2], #1
        0x34000060,  # 0x4c: cbz w0, counted (0x58)
        0x39000020,  # 0x50: strb w0, [x1]
        0x17FFFFFD,  # 0x54: b next
        0xD2800003 | ((LOOPS & 0xFFFF) << 5),  # 0x58: counted: movz x3, #(LOOPS & 0xffff)
        0xF2A00003 | ((LOOPS >> 16) << 5),  # 0x5c: movk x3, #(LOOPS >> 16), lsl #16
        0x52AACF04,  # 0x60: movz w4, #0x5678, lsl #16   (the seed)
        0x4A043484,  # 0x64: loop: eor w4, w4, w4, lsl #13   (the xorshift32 step)
        0x4A444484,  # 0x68: eor w4, w4, w4, lsr #17
        0x4A041484,  # 0x6c: eor w4, w4, w4, lsl #5
        0xF1000463,  # 0x70: subs x3, x3, #1
        0x54FFFF81,  # 0x74: b.ne loop
        adr(2, 0x78, end_at),  # 0x78: adr x2, END
        0x38401440,  # 0x7c: next: ldrb w0, [x2], #1
        0x34000060,  # 0x80: cbz w0, done (0x8c)
        0x39000020,  # 0x84: strb w0, [x1]
        0x17FFFFFD,  # 0x88: b next
        0xD503207F,  # 0x8c: done: wfi
        0x17FFFFFF,  # 0x90: b done
    ]
    assert 0x40 + 4 * len(words) == messages_at and LOOPS >> 32 == 0
    body = struct.pack(f"<{len(words)}I", *words) + START + b"\0" + _end("aarch64") + b"\0"
    size = 0x40 + len(body)
    # arm64 Image header: branch past it, text_offset, image_size, flags (little endian), magic "ARM\x64".
    header = struct.pack("<II QQQ QQQ I I", 0x14000010, 0, 0x80000, size, 0b1010, 0, 0, 0, 0x644D5241, 0)
    return header + body


PAYLOADS = {"x86_64": x86_64_payload, "aarch64": aarch64_payload}


def payload_for(arch: str) -> bytes | None:
    build = PAYLOADS.get(arch)
    return build() if build else None
