"""`archmatrix cell` and `archmatrix matrix`: cells without pytest, and the built-in matrix with it.

`cell ARCH-ACCEL ...` runs the pytest-free pipeline (archmatrix/run/) one cell after the other, prints each
check's verdict, and writes the reports as a pytest run would; `matrix` runs the packaged scenarios
(`pytest --pyargs archmatrix.scenarios`) on every core, with the options given.
"""

from __future__ import annotations

import os
import subprocess
import sys

from archmatrix.core.arches import UnknownNameError, arch_named, check_accelerator
from archmatrix.core.checks import CHECKS
from archmatrix.core.matrix import CheckRecord
from archmatrix.core.plan import CellKey
from archmatrix.options import OptionError, add_options_to_argparse, checked_settings


def add_parsers(commands) -> None:
    cell = commands.add_parser("cell", help="boot cells and judge their checks without pytest (as the matrix would)")
    cell.add_argument("cells", nargs="+", metavar="ARCH-ACCEL",
                      help="e.g. aarch64-tcg s390x-tcg x86_64-kvm; -nova at the end: the domain Nova's driver writes "
                           "(aarch64-tcg-nova)")
    add_options_to_argparse(cell)
    matrix = commands.add_parser("matrix", help="the built-in matrix: pytest --pyargs archmatrix.scenarios "
                                                "on every core; further words go to pytest")
    matrix.add_argument("pytest_args", nargs="*", metavar="PYTEST-ARG",
                        help="e.g. --arch aarch64,s390x -k boot (put them after --)")


def _cell_keys(words: list[str], labels: list[str]) -> list[CellKey]:
    keys = []
    for word in words:
        nova = word.endswith("-nova")
        arch, sep, accel = word.removesuffix("-nova").rpartition("-")
        if not sep or not arch:
            raise OptionError(f"cell {word!r} is not of the form ARCH-ACCEL[-nova], e.g. aarch64-tcg or "
                              f"aarch64-tcg-nova")
        try:
            keys += [CellKey(arch_named(arch).name, check_accelerator(accel), label, nova) for label in labels]
        except UnknownNameError as error:
            raise OptionError(f"cell ARCH-ACCEL {word!r}: {error}") from None
    return keys


def cell_settings(args):
    """The run's options and the cells asked for, checked: OptionError or UnknownNameError naming the bad one."""
    settings = checked_settings(args)
    return settings, _cell_keys(args.cells, [spec.label for spec in settings.hosts])


def cell_command(args) -> int:
    from archmatrix.interrupts import interrupt_on_sigterm
    from archmatrix.run.lifecycle import Cleanup, remove_run_dir, start_extra_hosts
    from archmatrix.run.pipeline import Run, judge_cell
    from archmatrix.run.reports import MatrixRecords, sweep_run
    from archmatrix.run.rundir import RunDir

    try:
        settings, keys = cell_settings(args)
    except (OptionError, UnknownNameError) as error:
        print(f"archmatrix: {error}", file=sys.stderr)
        return 2
    interrupt_on_sigterm()
    run_dir, cleanup, labs_cleanup = RunDir.planned(), Cleanup(), Cleanup()
    say = lambda line: print(line, flush=True)  # noqa: E731
    specs = list(settings.hosts)
    complete, run = False, None
    try:
        specs += start_extra_hosts(settings, run_dir, cleanup, labs_cleanup, say)
        keys += _cell_keys(args.cells, [spec.label for spec in specs[len(settings.hosts):]])
        run = Run(settings, run_dir, specs, say)
        records = MatrixRecords(specs)
        for key in keys:
            judged = judge_cell(run, key, CHECKS)
            for check, (outcome, detail) in judged["outcomes"].items():
                records.add(f"{key.host}/{key.id}/{check}", CheckRecord(key.host, key.arch, key.accel, check,
                                                                        outcome, detail, judged["facts"], key.nova),
                            judged["host"])
                print(f"{key.host}/{key.id} {check:12} {outcome:12} {' '.join(detail.split())[:160]}")
        complete = True
    finally:
        if run is not None:
            run.close()
        failures = labs_cleanup.run()
        leaks = sweep_run(run_dir, specs)
        cells, written = records.write(settings.report_dir, settings.console_cap_mib, complete) if run else ([], [])
        failures += cleanup.run()
        remove_run_dir(run_dir)
    for failure in failures:
        print(f"archmatrix: cleanup: {failure}", file=sys.stderr)
    for leak in leaks:
        print(f"archmatrix: {leak.describe()}", file=sys.stderr)
    for path in written:
        print(f"wrote {path}")
    return 0 if all(cell.status in ("pass", "unsupported") for cell in cells) and not leaks else 1


def matrix_command(args) -> int:
    """pytest on the packaged scenarios, from any directory: what `./run matrix` is in a checkout."""
    cores = str(os.cpu_count() or 1)
    command = [sys.executable, "-m", "pytest", "--pyargs", "archmatrix.scenarios", "-p", "no:cacheprovider",
               "-n", cores, *args.pytest_args]
    return subprocess.call(command)
