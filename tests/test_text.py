"""The one place text is made valid for XML, HTML, Markdown and a terminal (archmatrix/core/text.py)."""

import xml.etree.ElementTree as ET

import pytest

from archmatrix.core.text import markdown_text, terminal_lines, terminal_text, visible, xml_text

# Bytes as a guest's serial console carries them (decoded as the console reader does, or with surrogateescape):
# a colour, a cursor move, NUL, BEL, a C1 CSI, a lone surrogate, a noncharacter.
GUEST = "\x1b[1;31mFAIL\x1b[0m\x1b[2;1H\x00\x07\x9b0m\udcff\uffff end"


@pytest.mark.parametrize(("character", "shown"), [("\x1b", "\\x1b"), ("\x00", "\\x00"), ("\x9b", "\\x9b"),
                                                  ("\udcff", "\\udcff"), ("\u202e", "\\u202e"),
                                                  ("\U000e0001", "\\U000e0001")])
def test_a_character_is_shown_as_python_writes_it(character, shown):
    assert visible(character) == shown


def test_xml_text_keeps_what_xml_allows_and_shows_the_rest():
    shown = xml_text(GUEST + "\ttab\nline\r\n é ✅")
    assert shown == "\\x1b[1;31mFAIL\\x1b[0m\\x1b[2;1H\\x00\\x07\\x9b0m\\udcff\\uffff end\ttab\nline\r\n é ✅"
    assert ET.fromstring(f"<a>{shown}</a>".encode()).text == shown.replace("\r\n", "\n")  # XML's own line ends
    assert xml_text(None) == "None" and xml_text(3.5) == "3.5"


def test_terminal_text_is_one_line_with_no_control_character():
    assert terminal_text("a\tb\nc\rd") == "a\\x09b\\x0ac\\x0dd"
    assert terminal_text("\u202eevil\u2066") == "\\u202eevil\\u2066"  # no reordering of what follows
    assert terminal_text("plain, ünïcode ✅") == "plain, ünïcode ✅"
    assert terminal_lines("one\r\ntwo\n\x1b[Kthree") == ["one", "two", "\\x1b[Kthree"]


def test_markdown_text_cannot_break_a_table_or_add_markup():
    assert markdown_text("a | b") == "a \\| b"
    assert markdown_text("line\nnext\r\nlast") == "line<br>next<br>last"
    assert markdown_text("<script>[x](javascript:1) `code` *em* ~~s~~ \\") == (
        "\\<script\\>\\[x\\](javascript:1) \\`code\\` \\*em\\* \\~\\~s\\~\\~ \\\\")
    assert markdown_text("_em_ COMPUTE_ARCH_X86_64 x86_64") == "\\_em\\_ COMPUTE_ARCH_X86_64 x86_64"
    assert markdown_text("\x1b[0m") == "\\\\x1b\\[0m"  # shown as \x1b[0m once rendered
