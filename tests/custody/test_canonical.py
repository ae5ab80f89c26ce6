"""strict_b64decode: one spelling per byte string (docs/bundle-format.md section 3)."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sealtrail.custody.canonical import NotCanonicalError, strict_b64decode


@given(st.binary(max_size=70))
def test_standard_base64_round_trips(raw):
    assert strict_b64decode(base64.b64encode(raw).decode()) == raw


@pytest.mark.parametrize(
    "text",
    [
        "QR==",  # non-zero pad bits: decodes to b"A" like "QQ=="
        "QUI=".replace("I", "J"),  # non-zero pad bits with one '='
        "QQ",  # padding missing
        "QQ===",  # padding extra
        "Q Q==",  # whitespace
        "QQ==\n",  # trailing newline
        "-_8=",  # URL-safe alphabet
        "QQ==QQ==",  # padding inside
        "\u00e9",  # not ASCII
    ],
)
def test_every_other_spelling_is_rejected(text):
    with pytest.raises(NotCanonicalError):
        strict_b64decode(text)


def test_a_non_string_is_rejected():
    with pytest.raises(NotCanonicalError, match="not a string"):
        strict_b64decode(b"QQ==")
