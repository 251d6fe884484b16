"""The commands a person runs outside pytest.

  archmatrix matrix [-- PYTEST-ARGS]          the built-in matrix (pytest --pyargs archmatrix.scenarios -n CORES)
  archmatrix cell ARCH-ACCEL... [OPTIONS]      cells without pytest: every check, the reports

  archmatrix images build [--arch ARCH ...] [--image-cache DIR]
  archmatrix images list  [--image-cache DIR]
  archmatrix report diff OLD.json NEW.json     exit 1 on a regression
  archmatrix report merge A.json B.json ... [--output-dir DIR]
  archmatrix report merge-junit OUT.xml A.xml B.xml ...
  archmatrix report validate matrix.json
  archmatrix nova-plan [--image-property KEY=VALUE ...] [--own-reading]   what Nova would do with an image
  archmatrix nova install [--nova-version V]   Nova's own environment, which nova-plan then asks
  archmatrix audit [--libvirt-uri URI]         exit 1 if a harness run left anything behind (domains, pools,
                                            QEMU processes, containers, scratch directories,
                                            image build scratch of a killed build)
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

from archmatrix.cli import argtypes
from archmatrix.cli.cells import add_parsers as add_cell_parsers
from archmatrix.cli.cells import cell_command, matrix_command
from archmatrix.cli.nova import add_parser as add_nova_parser
from archmatrix.cli.nova import nova_command
from archmatrix.cli.nova_plan import add_parser as add_nova_plan_parser
from archmatrix.cli.nova_plan import nova_plan_command
from archmatrix.core.arches import ALL_ARCHES, ARCHES, UnknownNameError, arch_named, default_arches, split_names
from archmatrix.core.text import terminal_text
from archmatrix.images.cache import ImageCache, ImageError
from archmatrix.inputs import InputError
from archmatrix.inputs.numbers import SECONDS, SLOWER_MIN_S, SLOWER_RATIO
from archmatrix.interrupts import interrupt_on_sigterm
from archmatrix.paths import default_cache_dir


def _parser() -> argparse.ArgumentParser:
    """Every argument is checked as argparse converts it (archmatrix/cli/argtypes.py): a bad one is exit 2."""
    parser = argparse.ArgumentParser(prog="archmatrix", description="archmatrix helper commands.")
    commands = parser.add_subparsers(dest="command", required=True)
    images_parser = commands.add_parser("images", help="the built-in guest images")
    images = images_parser.add_subparsers(dest="action", required=True)
    builtin = [name for name in default_arches() if ARCHES[name].has_builtin_image]
    build = images.add_parser("build", help="build (or verify the cache of) the built-in images")
    build.add_argument("--arch", action="append", default=[], metavar="ARCH[,ARCH...]", type=argtypes.arch_names(),
                       help="arches to build, repeatable, or 'all' (default: the default matrix: "
                            f"{', '.join(builtin)})")
    build.add_argument("--apt-timeout", type=argtypes.number(SECONDS), default=600.0, metavar="SECONDS",
                       help=f"bound on each apt command, {SECONDS}; apt can stall on a full disk (default: 600)")
    listing = images.add_parser("list", help="show the cached image of each arch, if any")
    for sub in (build, listing):
        sub.add_argument("--image-cache", default=None, metavar="DIR", type=argtypes.writable_dir(),
                         help=f"image cache directory (default: {default_cache_dir()})")

    audit = commands.add_parser("audit", help="list domains, storage pools, QEMU processes, container hosts, "
                                              "scratch files and killed image builds' scratch harness runs "
                                              "left behind; exit 1 if there are any")
    audit.add_argument("--libvirt-uri", default="qemu:///system", metavar="URI", type=argtypes.uri(),
                       help="the libvirt host whose domains and pools to look at (default: qemu:///system)")
    report = commands.add_parser("report", help="compare, merge and check matrix reports")
    reports = report.add_subparsers(dest="action", required=True)
    diff = reports.add_parser("diff", help="what changed between two runs; exit 1 on a regression")
    diff.add_argument("old", type=argtypes.input_file(), metavar="OLD.json")
    diff.add_argument("new", type=argtypes.input_file(), metavar="NEW.json")
    diff.add_argument("--slower-ratio", type=argtypes.number(SLOWER_RATIO), default=1.5, metavar="RATIO",
                      help=f"a boot this many times slower counts as a regression: {SLOWER_RATIO} (default 1.5)")
    diff.add_argument("--slower-min-s", type=argtypes.number(SLOWER_MIN_S), default=1.0, metavar="SECONDS",
                      help=f"...and only when at least this many seconds slower: {SLOWER_MIN_S} (default 1.0)")
    merge = reports.add_parser("merge", help="combine runs (e.g. of several hosts) into one matrix")
    merge.add_argument("inputs", type=argtypes.input_file(), nargs="+", metavar="MATRIX.json")
    merge.add_argument("--output-dir", type=argtypes.writable_dir(), default=Path("reports/merged"), metavar="DIR",
                       help="where the merged matrix.json, junit.xml, matrix.md and matrix.html go "
                            "(default: reports/merged)")
    merge_junit = reports.add_parser("merge-junit", help="merge JUnit files into one")
    merge_junit.add_argument("output", type=argtypes.output_file(), metavar="OUT.xml")
    merge_junit.add_argument("inputs", type=argtypes.input_file(), nargs="+", metavar="JUNIT.xml")
    validate = reports.add_parser("validate", help="check a matrix.json against its JSON schema")
    validate.add_argument("matrix", type=argtypes.input_file(), metavar="MATRIX.json")
    add_nova_plan_parser(commands)
    add_nova_parser(commands)
    add_cell_parsers(commands)
    return parser


def report_command(args) -> int:
    from archmatrix.report import compare, console_logs, html, json_report, junit, markdown

    if args.action == "merge-junit":
        print(f"wrote {junit.merge_junit(args.inputs, args.output)}")
        return 0
    if args.action == "validate":
        problems = json_report.schema_problems(json_report.load_matrix(args.matrix))
        for problem in problems:  # a problem quotes the value: a guest's text, shown
            print(terminal_text(f"{args.matrix}: {problem}"), file=sys.stderr)
        return 1 if problems else 0
    if args.action == "diff":
        old, new = json_report.load_valid_matrix(args.old), json_report.load_valid_matrix(args.new)
        changes = compare.diff(old, new, args.slower_ratio, args.slower_min_s)
        for change in changes:  # a detail quotes reasons and facts: a guest's text, shown
            print(terminal_text(f"{change.kind:10} {change.cell:28} {change.detail}"))
        regressions = [c for c in changes if c.is_regression]
        print(f"{len(changes)} changes, {len(regressions)} regressions")
        return 1 if regressions else 0
    document = compare.merge([json_report.load_valid_matrix(path) for path in args.inputs])
    out = args.output_dir
    # Each input's console logs are named relative to its own directory: copied into the merged report.
    document = compare.merge([console_logs.carried(json_report.load_matrix(path), path.parent, out)
                              for path in args.inputs])
    written = [json_report.write_json(document, out / "matrix.json"), junit.write_junit(document, out / "junit.xml"),
               markdown.write_markdown(document, out / "matrix.md"), html.write_html(document, out / "matrix.html")]
    for path in written:
        print(f"wrote {path}")
    return 0


def build_images(arch_names: list[str], cache: ImageCache) -> int:
    if ALL_ARCHES in arch_names:
        arches = [a for a in ARCHES.values() if a.has_builtin_image]
    else:
        arches = [arch_named(name) for name in arch_names] or [ARCHES[n] for n in default_arches()
                                                              if ARCHES[n].has_builtin_image]
    failed = 0
    for arch in arches:
        started = time.monotonic()
        if not arch.has_builtin_image:
            print(f"{arch.name:10} no built-in image: {arch.no_image_reason}", file=sys.stderr)
            failed += 1
            continue
        try:
            with warnings.catch_warnings(record=True) as said:
                warnings.simplefilter("always")
                image = cache.get_or_build(arch)
            for warning in said:
                print(f"{arch.name:10} WARNING {warning.message}", file=sys.stderr)
        except ImageError as error:
            print(f"{arch.name:10} FAILED  {error}", file=sys.stderr)
            failed += 1
            continue
        print(f"{arch.name:10} {time.monotonic() - started:6.1f} s  kernel {image.kernel_release}  "
              f"initrd {image.initrd_sha256[:12]}  in {cache.root}")
    return 1 if failed else 0


def list_images(cache: ImageCache) -> int:
    for arch in ARCHES.values():
        image = cache.lookup(arch) if arch.has_builtin_image else None
        state = f"cached, kernel {image.kernel_release}" if image else (
            "not built" if arch.has_builtin_image else f"no built-in image: {arch.no_image_reason}")
        print(f"{arch.name:10} {state}")
    return 0


def main(argv: list[str] | None = None) -> int:
    interrupt_on_sigterm()
    args = _parser().parse_args(argv)
    if args.command == "audit":
        from archmatrix.cleanup.sweep import audit

        found = audit(args.libvirt_uri, default_cache_dir())
        for leftover in found:
            print(f"left behind: {leftover}")
        print(f"archmatrix audit: {len(found)} leftovers")
        return 1 if found else 0
    if args.command == "nova-plan":
        return nova_plan_command(args)
    if args.command == "nova":
        return nova_command(args)
    if args.command == "cell":
        return cell_command(args)
    if args.command == "matrix":
        return matrix_command(args)
    if args.command == "report":
        from archmatrix.report.junit import JUnitError

        try:
            return report_command(args)
        except (InputError, JUnitError) as error:  # a report that cannot be read, or not as what it is given as
            print(terminal_text(f"archmatrix: {error}"), file=sys.stderr)
            return 2
    cache = ImageCache(args.image_cache, getattr(args, "apt_timeout", 600.0),
                       progress=lambda line: print(line, flush=True))
    try:
        if args.action == "build":
            return build_images(split_names(args.arch), cache)
        return list_images(cache)
    except UnknownNameError as error:
        print(f"archmatrix: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
