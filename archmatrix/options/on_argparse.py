"""The run's options on an argparse parser: the `archmatrix cell` command, the benchmarks, the option defaults."""

from __future__ import annotations

import argparse

from archmatrix.options.declare import add_options
from archmatrix.options.settings import Settings
from archmatrix.options.values import settings_from


class _ArgparseGroups:
    """pytest's parser.getgroup(...).addoption(...), over argparse: the same options outside pytest."""

    def __init__(self, parser):
        self.parser = parser

    def getgroup(self, name: str, description: str = ""):
        group = self.parser.add_argument_group(description or name)
        group.addoption = group.add_argument
        return group


def add_options_to_argparse(parser) -> None:
    """The run's options on an argparse parser (the `archmatrix cell` command, the benchmarks)."""
    add_options(_ArgparseGroups(parser))


def settings_for(argv: list[str]) -> Settings:
    """Settings from command-line words, as the pytest plugin would check them (OptionError on bad input)."""
    parser = argparse.ArgumentParser(add_help=False)
    add_options_to_argparse(parser)
    return settings_from(parser.parse_args(argv))


def option_defaults() -> dict[str, object]:
    """Every option's destination and default, as add_options declares them."""
    parser = argparse.ArgumentParser(add_help=False)
    add_options_to_argparse(parser)
    return vars(parser.parse_args([]))
