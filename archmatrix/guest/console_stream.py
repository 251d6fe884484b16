"""A domain's console through libvirt's console stream, as `virsh console` reads it.

The domain is created paused and resumed only once the stream is open, so
the kernel's first byte is read. Works the same on this machine and on a
remote libvirt: nothing here touches a file on the libvirt host.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from archmatrix.guest.console import Console
from archmatrix.guest.events import ensure_event_loop

if TYPE_CHECKING:
    import libvirt

READ_BYTES = 64 * 1024


class ConsoleStream:
    """Feeds a Console from a non-blocking stream, inside libvirt's event loop thread."""

    def __init__(self, conn: libvirt.virConnect, domain: libvirt.virDomain, console: Console,
                 device_name: str | None = None):
        import libvirt

        ensure_event_loop()
        self.console = console
        self._closed = threading.Event()
        self._busy = threading.RLock()  # stream calls from the event thread and from close() never overlap
        self._stream = conn.newStream(libvirt.VIR_STREAM_NONBLOCK)
        # FORCE: a console left open by a crashed run of ours must not block this one.
        domain.openConsole(device_name, self._stream, libvirt.VIR_DOMAIN_CONSOLE_FORCE)
        events = libvirt.VIR_STREAM_EVENT_READABLE | libvirt.VIR_STREAM_EVENT_ERROR | libvirt.VIR_STREAM_EVENT_HANGUP
        self._stream.eventAddCallback(events, self._on_event, None)

    def _on_event(self, stream, events, _opaque) -> None:
        with self._busy:
            self._read(stream, events)

    def _read(self, stream, events) -> None:
        import libvirt

        if self._closed.is_set():
            return
        if events & libvirt.VIR_STREAM_EVENT_READABLE:
            while True:
                try:
                    data = stream.recv(READ_BYTES)
                except libvirt.libvirtError as error:
                    self._finish(f"console stream error: {error}")
                    return
                if data == -2:  # nothing more for now
                    break
                if not data:
                    self._finish("the console stream ended")
                    return
                self.console.feed(data)
        if events & (libvirt.VIR_STREAM_EVENT_ERROR | libvirt.VIR_STREAM_EVENT_HANGUP):
            self._finish("the console stream hung up")

    def _finish(self, why: str) -> None:
        if not self._closed.is_set():
            self._closed.set()
            self.console.end(why)
            self._release()

    def _release(self) -> None:
        import libvirt

        for step in (self._stream.eventRemoveCallback, self._stream.abort):
            try:
                step()
            except libvirt.libvirtError:
                pass  # the stream is already gone with its domain or connection

    def close(self) -> None:
        """Stop reading (from any thread); the console's log is closed too."""
        with self._busy:
            if not self._closed.is_set():
                self._closed.set()
                self._release()
        self.console.close()
