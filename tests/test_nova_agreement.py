"""The comparison of Nova's decisions with the own reading: every difference needs a stated reason, and every
stated reason a difference (scenarios/test_nova_agrees.py applies it to Nova's real answers)."""

from dataclasses import replace

from archmatrix.nova.agreement import Difference, StatedReason, differences, judged
from archmatrix.nova.decisions import NovaDecisions, refusal

XML = NovaDecisions("aarch64", "qemu", "virt", "cortex-a57", "uefi", "serial pty", "virtio", "virtio", "ide",
                    ("COMPUTE_ARCH_AARCH64",), None)


def test_every_compared_field_and_only_the_refusals_name():
    assert differences("h/kvm/c", XML, XML) == []
    changed = replace(XML, cpu="host-passthrough", cdrom_bus="scsi")
    assert differences("h/kvm/c", XML, changed) == [Difference("h/kvm/c", "cpu", "cortex-a57", "host-passthrough"),
                                                    Difference("h/kvm/c", "cdrom_bus", "ide", "scsi")]
    nova = refusal("InvalidMachineType: 'x' is not valid/supported machine type, Supported machine types are: [...]")
    own = refusal("InvalidMachineType: 'x' is not valid/supported machine type (no arch of this host lists it)")
    assert differences("h/kvm/c", nova, own) == []  # the same exception, worded otherwise
    assert [d.field for d in differences("h/kvm/c", nova, XML)] == [
        "guest_arch", "domain_type", "machine", "cpu", "firmware", "console", "video", "disk_bus", "cdrom_bus",
        "required_traits", "refused"]


def test_unexplained_differences_and_stale_reasons_are_both_found():
    found = [Difference("x86_64/qemu/emu-aarch64", "cdrom_bus", "ide", "scsi"),
             Difference("s390x/kvm/plain", "cpu", "host-model", "none")]
    stated = [StatedReason("x86_64/*/emu-aarch64*", "cdrom_bus", "a reason"),
              StatedReason("*/plain", "video", "a reason that explains nothing")]
    unexplained, stale = judged(found, stated)
    assert unexplained == [found[1]] and stale == [stated[1]]
    assert judged([], []) == ([], [])
