"""What each guest really runs on, one check per test, for every (arch, accelerator) cell.

All eight checks of a cell judge the same single boot. `pytest -k aarch64`,
`-k "s390x and console"` or `-k binary` pick cells and checks by id.
"""


def test_binary(verify):
    """The guest runs on the qemu-system-* its arch needs, and the QEMU process is that binary."""
    verify("binary")


def test_machine(verify):
    """The machine type is the arch's family, resolved as libvirt says, and QEMU built that machine."""
    verify("machine")


def test_accelerator(verify):
    """QEMU says KVM is on in a KVM cell and off in a TCG cell, and the domain type agrees."""
    verify("accelerator")


def test_console(verify):
    """The kernel enabled the arch's console device, and its output reached the log we read."""
    verify("console")


def test_boot(verify):
    """The guest reached its login prompt and reports the expected arch and byte order."""
    verify("boot")


def test_ssh(verify):
    """The guest answers SSH on its forwarded port, with the host key it printed on its console."""
    verify("ssh")


def test_guest_arch(verify):
    """Over SSH the guest reports the expected arch and byte order, and /proc/cpuinfo the plan's CPU."""
    verify("guest-arch")


def test_network(verify):
    """The guest fetches a file served on the host's loopback through the one address its network forwards
    there, and its checksum matches."""
    verify("network")
