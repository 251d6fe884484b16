"""Waiting for a guest's SSH server on its console: only a whole host key line counts, and the wait ends when
the guest says its server listens or why there is none."""

import platform
import subprocess
import sys
import threading
import time
from pathlib import Path

from archmatrix.guest.console import Console
from archmatrix.guest.reach import guest_arch_answers, guest_arch_command, wait_for_ssh_server
from archmatrix.ssh.keys import fingerprint_of

# A real line of an x86_64 guest booted under TCG inside the aarch64 lab host (its console log).
LINE = "ARCHMATRIX-HOSTKEY ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB2BZay1xOI5YyCUzPU9wGLKEUL3ecVL3PMhL6YemBUf\n"
FINGERPRINT = "SHA256:ykBScepVy/jOyLtlzW3lQdpXL7vK8/FNU4WWV2qNMq4"
LISTENING = "ARCHMATRIX-SSH listening on 22\r\n"


def console_with(tmp_path, text: str) -> Console:
    console = Console(tmp_path / "console.log")
    console.feed(text.encode())
    return console


def test_a_whole_line_gives_the_guests_key_once_it_listens(tmp_path):
    console = console_with(tmp_path, "ARCHMATRIX-NET up 10.0.2.15\r\n" + LINE.replace("\n", "\r\n") + LISTENING)
    key, why = wait_for_ssh_server(console, time.monotonic() + 1, lambda: True)
    assert why == "" and fingerprint_of(key) == FINGERPRINT


def test_the_wait_ends_when_the_line_arrives_not_at_a_poll(tmp_path):
    console = console_with(tmp_path, "ARCHMATRIX-NET up 10.0.2.15\r\n" + LINE)
    fed_at = []

    def later():
        time.sleep(0.3)
        fed_at.append(time.monotonic())
        console.feed(LISTENING.encode())

    feeder = threading.Thread(target=later)
    feeder.start()
    key, why = wait_for_ssh_server(console, time.monotonic() + 5, lambda: True)
    done = time.monotonic()
    feeder.join()
    assert why == "" and fingerprint_of(key) == FINGERPRINT
    assert done - fed_at[0] < 0.1


def test_a_flood_of_lines_before_the_listening_line_costs_little(tmp_path):
    # Each look reads a bounded end of the log, and one wake takes all the lines that came together.
    console = console_with(tmp_path, LINE)
    lines = "".join(f"[    3.{n:06d}] a kernel message the guest printed, number {n}\r\n" for n in range(40000))

    def flood():
        for start in range(0, len(lines), 4096):  # as a console stream delivers it
            console.feed(lines[start:start + 4096].encode())
        console.feed(LISTENING.encode())

    feeder = threading.Thread(target=flood)
    started = time.monotonic()
    feeder.start()
    key, why = wait_for_ssh_server(console, started + 30, lambda: True)
    feeder.join()
    assert why == "" and fingerprint_of(key) == FINGERPRINT
    assert time.monotonic() - started < 5


def test_a_key_without_a_listening_server_is_not_tried(tmp_path):
    console = console_with(tmp_path, LINE)
    key, why = wait_for_ssh_server(console, time.monotonic() + 0.3, lambda: True)
    assert key is None and "never said its SSH server listens" in why and "timeout" in why


def test_half_a_line_is_not_taken_for_a_key(tmp_path):
    # The console once was read between two pieces of this line: the half key made SSH refuse the real one.
    console = console_with(tmp_path, "ARCHMATRIX-NET up 10.0.2.15\n" + LINE[:60])
    key, why = wait_for_ssh_server(console, time.monotonic() + 0.3, lambda: True)
    assert key is None and "no host key" in why


def test_a_kernel_message_inside_the_listening_line_is_taken_out(tmp_path):
    # ppc64's hvc console writes 16 bytes at a time, and printk may come between two of them.
    console = console_with(tmp_path, LINE + "ARCHMATRIX-SSH list[    2.644733] IPv6: ADDRCONF(NETDEV_CHANGE): eth0: "
                                            "link becomes ready\r\nening on 22\r\n")
    key, why = wait_for_ssh_server(console, time.monotonic() + 1, lambda: True)
    assert why == "" and fingerprint_of(key) == FINGERPRINT


def test_a_guest_that_stops_is_not_waited_for(tmp_path):
    console = console_with(tmp_path, LINE)
    console.end("the domain was destroyed")
    started = time.monotonic()
    key, why = wait_for_ssh_server(console, started + 5, lambda: False)
    assert key is None and "guest stopped" in why and time.monotonic() - started < 1


def test_the_guests_reason_ends_the_wait_whole(tmp_path):
    console = console_with(tmp_path, "ARCHMATRIX-NET failed: no DHCP answer on eth0 (eth0 lo )\r\n")
    key, why = wait_for_ssh_server(console, time.monotonic() + 5, lambda: True)
    assert key is None and why == "the guest said: ARCHMATRIX-NET failed: no DHCP answer on eth0 (eth0 lo )"
    console = console_with(tmp_path, LINE + "ARCHMATRIX-SSH off: dropbear did not start\n")
    key, why = wait_for_ssh_server(console, time.monotonic() + 5, lambda: True)
    assert key is None and why == "the guest said: ARCHMATRIX-SSH off: dropbear did not start"


def test_a_kernel_message_inside_the_line_is_taken_out(tmp_path):
    # Real, from an aarch64 KVM guest inside the aarch64 lab host: printk landed right after the key.
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB2BZay1xOI5YyCUzPU9wGLKEUL3ecVL3PMhL6YemBUf"
    console = console_with(tmp_path, f"ARCHMATRIX-HOSTKEY {key}[   27.455641] IPv6: ADDRCONF(NETDEV_CHANGE): eth0: "
                                     "link becomes ready\r\n\r\n" + LISTENING)
    found, why = wait_for_ssh_server(console, time.monotonic() + 1, lambda: True)
    assert why == "" and fingerprint_of(found) == FINGERPRINT
    # And one inside the key itself: the two halves join again.
    console = console_with(tmp_path, f"ARCHMATRIX-HOSTKEY {key[:40]}[   27.455641] IPv6: eth0: link becomes ready\n"
                                     f"{key[40:]}\n" + LISTENING)
    found, why = wait_for_ssh_server(console, time.monotonic() + 1, lambda: True)
    assert why == "" and fingerprint_of(found) == FINGERPRINT


def test_the_guest_arch_answers_come_apart_line_by_line():
    # The guest's command run by this machine's shell (with its own sh for the guest's busybox): the same answers.
    command = guest_arch_command().replace("/bin/busybox", "/bin/sh")
    result = subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=True)
    facts = guest_arch_answers(result.stdout, result.stderr)
    assert facts.uname_m == platform.machine() and facts.uname_status == 0 and facts.uname_error == ""
    assert facts.endian == sys.byteorder
    assert facts.cpuinfo == Path("/proc/cpuinfo").read_text()[:4000]


def test_a_failed_uname_keeps_its_status_and_error():
    facts = guest_arch_answers("\n127\n1\nprocessor\t: 0\n", "sh: uname: not found\n")
    assert facts.uname_m == "" and facts.uname_status == 127 and facts.uname_error == "sh: uname: not found"
    assert facts.endian == "little" and facts.cpuinfo == "processor\t: 0\n"
