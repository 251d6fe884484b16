"""An option's words: an OptionError naming the option, ARCH=VALUE pairs and comma-separated names, each checked."""

from __future__ import annotations

import contextlib

from archmatrix.core.arches import UnknownNameError, arch_named, split_names
from archmatrix.inputs import InputError
from archmatrix.inputs.text import check_text


class OptionError(InputError):
    """An option value that cannot be used; the message names it and what is valid."""


@contextlib.contextmanager
def option_named(name: str):
    """Errors of checks that do not know the option (an unknown arch, a bad number) raised as OptionError naming it."""
    try:
        yield
    except (InputError, UnknownNameError) as error:
        message = str(error)
        raise OptionError(message if message.startswith(name) else f"{name}: {message}") from None


def arch_pairs(values: list[str], option: str, shape: str) -> dict[str, str]:
    """ARCH=VALUE words, each checked as text and its ARCH against the catalog: {arch: value}."""
    pairs = {}
    for value in values:
        check_text(value, option, shape)
        arch, sep, rest = value.partition("=")
        if not sep or not rest:
            raise OptionError(f"{option} {value!r} is not of the form {shape}")
        pairs[arch_named(arch).name] = rest
    return pairs


def comma_names(values: list[str], option: str, valid: str) -> list[str]:
    """Comma-separated names, each value checked as text first: split_names would drop an empty one silently."""
    for value in values:
        check_text(value, option, valid)
        if not split_names([value]):
            raise OptionError(f"{option}: {value!r} names nothing; valid: {valid}")
    return split_names(values)
