"""What a guest's user-mode network (QEMU's slirp) reaches of its host: SSH forwarded in, the network check's file.

Without `restrict=on`, slirp connects a guest's TCP to 10.0.2.2 to the same port of the libvirt host's
loopback: every service listening there (measured: a planted listener on 127.0.0.1 accepted the guest's
connection, and so did an unrelated HTTP server). Restricted, the guest reaches nothing outside its own
network but what a `guestfwd` names, while a `hostfwd` still carries SSH in. The one `guestfwd` is the network
check's file: a connection to FILE_ADDRESS:FILE_PORT goes to the file's server on the host's loopback.

QEMU opens that forward (a TCP chardev) once, when the guest starts, and carries every connection the guest
makes to the address over it in turn: the server keeps it open across requests (guest/file_server.py).
DHCP still answers in restricted mode; DNS does not, and nothing here needs it.
"""

from __future__ import annotations

NETDEV_ID = "archmatrix-net0"
FILE_ADDRESS = "10.0.2.100"  # in slirp's 10.0.2.0/24, and not its gateway (.2) or DNS (.3), which guestfwd refuses
FILE_PORT = 80


def user_netdev(ssh_port: int, file_port: int | None) -> str:
    """QEMU's -netdev for a guest: SSH forwarded from `ssh_port` of the host's loopback; with `file_port`, the
    check's file at FILE_ADDRESS:FILE_PORT, served on that port of the host's loopback; nothing else."""
    netdev = f"user,id={NETDEV_ID},restrict=on,hostfwd=tcp:127.0.0.1:{ssh_port}-:22"
    if file_port:
        netdev += f",guestfwd=tcp:{FILE_ADDRESS}:{FILE_PORT}-tcp:127.0.0.1:{file_port}"
    return netdev


def file_url(path: str) -> str:
    """The URL a guest fetches the check's file from."""
    return f"http://{FILE_ADDRESS}:{FILE_PORT}{path}"


def user_mode_nic(nic_device: str, ssh_port: int, file_port: int | None, address: str) -> list[str]:
    """QEMU's arguments for the guest's NIC on that network (user_netdev); `address` places the device."""
    # A PCI NIC's network-boot ROM is of no use to a direct kernel boot, and QEMU looks for it
    # relative to its own binary: without it, a QEMU outside its install tree starts too.
    rom = ",romfile=" if nic_device.endswith("-pci") else ""
    return ["-netdev", user_netdev(ssh_port, file_port), "-device", f"{nic_device},netdev={NETDEV_ID}{rom}{address}"]
