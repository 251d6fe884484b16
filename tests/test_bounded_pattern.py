"""A user's --success-pattern: searched in a child process, each search bounded, so no pattern stalls the run."""

import threading
import time

import pytest

from archmatrix.core.arches import ARCHES
from archmatrix.core.plan import make_plan
from archmatrix.guest.bounded_pattern import BoundedPattern, PatternTimeout
from archmatrix.guest.console import Console
from archmatrix.guest.observe import _until_success
from tests.helpers import THIS_HOST, capabilities

CATASTROPHIC = "(a+)+$"  # a nested repeat: re backtracks 2^n times on n a's that are not at the end
CONSOLE = b"[    0.000000] Kernel command line: console=ttyAMA0 x" + b"a" * 40 + b"b\n"


def test_it_answers_as_re_would():
    with BoundedPattern(r"Select (a) (language)?", "--success-pattern aarch64=...") as pattern:
        assert pattern.search(b"... Select a language\n") == (len(b"... Select a language"), ("a", "language"))
        assert pattern.search(b"Select a lang") == (len(b"Select a "), ("a", ""))
        assert pattern.search(b"nothing here") is None
    with BoundedPattern("login: ", "--success-pattern x86_64=login: ") as pattern:
        assert pattern.search(b"cirros login: ") == (len(b"cirros login: "), ("login: ",))


def test_a_pattern_that_backtracks_without_end_is_stopped_at_its_bound_and_its_process_killed():
    pattern = BoundedPattern(CATASTROPHIC, f"--success-pattern aarch64={CATASTROPHIC}", limit_s=1.0)
    began = time.monotonic()
    with pytest.raises(PatternTimeout) as raised:
        pattern.search(CONSOLE)
    assert time.monotonic() - began < 3
    assert str(raised.value).startswith(f"--success-pattern aarch64={CATASTROPHIC} took longer than 1 s to search "
                                        f"{len(CONSOLE)} bytes of console output")
    assert pattern._child.poll() is not None  # killed, reaped: nothing left running


def test_a_user_image_with_such_a_pattern_fails_its_boot_naming_it_and_the_console_keeps_flowing(tmp_path):
    """As the boot waits for a user image's success pattern: the wait ends at the search's bound, not never, and
    the stream's reader (libvirt's event thread in a run) is never held up by the search."""
    plan = make_plan(ARCHES["aarch64"], "tcg", capabilities(THIS_HOST), None, user_image=True,
                     success_pattern=CATASTROPHIC)
    console = Console(tmp_path / "console.log")
    console.feed(CONSOLE)
    fed = []

    def keep_feeding() -> None:  # the stream's reader: each feed must return at once
        for _ in range(20):
            began = time.monotonic()
            console.feed(b"[    1.000000] more of the boot\n")
            fed.append(time.monotonic() - began)
            time.sleep(0.1)

    feeder = threading.Thread(target=keep_feeding)
    began = time.monotonic()
    feeder.start()
    facts = _until_success(plan, console, began, lambda: True)
    took = time.monotonic() - began
    feeder.join()
    assert "login_s" not in facts and took < 10
    assert facts["boot_failure"].startswith(f"success pattern {CATASTROPHIC!r} not seen: --success-pattern "
                                            f"aarch64={CATASTROPHIC} took longer than 2 s to search")
    assert max(fed) < 0.5
