"""A domain's end, as libvirt's lifecycle event tells it: a wait ends when the guest does, not at a poll."""

from __future__ import annotations

from typing import TYPE_CHECKING

from archmatrix.guest.console import Console
from archmatrix.guest.events import ensure_event_loop

if TYPE_CHECKING:
    import libvirt

# virDomainEventType values that mean the guest is gone (libvirt-domain.h).
ENDED = {5: "stopped", 6: "shut down", 8: "crashed"}


class DomainEndWatch:
    """Ends the console's waits when libvirt says the domain stopped, shut down or crashed."""

    def __init__(self, conn: libvirt.virConnect, domain: libvirt.virDomain, console: Console):
        import libvirt

        ensure_event_loop()
        self.conn = conn
        self.callback_id: int | None = conn.domainEventRegisterAny(
            domain, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, self._on_event, console)

    @staticmethod
    def _on_event(_conn, _domain, event: int, _detail: int, console: Console) -> None:
        if event in ENDED:
            console.end(f"the domain {ENDED[event]}")

    def close(self) -> None:
        import libvirt

        if self.callback_id is None:
            return
        try:
            self.conn.domainEventDeregisterAny(self.callback_id)
        except libvirt.libvirtError:
            pass  # the connection went away with its callbacks
        self.callback_id = None
