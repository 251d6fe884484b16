"""Starting a domain: its SSH port drawn (and drawn again if taken), created paused, its console stream and end
watch attached, then resumed. Every domain archmatrix boots (a cell's guest, the KVM probe, a scenario's guest,
a lab host) starts here.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING

from archmatrix.guest.console import Console
from archmatrix.guest.console_stream import ConsoleStream
from archmatrix.guest.domain import running_domain
from archmatrix.guest.lifecycle import DomainEndWatch

if TYPE_CHECKING:
    import libvirt

PORT_ATTEMPTS = 3


def free_local_port() -> int:
    """A port of this machine's loopback free now; QEMU's start fails if another process takes it first."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def port_taken(error: str) -> bool:
    """QEMU could not forward the chosen port (another process took it first): start again with another."""
    return "host forward" in error.lower() or "hostforward" in error.lower()


@contextmanager
def started_domain(conn: libvirt.virConnect, xml_for: Callable[[int | None], str],
                   draw_port: Callable[[], int] | None) -> Iterator[tuple[libvirt.virDomain, int | None]]:
    """The domain of `xml_for(port)` running paused, with its SSH port forwarded to `draw_port()`'s, if any.

    The port is free when drawn; should another process take it before QEMU binds it, QEMU refuses to
    start and another port is drawn.
    """
    import libvirt

    for attempt in range(PORT_ATTEMPTS):
        port = draw_port() if draw_port else None
        stack = ExitStack()
        try:
            domain = stack.enter_context(running_domain(conn, xml_for(port)))
        except libvirt.libvirtError as error:
            if port is None or not port_taken(str(error)) or attempt == PORT_ATTEMPTS - 1:
                raise
            continue
        with stack:
            yield domain, port
        return


@contextmanager
def watched(conn: libvirt.virConnect, domain: libvirt.virDomain, console: Console,
            device_name: str | None = None) -> Iterator[float]:
    """The paused domain with its console stream and end watch attached, resumed: yields its start (monotonic)."""
    stream = ConsoleStream(conn, domain, console, device_name)
    end_watch = DomainEndWatch(conn, domain, console)
    try:
        started = time.monotonic()
        domain.resume()
        yield started
    finally:
        end_watch.close()
        stream.close()


def domain_alive(domain: libvirt.virDomain) -> bool:
    import libvirt

    try:
        return bool(domain.isActive())
    except libvirt.libvirtError:
        return False
