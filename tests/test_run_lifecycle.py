"""A run's end and its shared boots (issue 21, items 4, 7 and 9): every undo step runs whatever the one before it
did, the run directory (its private key) goes last; a boot that fails outside libvirt is recorded once and every
check of the cell reports it; builders that share an apt directory take turns on one lock, with apt's own on."""

import threading
import time

import pytest

import archmatrix.run.pipeline as pipeline
from archmatrix.core.plan import CellKey
from archmatrix.errors import HarnessError
from archmatrix.images.debian import PrivateApt
from archmatrix.options import settings_for
from archmatrix.plugin.configure import _end
from archmatrix.plugin.state import PluginState
from archmatrix.run.lifecycle import Cleanup
from archmatrix.run.pipeline import Run
from archmatrix.run.rundir import RunDir

CHECKS = ("binary", "machine", "accelerator", "console", "boot", "ssh", "guest-arch", "network")


def test_every_undo_step_runs_whatever_the_ones_before_it_raised():
    ran = []

    def fails(what, error):
        def step():
            ran.append(what)
            raise error
        return step

    cleanup = Cleanup()
    cleanup.add("remove the run directory", lambda: ran.append("run dir"))
    cleanup.add("stop lab host", fails("lab", RuntimeError("virsh destroy failed")))
    cleanup.add("stop container host", fails("container", KeyboardInterrupt()))  # a Ctrl-C mid-cleanup
    failures = cleanup.run()
    assert ran == ["container", "lab", "run dir"], "last registered first, and none skipped"
    assert failures == ["stop container host: KeyboardInterrupt: ", "stop lab host: RuntimeError: virsh destroy failed"]
    assert cleanup.run() == [] and ran == ["container", "lab", "run dir"], "each step once"


def test_the_run_directory_with_its_private_key_goes_last_even_when_every_host_fails_to_stop(tmp_path, capsys):
    run_dir = RunDir.planned(tmp_path)
    run_dir.ensure()
    state = PluginState(settings_for([]), run_dir, [], lambda line: None)
    seen = []
    state.labs_cleanup.add("stop lab host lab_aarch64", lambda: (seen.append(run_dir.path.exists()), 1 / 0))
    state.cleanup.add("stop container host trixie", lambda: (seen.append(run_dir.path.exists()), {}["docker"]))
    _end(state)
    assert seen == [True, True], "the run directory was still there for every step"
    assert not run_dir.path.exists()
    errors = capsys.readouterr().err
    assert "stop lab host lab_aarch64: ZeroDivisionError" in errors and "stop container host trixie: KeyError" in errors


class _Host:
    is_local = True
    site = None

    def connection(self):
        return None

    def alive(self):
        return True


def test_a_boot_that_fails_outside_libvirt_is_tried_once_and_every_check_reports_it(tmp_path, monkeypatch):
    boots = []

    def boot_and_observe(*args, **kwargs):
        boots.append(args)
        raise OSError(28, "No space left on device", "disk.raw")  # the cell's copy of a large disk

    monkeypatch.setattr(pipeline, "boot_and_observe", boot_and_observe)
    run = Run(settings_for([]), RunDir.planned(tmp_path), [])
    monkeypatch.setattr(run, "host", lambda label: _Host())
    cell = CellKey("aarch64", "tcg", "local")
    errors = set()
    for _ in CHECKS:  # as the cell's eight checks each ask for its observation
        with pytest.raises(HarnessError) as raised:
            run.observe(cell, plan=None, image=None)
        errors.add(str(raised.value))
    assert len(boots) == 1, "one boot (one copy of the disk) for the cell, not one per check"
    assert errors == {"aarch64-tcg on local could not be booted: OSError: [Errno 28] No space left on device: "
                      "'disk.raw'"}


def test_apt_keeps_its_own_locks_and_builders_sharing_a_directory_take_turns(tmp_path):
    first, second = PrivateApt(tmp_path / "amd64", "amd64"), PrivateApt(tmp_path / "amd64", "amd64")
    assert not any("NoLocking" in option for option in first._options()), "apt's own locking stays on"
    order = []

    def slow():
        order.append("first starts")
        first._bounded(["sleep", "0.5"])
        order.append("first ends")

    thread = threading.Thread(target=slow)
    thread.start()
    time.sleep(0.1)
    second._bounded(["true"])  # the kernel build's apt, say, while the x86_64 image's runs
    order.append("second ran")
    thread.join()
    assert order == ["first starts", "first ends", "second ran"]
