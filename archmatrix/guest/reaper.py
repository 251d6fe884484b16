"""Destroying finished guests off the critical path.

`virDomainDestroy` of a TCG guest takes 1.4-2.0 s here (libvirt waits for
QEMU to go). Once a guest's verdicts are in, nothing waits for its end: a
thread of this process destroys it while the next guest boots, and the
process waits for the thread only when it is done with its hosts (and
before the run's end-of-run sweep, which catches anything a killed process
could not finish).
"""

from __future__ import annotations

import queue
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import libvirt

_pending: queue.Queue = queue.Queue()
_lock = threading.Lock()
_thread: threading.Thread | None = None


def _destroy_all() -> None:
    import libvirt

    while True:
        domain = _pending.get()
        try:
            domain.destroy()
        except libvirt.libvirtError:
            pass  # already gone: it powered off, crashed, or its host went away
        finally:
            _pending.task_done()


def destroy_later(domain: libvirt.virDomain) -> None:
    """Destroy `domain` in the background; `wait_for_reaped` waits for it."""
    global _thread
    with _lock:
        if _thread is None:
            _thread = threading.Thread(target=_destroy_all, name="archmatrix-reaper", daemon=True)
            _thread.start()
    _pending.put(domain)


def wait_for_reaped() -> None:
    """Return once every domain handed to destroy_later is gone."""
    _pending.join()
