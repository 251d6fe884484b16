"""Text from guests and inputs, made valid for where it is shown: XML, HTML, Markdown, a terminal.

What a guest prints reaches the verdicts as it was printed (matrix.json keeps it; JSON escapes anything). Every
other format gets it through one of these: a character the format cannot carry, or that would act instead of
being read (an escape sequence on a terminal, a pipe in a table), is shown visibly as Python writes it, ESC as
the four characters \\x1b, NUL as \\x00, a lone surrogate (bytes decoded with surrogateescape) as \\udcff, never
dropped.
"""

from __future__ import annotations

import re

# XML 1.0's Char production, less what it only tolerates: C0 controls but tab, newline and carriage return; DEL
# and the C1 controls (0x9b is a terminal's CSI); lone surrogates; U+FFFE and U+FFFF.
_NOT_FOR_DOCUMENTS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
# On a terminal also tab, newline and carriage return (one line stays one line), and what reorders or breaks
# a line as it is shown: bidirectional controls, line and paragraph separators.
_NOT_FOR_TERMINALS = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff\u061c\u200e\u200f\u202a-\u202e"
                                "\u2066-\u2069\u2028\u2029]")
_NEWLINE = re.compile(r"\r\n|\n")
# Markdown markup an inline text could start: code, emphasis, links and images, raw HTML, strikethrough, and
# the table's own pipe. An underscore only between word characters starts nothing and stays (COMPUTE_ARCH_X86_64).
_MARKUP = re.compile(r"[\\`*\[\]<>|~]|(?<![0-9A-Za-z])_|_(?![0-9A-Za-z])")


def visible(character: str) -> str:
    """One character as Python's escape for it: \\x1b, \\u200e, \\U0001f600."""
    code = ord(character)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def _shown(match: re.Match) -> str:
    return visible(match.group(0))


def xml_text(text: object) -> str:
    """`text` as an XML 1.0 (and HTML) document may carry it; escape it for markup as usual after this."""
    return _NOT_FOR_DOCUMENTS.sub(_shown, str(text))


def terminal_text(text: object) -> str:
    """`text` as one line a terminal shows as it is: no control character or escape sequence reaches it."""
    return _NOT_FOR_TERMINALS.sub(_shown, str(text))


def terminal_lines(text: object) -> list[str]:
    """`text` as terminal lines: split at its newlines only, every other control character shown."""
    return [terminal_text(line) for line in _NEWLINE.split(str(text))]


def markdown_text(text: object) -> str:
    """`text` as inline Markdown, e.g. a table cell: markup characters escaped, a newline a <br>, nothing raw."""
    lines = (_MARKUP.sub(lambda match: "\\" + match.group(0), terminal_text(line))
             for line in _NEWLINE.split(str(text)))
    return "<br>".join(lines)
