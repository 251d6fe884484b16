"""The speed probe's payload: code that rewrites itself, timed under TCG between two console lines on each host.

It prints START, runs LOOPS iterations that each store into an instruction of the loop itself, prints END
followed by a banner and a prompt (so the harness's boot reads it as any guest's), and halts. Each store makes
TCG throw the loop's translation away and translate it again: the payload times QEMU's translator, which is what
a kernel's boot mostly costs under TCG (it runs most of its code once). Four kinds of work were timed here and
inside the aarch64 lab host (TCG inside TCG), against the same host's kernel boots (31x to 33x slower there):

    arithmetic in a loop (translated once)   3.3x      I/O port reads (exits to QEMU's device model)   21x
    code rewritten each iteration            31x       stores to a new page each time (TLB refills)    22x

(this payload, probed again there: 38x to 42x; a loop of arithmetic had made the lab's bounds 3.4 times this
machine's, where its guests booted 31 to 33 times slower).

The time from START to END, as the console stream delivers them, against the same payload's on the reference
machine (archmatrix/hosts/speed_probe.py) scales the host's TCG bounds. Written as machine code like the KVM
probe's payload (archmatrix/hosts/kvm_payload.py), no toolchain:
- x86_64: a Multiboot image with the a.out kludge, 32-bit protected mode, COM1 at 0x3f8;
- aarch64: an arm64 Image, the virt board's PL011 at 0x09000000, the MMU off.
"""

from __future__ import annotations

import struct

PAYLOAD_RELEASE = "speed-probe-payload"
START = b"\r\nARCHMATRIX-SPEED start\r\n"
LOOPS = 30_000  # each a translation: about 0.35 s of TCG on the reference machine, long beside the stream's ms


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

    head = b"\xfc" + b"\x66\xba\xf8\x03"  # cld; mov dx, 0x3f8
    patch_at = code_at + len(head) + len(prints(0)) + 5 + 6  # past the loop's count and its store

    def code(start_at: int, end_at: int) -> bytes:
        return b"".join([
            head,
            prints(start_at),
            b"\xb9" + struct.pack("<I", LOOPS),  # mov ecx, LOOPS
            b"\x88\x0d" + struct.pack("<I", patch_at + 1),  # loop: mov [patch + 1], cl   (its immediate)
            b"\xb0\x00",  # patch: mov al, 0
            b"\x49",  # dec ecx
            b"\x75\xf5",  # jnz loop
            prints(end_at),
            b"\xfa\xf4\xeb\xfd",  # done: cli; hlt; jmp hlt
        ])

    size = len(code(0, 0))
    start_at = code_at + size
    end_at = start_at + len(START) + 1
    header = struct.pack("<8I", magic, flags, (-(magic + flags)) & 0xFFFFFFFF, load, load, 0, 0, code_at)
    assert code(start_at, end_at)[patch_at - code_at:patch_at - code_at + 2] == b"\xb0\x00"
    return header + code(start_at, end_at) + START + b"\0" + _end("x86_64") + b"\0"


def aarch64_payload() -> bytes:
    messages_at = 0xA0  # after the header (0x40 bytes) and the 24 instructions below
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
        0x52800003 | ((LOOPS & 0xFFFF) << 5),  # 0x58: counted: movz w3, #(LOOPS & 0xffff)
        0x72A00003 | ((LOOPS >> 16) << 5),  # 0x5c: movk w3, #(LOOPS >> 16), lsl #16
        0x528000C8,  # 0x60: movz w8, #6
        0x72AA5008,  # 0x64: movk w8, #0x5280, lsl #16   (w8: "movz w6, #0")
        adr(5, 0x68, 0x78),  # 0x68: adr x5, patch
        0x12003C67,  # 0x6c: loop: and w7, w3, #0xffff
        0x2A071507,  # 0x70: orr w7, w8, w7, lsl #5   ("movz w6, #count")
        0xB90000A7,  # 0x74: str w7, [x5]
        0x52800006,  # 0x78: patch: movz w6, #0   (rewritten each iteration)
        0x71000463,  # 0x7c: subs w3, w3, #1
        0x54FFFF61,  # 0x80: b.ne loop
        adr(2, 0x84, end_at),  # 0x84: adr x2, END
        0x38401440,  # 0x88: next: ldrb w0, [x2], #1
        0x34000060,  # 0x8c: cbz w0, done (0x98)
        0x39000020,  # 0x90: strb w0, [x1]
        0x17FFFFFD,  # 0x94: b next
        0xD503207F,  # 0x98: done: wfi
        0x17FFFFFF,  # 0x9c: b done
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
