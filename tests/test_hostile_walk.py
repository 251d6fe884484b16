"""The walk: every way into archmatrix, tried with the hostile values of its type.

What is walked comes from the parsers themselves: the plugin's options from the parser its
pytest_addoption fills, the hosts file's fields from HOSTS_FILE_KEYS, the command line's arguments from
its argparse parser. An argument's type is its metavar (SECONDS, FILE, ARCH=MACHINE, ...), a flag or a
choice; a type with no hostile values in KINDS fails the walk, so a new option cannot go untried.

Each try must end in a clear usage error (the option named, and what is valid), never a traceback or a
hang, and leave nothing behind. The few values that are valid for an option are in VALID, and must pass.
The tries run in process (the parsers and the checks a run makes before it creates anything); a sample
runs as a person runs it, in a subprocess, to prove the wiring.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from _pytest.config.argparsing import Parser

from archmatrix import plugin
from archmatrix.cli.cells import cell_settings
from archmatrix.cli.main import _parser as cli_parser
from archmatrix.core.arches import UnknownNameError
from archmatrix.hosts.spec import HOSTS_FILE_KEYS, default_label
from archmatrix.options import OptionError
from tests import hostile
from tests.hostile import CONTROL, HUGE, Hung, Places, deadline, leftovers

# A metavar -> the hostile values of that type (a function of the places hostile paths name).
KINDS: dict[str, Callable[[Places], list[str]]] = {
    "SECONDS": lambda places: hostile.numbers(),
    "FACTOR": lambda places: hostile.numbers(),
    "MIB": lambda places: hostile.numbers(),
    "RATIO": lambda places: hostile.numbers(),
    "ARCH[,ARCH...]": lambda places: hostile.name_lists(),
    "ARCH-ACCEL": lambda places: hostile.name_lists(),
    "ACCEL[,ACCEL...]": lambda places: hostile.name_lists(),
    "RELEASE[,RELEASE...]": lambda places: hostile.name_lists(),
    "FILE": hostile.input_files,
    "MATRIX.json": hostile.input_files,
    "OLD.json": hostile.input_files,
    "NEW.json": hostile.input_files,
    "JUNIT.xml": hostile.input_files,
    "DIR": hostile.output_dirs,
    "OUT.xml": hostile.output_files,
    "URI": lambda places: hostile.uris(),
    "[LABEL=]URI": lambda places: hostile.uris() + [f"{label}=qemu:///system" for label in hostile.labels()],
    "LABEL": lambda places: hostile.labels(),
    "KEY=VALUE": lambda places: hostile.properties(),
    "LABEL=USER@HOST[:PORT][,key=PATH]...": lambda places: hostile.ssh_ways(places, default_label("qemu:///system")),
    "ARCH=KERNEL[,INITRD]|ARCH=DISK": lambda places: hostile.keyed(
        hostile.input_files(places) + [f"{places.kernel},{path}" for path in hostile.input_files(places)],
        str(places.kernel)),
    "ARCH=FILE": lambda places: hostile.keyed(hostile.input_files(places), str(places.properties)),
    "ARCH=REGEX": lambda places: hostile.keyed([*hostile.texts(), "(", "[z-a]", "a{99999999999}"], "login:"),
    "ARCH=MACHINE": lambda places: hostile.keyed(hostile.texts(), "virt"),
    "ARCH=ARGS": lambda places: hostile.keyed([*hostile.texts(), "quiet </cmdline>", "a" * 1025], "quiet"),
    "ARCH=KEY=VALUE": lambda places: hostile.keyed(hostile.properties(), "hw_machine_type=virt"),
    "ARCH[-ACCEL]=SECONDS": lambda places: hostile.keyed(hostile.numbers(), "5", ("aarch64-hvf", "aarch64-",
                                                                                "aarch64-tcg\n", "-tcg")),
    "VERSION": lambda places: [*hostile.texts(), "34", "34.0.0-rc1", "34.0.0\n", "../34.0.0", "1" * 300],
    "SECTION.OPTION=VALUE": lambda places: [*hostile.texts(), "cpu_mode=host-model", "libvirt.cpu_mode=",
                                            "libvirt.virt_type=kvm", "DEFAULT.instances_path=/tmp",
                                            "libvirt.cpu mode=x", "libvirt.cpu_mode=a\nb"],
    "flag": lambda places: ["=yes", "=", "=\n", "=0"],
    "choice": lambda places: ["", "nan", "-1", *CONTROL, "KERNEL", "kernel\n", "kvm\n", HUGE],
}

# Values of those lists that are valid for one option: they must pass.
VALID = {"--tb-cache": {"0"}, "--slower-min-s": {"0"}}
# Arguments checked by another program: `archmatrix matrix` hands its words to pytest, whose plugin options are
# the first walk's (test_every_plugin_option_refuses_its_hostile_values).
PASSED_ON = {"PYTEST-ARG": "handed to pytest, whose options the plugin walk covers"}
# What an option needs beside it for its own check to be reached.
CONTEXT = {"--success-pattern": lambda places: ["--image", f"aarch64={places.kernel}"]}
# The good value of each positional, while another argument of its command is tried.
SAMPLES = {"OLD.json": "matrix", "NEW.json": "matrix", "MATRIX.json": "matrix", "JUNIT.xml": "junit"}
# How a message says what would be valid: ours say "valid: ..."; argparse's own say these.
SAYS_WHAT_IS_VALID = ("valid", "is not of the form", "choose from", "ignored explicit argument")
TRY_S = 5


class Refused(Exception):
    """The usage error a try ended in: pytest's UsageError, or the command line's exit 2 and its stderr."""


@dataclass
class Tally:
    """What the tries came to; `problems` lists every try that was not a clear refusal or a valid pass."""

    roots: tuple[Path, ...]
    tried: int = 0
    clear: int = 0
    passed: int = 0
    problems: list[str] = field(default_factory=list)

    def judge(self, what: str, value: str, names: tuple[str, ...], attempt: Callable[[], None],
              valid: bool = False) -> None:
        self.tried += 1
        shown = f"{what} {value[:60]!r}"
        before = leftovers(*self.roots)
        try:
            with deadline(TRY_S):
                attempt()
        except Refused as refusal:
            message = str(refusal)
            left = leftovers(*self.roots) - before
            if valid:
                self.problems.append(f"{shown}: valid, but refused: {message[-300:]}")
            elif left:
                self.problems.append(f"{shown}: refused, but left behind {sorted(left)[:3]}")
            elif not (any(name in message for name in names) and any(s in message for s in SAYS_WHAT_IS_VALID)):
                self.problems.append(f"{shown}: refused without naming {names[0]} and what is valid: {message[-300:]}")
            elif "Traceback" in message:
                self.problems.append(f"{shown}: refused with a traceback: {message[-300:]}")
            else:
                self.clear += 1
            return
        except Hung:
            self.problems.append(f"{shown}: hung (no answer in {TRY_S} s)")
            return
        except BaseException as error:  # noqa: B036 -- any other end is the finding: a traceback, an exit
            where = traceback.extract_tb(error.__traceback__)[-1]
            self.problems.append(f"{shown}: {type(error).__name__}: {str(error)[:200]} "
                                 f"({Path(where.filename).name}:{where.lineno})")
            return
        if valid:
            self.passed += 1
        else:
            self.problems.append(f"{shown}: accepted")

    def report(self, request, title: str) -> None:
        line = (f"{title}: {self.tried} hostile inputs tried, {self.clear} gave a clear usage error, "
                f"{self.passed} were valid for their option and passed")
        print(f"\n{line}")
        request.node.add_report_section("call", "hostile inputs", line)
        assert not self.problems, f"{line}; {len(self.problems)} did not:\n" + "\n".join(self.problems)
        assert self.tried == self.clear + self.passed


@pytest.fixture
def walk(tmp_path, monkeypatch):
    """A private place for everything a try could create: the working directory, the caches, the temp dir."""
    places = Places.make(tmp_path / "places")
    for name in ("cwd", "xdg", "tmp"):
        (tmp_path / name).mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("ARCHMATRIX_LIBVIRT_URI", raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    yield places, Tally((tmp_path / "cwd", tmp_path / "xdg", tmp_path / "tmp", places.root))
    places.unblock()


def kind_of(action: argparse.Action) -> str:
    if action.nargs == 0:
        return "flag"
    if action.choices:
        return "choice"
    return action.metavar or action.dest


def hostile_values(action: argparse.Action, places: Places, tally: Tally, name: str) -> list[str]:
    kind = kind_of(action)
    if kind not in KINDS:
        tally.problems.append(f"{name}: no hostile values for its type {kind!r}; add them to KINDS")
        return []
    return KINDS[kind](places)


def plugin_parser() -> Parser:
    parser = Parser(_ispytest=True)
    plugin.pytest_addoption(parser)
    return parser


def plugin_options(parser: Parser) -> list[argparse.Action]:
    """Every option the plugin registers, from pytest's own argparse parser (not its positional file_or_dir)."""
    return [action for action in parser._getparser()._actions if action.option_strings]


