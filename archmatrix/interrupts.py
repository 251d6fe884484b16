"""SIGTERM ends a run like Ctrl-C, for the pytest plugin and the command line alike.

A CI timeout sends SIGTERM: raising KeyboardInterrupt lets every `finally`
run, so domains are destroyed, kernel builds killed and reports written.
"""

from __future__ import annotations

import signal


def _raise_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def interrupt_on_sigterm() -> None:
    signal.signal(signal.SIGTERM, _raise_interrupt)
