"""Checking what a person gives archmatrix: numbers, text, and the files and directories it names.

One place for each kind of check, used by the pytest plugin's options (archmatrix/options/), the
hosts file (archmatrix/hosts/spec.py) and the command line (archmatrix/cli/), so that a value is refused
alike wherever it is given: by a message that names it and says what would be valid.
"""

from __future__ import annotations

import contextlib


class InputError(ValueError):
    """A value that cannot be used; the message names where it was given and what would be valid."""


def shown(value: object, limit: int = 60) -> str:
    """The value as a message quotes it: repr (so a newline shows as \\n), cut short past `limit`."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}...' ({len(str(value))} characters)"


@contextlib.contextmanager
def reraised_as(kind: type[InputError]):
    """An InputError raised inside, raised again as `kind` (a module's own error type), message unchanged."""
    try:
        yield
    except InputError as error:
        if isinstance(error, kind):
            raise
        raise kind(str(error)) from None


def at(where: str) -> str:
    """How a message opens: where the value was given, or nothing when the caller says that itself (argparse)."""
    return f"{where}: " if where else ""