def check_plugin(parser: Parser, argv: list[str]) -> None:
    try:
        plugin.checked_settings(parser.parse(argv))
    except pytest.UsageError as error:
        raise Refused(str(error)) from None


def test_every_plugin_option_refuses_its_hostile_values(walk, request):
    places, tally = walk
    parser = plugin_parser()
    options = plugin_options(parser)
    assert len(options) >= 20, [action.option_strings for action in options]
    for action in options:
        option = action.option_strings[0]
        context = CONTEXT.get(option, lambda places: [])(places)
        for value in hostile_values(action, places, tally, option):
            argv = [*context, option + value] if kind_of(action) == "flag" else [*context, f"{option}={value}"]
            tally.judge(option, value, (option,), lambda argv=argv: check_plugin(parser, argv),
                        valid=value in VALID.get(option, ()))
    tally.report(request, "plugin options")


def toml_string(text: str) -> str:
    """A TOML basic string holding exactly `text` (every control character escaped, as TOML requires)."""
    return '"' + "".join(f"\\u{ord(c):04x}" if ord(c) < 0x20 or 0x7f <= ord(c) <= 0x9f or c in '"\\' else c
                         for c in text) + '"'


WRONG_TYPES = ["5", "-1", "0", "nan", "inf", "-inf", "3.5", "true", "[]", '["a"]', "{}", "{ a = 1 }",
               "1979-05-27T07:32:00Z", "07:32:00"]
