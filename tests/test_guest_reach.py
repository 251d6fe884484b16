"""Reading a guest's host key from its console: only a whole line counts."""

import time

from harness.guest.reach import wait_for_host_key
from harness.hosts.ssh import fingerprint_of

# A real line of an x86_64 guest booted under TCG inside the aarch64 lab host (its console log).
LINE = "EMUV-HOSTKEY ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB2BZay1xOI5YyCUzPU9wGLKEUL3ecVL3PMhL6YemBUf\n"
FINGERPRINT = "SHA256:ykBScepVy/jOyLtlzW3lQdpXL7vK8/FNU4WWV2qNMq4"


def test_a_whole_line_gives_the_guests_key(tmp_path):
    log = tmp_path / "console.log"
    log.write_text("EMUV-NET up 10.0.2.15\r\n" + LINE.replace("\n", "\r\n") + "EMUV-SSH listening on 22\r\n")
    key, why = wait_for_host_key(log, time.monotonic() + 1, lambda: True)
    assert why == "" and fingerprint_of(key) == FINGERPRINT


def test_half_a_line_is_not_taken_for_a_key(tmp_path):
    # The console once was read between two pieces of this line: the half key made SSH refuse the real one.
    log = tmp_path / "console.log"
    log.write_text("EMUV-NET up 10.0.2.15\n" + LINE[:60])
    key, why = wait_for_host_key(log, time.monotonic() + 0.5, lambda: True)
    assert key is None and "no host key" in why


def test_a_kernel_message_inside_the_line_is_taken_out(tmp_path):
    # Real, from an aarch64 KVM guest inside the aarch64 lab host: printk landed right after the key.
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB2BZay1xOI5YyCUzPU9wGLKEUL3ecVL3PMhL6YemBUf"
    log = tmp_path / "console.log"
    log.write_text(f"EMUV-HOSTKEY {key}[   27.455641] IPv6: ADDRCONF(NETDEV_CHANGE): eth0: link becomes ready\r\n"
                   "\r\nEMUV-SSH listening on 22\r\n")
    found, why = wait_for_host_key(log, time.monotonic() + 1, lambda: True)
    assert why == "" and fingerprint_of(found) == FINGERPRINT
    # And one inside the key itself: the two halves join again.
    log.write_text(f"EMUV-HOSTKEY {key[:40]}[   27.455641] IPv6: eth0: link becomes ready\n{key[40:]}\n")
    found, why = wait_for_host_key(log, time.monotonic() + 1, lambda: True)
    assert why == "" and fingerprint_of(found) == FINGERPRINT
