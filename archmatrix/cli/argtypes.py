"""The command line's argument types: argparse converts each value through archmatrix.inputs.

So a bad value is argparse's usage error, exit 2, "argument --slower-ratio: 'nan' is not finite; valid:
...", before any command starts; the checks are the ones the pytest plugin's options go through.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from archmatrix.core.arches import ALL_ARCHES, ARCHES, UnknownNameError, arch_named
from archmatrix.hosts.spec import check_label, check_uri
from archmatrix.inputs import InputError
from archmatrix.inputs.files import check_input_file, check_output_file, check_writable_dir
from archmatrix.inputs.numbers import Bounds, check_number
from archmatrix.inputs.text import check_text


def _type(name: str, check: Callable[[str], object]) -> Callable[[str], object]:
    def convert(text: str) -> object:
        try:
            return check(text)
        except (InputError, UnknownNameError) as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    convert.__name__ = name  # what argparse's own messages call the type
    return convert


def number(bounds: Bounds) -> Callable[[str], object]:
    return _type("number", lambda text: check_number(text, "", bounds))


def input_file() -> Callable[[str], object]:
    return _type("file", lambda text: check_input_file(text, ""))


def output_file() -> Callable[[str], object]:
    return _type("file", lambda text: check_output_file(text, ""))


def writable_dir() -> Callable[[str], object]:
    # Not made here: a command refused for another argument must leave none behind. Its writer makes it.
    return _type("directory", lambda text: check_writable_dir(text, "", keep=False))


def uri() -> Callable[[str], object]:
    return _type("URI", lambda text: check_uri(text, ""))


def label() -> Callable[[str], object]:
    return _type("label", lambda text: check_label(text, ""))


def key_value() -> Callable[[str], object]:
    def check(text: str) -> str:
        check_text(text, "", "KEY=VALUE")
        if "=" not in text.strip("="):
            raise InputError(f"{text!r} is not of the form KEY=VALUE")
        return text

    return _type("KEY=VALUE", check)


def arch_names() -> Callable[[str], object]:
    """ARCH[,ARCH...]: each a catalog arch, or all."""
    valid = f"arch names, comma-separated: {', '.join(ARCHES)}, or {ALL_ARCHES}"

    def check(text: str) -> str:
        names = [name.strip() for name in check_text(text, "", valid).split(",")]
        if not any(names):
            raise InputError(f"{text!r} names nothing; valid: {valid}")
        for name in filter(None, names):
            if name != ALL_ARCHES:
                arch_named(name)
        return text

    return _type("arch names", check)


def nova_version() -> Callable[[str], object]:
    """A Nova release number, such as 34.0.0."""
    from archmatrix.options.nova import check_nova_version

    return _type("Nova release", check_nova_version)