# A hosts file field -> its hostile strings (besides WRONG_TYPES), and what the rest of its table holds.
FIELDS: dict[str, tuple[Callable[[Places], list[str]], dict[str, str]]] = {
    "uri": (lambda places: hostile.uris(), {"label": "h"}),
    "label": (lambda places: hostile.labels(), {"uri": "qemu:///system"}),
    "ssh": (lambda places: [*hostile.texts(), *(f"root@h:{port}" for port in ("70000", "-1", "0", "nan", "", "22\n")),
                            "@h", "root@", "h", "root@h,key=/k"], {"uri": "qemu+tcp://h/system"}),
    "ssh_key": (hostile.input_files, {"uri": "qemu+tcp://h/system", "ssh": "root@h"}),
    "ssh_known_hosts": (hostile.input_files, {"uri": "qemu+tcp://h/system", "ssh": "root@h"}),
    "ssh_fingerprint": (lambda places: [*hostile.texts(), "md5:aa", "SHA256:", "SHA256:a\n"],
                        {"uri": "qemu+tcp://h/system", "ssh": "root@h"}),
}
WHOLE_FILES = ['host = "qemu:///system"', 'host = ["qemu:///system"]', "host = [1]", "host = []", "host = [[]]",
               '[host]\nuri = "qemu:///system"', "", "not toml [", '[[host]]\nurl = "qemu:///system"',
               '[[host]]\nlabel = "h"', '[[host]]\nuri = "qemu:///system"\n[[host]]\nuri = "qemu:///system"',
               '[[host]]\nuri = "qemu:///system"\nssh_key = "/k"']


def test_every_hosts_file_field_refuses_its_hostile_values(walk, request):
    places, tally = walk
    parser = plugin_parser()
    assert set(FIELDS) == HOSTS_FILE_KEYS, "every field of a hosts file needs its hostile values here"
    files = iter(range(1_000_000))

    def attempt(text: str | bytes) -> Callable[[], None]:
        path = places.root / f"hosts-{next(files)}.toml"
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        return lambda: check_plugin(parser, [f"--hosts-file={path}"])

    for name, (strings, rest) in FIELDS.items():
        table = "".join(f"{key} = {toml_string(value)}\n" for key, value in rest.items())
        for value in [*WRONG_TYPES, *(toml_string(text) for text in strings(places))]:
            tally.judge(f"--hosts-file {name} =", value, ("--hosts-file", name),
                        attempt(f"[[host]]\n{table}{name} = {value}\n"))
    for text in [*WHOLE_FILES, places.not_utf8.read_bytes()]:
        tally.judge("--hosts-file holding", str(text), ("--hosts-file",), attempt(text))
    tally.report(request, "hosts file fields")


def commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """(command words, its parser) of every command that takes arguments of its own, depth first."""
    subparsers = [action for action in parser._actions if isinstance(action, argparse._SubParsersAction)]
    if not subparsers:
        yield path, parser
    for action in subparsers:
        for name, sub in action.choices.items():
            yield from commands(sub, (*path, name))


def check_cli(argv: list[str]) -> None:
    """As the command checks its words: argparse, then (for `cell`) the run's options and cells, as it runs them."""
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
        try:
            args = cli_parser().parse_args(argv)
        except SystemExit as exit_:
            if exit_.code == 2:
                raise Refused(stderr.getvalue()) from None
            raise
    if args.command == "cell":
        try:
            cell_settings(args)
        except (OptionError, UnknownNameError) as error:
            raise Refused(str(error)) from None


