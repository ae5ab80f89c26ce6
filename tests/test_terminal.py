"""The terminal escape: what it escapes, and that the original can always be read back."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sealtrail.terminal import printable

# What a terminal could act on: C0 controls, DEL, C1 controls, bidi controls, separators.
RAW_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e"
                         "\u2066-\u2069\u2028\u2029\ud800-\udfff]")


def unescape(text: str) -> str:
    """The reverse of ``printable``, written from the rule in docs/design.md."""
    named = {"\\": "\\", "n": "\n", "r": "\r", "t": "\t"}

    def one(match: re.Match[str]) -> str:
        escape = match.group(1)
        return named.get(escape) or chr(int(escape[1:], 16))

    return re.sub(r"\\(\\|n|r|t|x[0-9a-f]{2}|u[0-9a-f]{4})", one, text)


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("plain/path.txt", "plain/path.txt"),
        ("a\nb", "a\\nb"),
        ("\x1b[2K\r", "\\x1b[2K\\r"),
        ("tab\there", "tab\\there"),
        ("\x00\x7f\x85\x9f", "\\x00\\x7f\\x85\\x9f"),
        ("\u202eexe.txt", "\\u202eexe.txt"),
        ("\u2066x\u2069\u200f", "\\u2066x\\u2069\\u200f"),
        ("back\\slash", "back\\\\slash"),
        ("\\n", "\\\\n"),
        ("caf\u00e9 \u65e5\u672c \U0001f600", "caf\u00e9 \u65e5\u672c \U0001f600"),
        ("\udcff", "\\udcff"),
    ],
)
def test_printable_escapes_what_a_terminal_acts_on(text, shown):
    assert printable(text) == shown
    assert unescape(shown) == text


def test_printable_takes_any_value():
    assert printable(None) == "None"
    assert printable(12) == "12"
    assert printable(Path("a\nb")) == "a\\nb"


def test_every_code_point_round_trips_and_no_output_holds_a_control():
    everything = "".join(chr(cp) for cp in range(0x3000)) + "\\n\\x1b\\u202e\\\\"
    shown = printable(everything)
    assert unescape(shown) == everything
    assert not RAW_CONTROL.search(shown)
    assert "\n" not in shown


def test_printable_is_injective_on_lookalikes():
    """Text that already looks like an escape must not print the same as what it escapes."""
    pairs = [("\n", "\\n"), ("\x1b", "\\x1b"), ("\u202e", "\\u202e"), ("\\", "\\\\")]
    for raw, lookalike in pairs:
        assert printable(raw) != printable(lookalike)
