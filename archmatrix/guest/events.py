"""libvirt's event loop, run in one daemon thread per process.

Console streams and domain lifecycle events arrive through it, so nothing
waits by polling. It must be registered before the first connection is
opened: connections opened earlier never deliver events.
"""

from __future__ import annotations

import threading

_lock = threading.Lock()
_thread: threading.Thread | None = None


def ensure_event_loop() -> None:
    """Register libvirt's default event implementation and run it, once per process."""
    global _thread
    with _lock:
        if _thread is not None:
            return
        import libvirt

        libvirt.virEventRegisterDefaultImpl()

        def run() -> None:
            while True:
                libvirt.virEventRunDefaultImpl()

        _thread = threading.Thread(target=run, name="libvirt-events", daemon=True)
        _thread.start()