def test_every_command_line_argument_refuses_its_hostile_values(walk, request):
    places, tally = walk
    walked = 0
    for words, parser in commands(cli_parser()):
        arguments = [action for action in parser._actions if not isinstance(action, argparse._HelpAction)]
        positionals = [action for action in arguments if not action.option_strings]
        for action in arguments:
            if kind_of(action) in PASSED_ON:
                continue
            walked += 1
            name = action.option_strings[0] if action.option_strings else kind_of(action)
            for value in hostile_values(action, places, tally, f"{' '.join(words)} {name}"):
                fill = []
                for other in positionals:
                    if other is action:
                        fill.append(value)
                    elif kind_of(other) == "ARCH-ACCEL":
                        fill.append("aarch64-tcg")
                    elif kind_of(other) in SAMPLES:
                        fill.append(str(getattr(places, SAMPLES[kind_of(other)])))
                    else:
                        fill.append(str(places.root / "out" / "merged.xml"))
                if not action.option_strings:
                    option = []
                elif kind_of(action) == "flag":
                    option = [name + value]
                else:
                    option = [f"{name}={value}"]
                option = [*CONTEXT.get(name, lambda places: [])(places), *option]
                argv = [*words, *option, "--", *fill] if fill else [*words, *option]
                tally.judge(f"archmatrix {' '.join(words)} {name}", value, (name,),
                            lambda argv=argv: check_cli(argv), valid=value in VALID.get(name, ()))
    assert walked >= 15
    tally.report(request, "command line arguments")


def test_a_sample_as_a_person_runs_it_ends_in_a_usage_error_and_leaves_nothing(tmp_path):
    """The wiring: pytest with the plugin, and the command, each in a process of its own."""
    places = Places.make(tmp_path / "places")
    work, temp = tmp_path / "cwd", tmp_path / "tmp"
    work.mkdir()
    temp.mkdir()
    (work / "test_never.py").write_text("def test_never(cell):\n    raise AssertionError('ran')\n")
    pytest_cases = [["--timeout-factor", "nan"], ["--hosts-file", str(places.fifo)],
                    ["--image", f"aarch64={places.fifo}"], ["--libvirt-uri", "qemu:///system\n"],
                    ["--report-dir", str(places.under_file)], ["--lab-host-without-kvm=yes"],
                    ["--tb-cache", "1e999"], ["--boot-timeout", "aarch64=-inf"]]
    cli_cases = [["report", "diff", str(places.fifo), str(places.matrix)],
                 ["images", "list", "--image-cache", str(places.under_file)],
                 ["report", "diff", "--slower-ratio=nan", str(places.matrix), str(places.matrix)],
                 ["nova-plan", "--libvirt-uri", "qemu:///system\x1b"]]
    env = dict(os.environ, TMPDIR=str(temp), XDG_CACHE_HOME=str(tmp_path / "xdg"))
    env.pop("ARCHMATRIX_LIBVIRT_URI", None)
    before = leftovers(work, temp, places.root)
    runs = [(case, subprocess.Popen([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--collect-only",
                                     *case], cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    text=True), pytest.ExitCode.USAGE_ERROR) for case in pytest_cases]
    runs += [(case, subprocess.Popen([sys.executable, "-m", "archmatrix.cli.main", *case], cwd=work, env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True), 2)
             for case in cli_cases]
    problems = []
    try:
        for case, process, code in runs:
            try:
                stdout, stderr = process.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                problems.append(f"{case}: hung")
                continue
            option = next(arg for arg in case if arg.startswith("--") or arg.startswith("/"))
            option = option.partition("=")[0]
            if process.returncode != code or "Traceback" in stdout + stderr or option not in stderr \
                    or not any(s in stderr for s in SAYS_WHAT_IS_VALID):
                problems.append(f"{case}: exit {process.returncode}: {(stdout + stderr)[-400:]}")
    finally:
        places.unblock()
    left = leftovers(work, temp, places.root) - before
    print(f"\nsubprocess sample: {len(runs)} hostile inputs tried, {len(runs) - len(problems)} gave a clear "
          f"usage error")
    assert not problems, "\n".join(problems)
    assert not left, sorted(left)


def test_an_option_of_a_type_the_walk_has_no_hostile_values_for_fails_it(tmp_path):
    # The guarantee that keeps the walk whole: a new option is tried the day it is added, or the walk fails.
    parser = plugin_parser()
    parser.getgroup("archmatrix").addoption("--new-option", metavar="WIDGET", help="a type the walk does not know")
    tally = Tally(())
    for action in plugin_options(parser):
        hostile_values(action, Places(tmp_path), tally, action.option_strings[0])
    assert tally.problems == ["--new-option: no hostile values for its type 'WIDGET'; add them to KINDS"]
