"""Text a person gives that ends up in a name, a path, a label, a URI or a kernel command line.

A newline or another control character there splits a log line, a report row or a command line in two,
or hides what is really there (an escape sequence on a terminal); NUL is refused by every system call.
Such text is refused by name, as are text that is empty and text longer than anything a person types.
"""

from __future__ import annotations

import unicodedata

from archmatrix.inputs import InputError, at, shown

LONGEST = 4096  # characters: PATH_MAX, and far past any name, URI or label
# C0 and C1 controls, DEL, and the Unicode line and paragraph separators (which split lines too).
CONTROL_CATEGORIES = ("Cc", "Zl", "Zp")


def control_characters(text: str) -> list[str]:
    return sorted({c for c in text if unicodedata.category(c) in CONTROL_CATEGORIES})


def check_text(value: object, where: str, valid: str, longest: int = LONGEST) -> str:
    """`value` as text for `where`, else InputError; `valid` says what would be (e.g. "a libvirt URI")."""
    if not isinstance(value, str):
        raise InputError(f"{at(where)}{shown(value)} is {type(value).__name__}, not text; valid: {valid}")
    if not value:
        raise InputError(f"{at(where)}empty; valid: {valid}")
    bad = control_characters(value)
    if bad:
        raise InputError(f"{at(where)}{shown(value)} holds control characters ({', '.join(map(repr, bad))}); "
                         f"valid: {valid}, without control characters")
    if len(value) > longest:
        raise InputError(f"{at(where)}{len(value)} characters, more than {longest}; valid: {valid}")
    return value
