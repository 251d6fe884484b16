"""The docs stay honest: every option `--help` lists is documented, every option the docs name exists, every
relative link resolves, and the README stays a five-minute read with the two commands on its first screen.

Offline: the options come from the parsers themselves (the plugin's pytest_addoption, the `archmatrix` command's
argparse tree, and the argparse calls of the scripts in benchmarks/ and archmatrix/requirements.py); other tools'
options the docs quote are allowed by name below, per tool.
"""

from __future__ import annotations

import argparse
import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

from archmatrix.cli.main import _parser
from archmatrix.plugin import pytest_addoption

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = [README, *sorted((ROOT / "docs").glob("*.md"))]
OPTIONS_PAGE = ROOT / "docs" / "options.md"
SCRIPTS = [*sorted((ROOT / "benchmarks").glob("*.py")), ROOT / "archmatrix" / "requirements.py"]
README_MAX_LINES = 260
FIRST_SCREEN_LINES = 40

# An option-looking token: --word[-word...], not inside a longer word or path (a `--` alone is no option).
OPTION = re.compile(r"(?<![\w/.-])--[a-z][a-z0-9]*(?:-[a-z0-9]+)*")
LINK = re.compile(r"\[[^\]\n]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)

# Options of other tools that the docs quote, by tool: each must really be that tool's.
OTHER_TOOLS = {
    "pytest and pytest-xdist": {"--pyargs", "--dist", "--collect-only"},
    "openstack image show / server create": {"--config-drive"},
    "mmdebstrap": {"--variant", "--architectures", "--simulate"},
    "the GNU linker, through gcc -Wl": {"--no-relax"},
}


class _OptionRecorder:
    """Stands in for pytest's parser: records what the plugin's pytest_addoption registers."""

    def __init__(self):
        self.options: list[str] = []

    def getgroup(self, *args, **kwargs):
        return self

    def addoption(self, *names, **kwargs):
        self.options += [name for name in names if name.startswith("--")]

    def addini(self, *args, **kwargs):
        pass


def plugin_options() -> list[str]:
    recorder = _OptionRecorder()
    pytest_addoption(recorder)
    assert recorder.options, "the plugin registered no options: the recorder no longer fits pytest_addoption"
    return recorder.options


def cli_commands(parser: argparse.ArgumentParser | None = None, path: str = "archmatrix") -> dict[str, list[str]]:
    """Every command of the `archmatrix` argparse tree ('archmatrix report diff') and its long options."""
    parser = parser or _parser()
    commands = {path: [name for action in parser._actions for name in action.option_strings
                       if name.startswith("--") and name != "--help"]}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                commands.update(cli_commands(sub, f"{path} {name}"))
    return commands


def script_options(path: Path) -> set[str]:
    """The long options a script's argparse calls declare (read from its source, nothing run)."""
    options = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "add_argument":
            options |= {arg.value for arg in node.args
                        if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and arg.value.startswith("--")}
    return options


def tokens(text: str) -> set[str]:
    return set(OPTION.findall(text))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: markup and punctuation dropped, lower case, spaces as hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading anchors by its text
    text = re.sub(r"[^\w\- ]", "", text.lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    found, seen = set(), {}
    for heading in HEADING.findall(FENCE.sub("", page.read_text())):
        base = slug(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def name(page: Path) -> str:
    return str(page.relative_to(ROOT))


def test_the_docs_are_there():
    assert README.is_file() and OPTIONS_PAGE.is_file()
    assert len(DOCS) > 2, "docs/*.md is empty"


def test_every_plugin_option_is_in_the_options_reference():
    documented = tokens(OPTIONS_PAGE.read_text())
    missing = [option for option in plugin_options() if option not in documented]
    assert not missing, (f"pytest --help lists these archmatrix options, and {name(OPTIONS_PAGE)} does not "
                         f"document them: {', '.join(missing)}")


def test_every_cli_option_is_in_the_options_reference():
    documented = tokens(OPTIONS_PAGE.read_text())
    missing = [f"{command} {option}" for command, options in cli_commands().items() for option in options
               if option not in documented]
    assert not missing, (f"`--help` of these commands lists options {name(OPTIONS_PAGE)} does not document: "
                         f"{'; '.join(missing)}")


def test_every_cli_command_is_documented():
    text = OPTIONS_PAGE.read_text()
    missing = [command for command in cli_commands() if command != "archmatrix" and f"`{command}" not in text]
    assert not missing, f"{name(OPTIONS_PAGE)} has no entry (`{missing[0]} ...`) for: {', '.join(missing)}"


def test_every_option_the_docs_name_exists():
    ours = set(plugin_options()) | {option for options in cli_commands().values() for option in options} | {"--help"}
    scripts = set().union(*(script_options(path) for path in SCRIPTS))
    others = set().union(*OTHER_TOOLS.values())
    unknown = [f"{name(page)}: {option}" for page in DOCS
               for option in sorted(tokens(page.read_text()) - ours - scripts - others)]
    assert not unknown, ("the docs name options that neither the plugin, the `archmatrix` command, the scripts of "
                         "benchmarks/ and archmatrix/requirements.py nor an allowed tool (OTHER_TOOLS in "
                         f"tests/test_docs.py) has: {'; '.join(unknown)}")


def test_the_allowed_options_of_other_tools_are_not_ours():
    ours = set(plugin_options()) | {option for options in cli_commands().values() for option in options}
    for tool, options in OTHER_TOOLS.items():
        assert not options & ours, f"{tool}: {sorted(options & ours)} are archmatrix's own options, not the tool's"


def test_pytests_options_the_docs_name_are_pytests():
    shown = subprocess.run([sys.executable, "-m", "pytest", "--help"], capture_output=True, text=True, cwd=ROOT,
                           timeout=120)
    assert shown.returncode == 0, shown.stderr
    missing = OTHER_TOOLS["pytest and pytest-xdist"] - tokens(shown.stdout)
    assert not missing, f"pytest --help (with xdist) lists no {', '.join(sorted(missing))}: fix OTHER_TOOLS"


@pytest.mark.parametrize("page", DOCS, ids=name)
def test_every_relative_link_resolves(page):
    broken = []
    for target in LINK.findall(FENCE.sub("", page.read_text())):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto:: not ours to check offline
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        if not linked.exists():
            broken.append(f"{target} (no file {linked})")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(f"{target} (no heading #{anchor} in {name(linked)})")
    assert not broken, f"{name(page)} links to what is not there: {'; '.join(broken)}"


def test_every_page_under_docs_is_linked_from_the_readme():
    linked = {(README.parent / target.partition("#")[0]).resolve() for target in LINK.findall(README.read_text())}
    unlinked = [name(page) for page in DOCS[1:] if page.resolve() not in linked]
    assert not unlinked, f"README.md does not link to {', '.join(unlinked)}"


def test_the_readme_is_short_and_shows_the_two_commands_first():
    lines = README.read_text().splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines; at most {README_MAX_LINES}"
    first_screen = "\n".join(lines[:FIRST_SCREEN_LINES])
    for command in ("./run matrix", "./run test"):
        assert command in first_screen, f"README.md's first {FIRST_SCREEN_LINES} lines do not show {command}"
