"""strict_b64decode: one spelling per byte string (docs/bundle-format.md section 3)."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sealtrail.custody.canonical import (
    LARGE_JSON,
    NotCanonicalError,
    canonical_json,
    canonical_pieces,
    parse_canonical_json,
    strict_b64decode,
    strict_b64decode_buffer,
)


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


@pytest.mark.parametrize("value", [
    {}, [], 5, "s", None, [[], {}], {"b": [1, {"z": 1, "a": [2]}], "a": "x"},
    {"a": {"b": {"c": {"d": 1}}}}, {"members": [{"x": "\u00e9\n", "y": [True, None]}] * 3},
])
def test_pieces_join_to_the_canonical_bytes(value):
    """`parse_canonical_json` compares a manifest piece by piece instead of serialising it
    again whole: the pieces must be exactly the canonical bytes."""
    assert b"".join(canonical_pieces(value)) == canonical_json(value)
    assert parse_canonical_json(canonical_json(value)) == value


def test_large_text_is_judged_as_small_text():
    """Text of LARGE_JSON bytes or more goes through json.loads (no orjson document tree);
    each departure from canonical form is still rejected, and named where it is."""
    pad = "x" * LARGE_JSON
    good = canonical_json({"a": pad, "m": [{"k": 1}, {"k": "\u00e9\n"}]})
    assert parse_canonical_json(good)["m"][1]["k"] == "\u00e9\n"
    bad = {
        b'"k":1}': b'"k":1.0}', b'{"a"': b'{"a":"1","a"', b"\\n": b"\n", b'"m"': b'"m" ',
        b"\xc3\xa9": b"\xed\xa0\x80",
    }
    for old, new in bad.items():
        with pytest.raises(NotCanonicalError):
            parse_canonical_json(good.replace(old, new, 1))
    with pytest.raises(NotCanonicalError, match=r"^\$\.m\[0\]\.k: float"):
        parse_canonical_json(good.replace(b'"k":1}', b'"k":1.5}'))
    with pytest.raises(NotCanonicalError):
        parse_canonical_json(b"[" * 100_000 + b"]" * 100_000 + b" " * LARGE_JSON)
    with pytest.raises(NotCanonicalError):
        parse_canonical_json(b"\xef\xbb\xbf" + good)
    with pytest.raises(NotCanonicalError):
        parse_canonical_json(good.decode().encode("utf-16"))


@given(st.binary(max_size=70))
def test_buffer_base64_decodes_as_the_text_one(raw):
    """The envelope payload is decoded from bytes (`strict_b64decode_buffer`): same bytes, and
    the same spellings rejected."""
    text = base64.b64encode(raw)
    assert strict_b64decode_buffer(memoryview(text)) == raw
    for bad in (text + b"=", text[:-1], text.replace(b"=", b"A"), b" " + text):
        try:
            expected = strict_b64decode(bad.decode())
        except NotCanonicalError:
            with pytest.raises(NotCanonicalError):
                strict_b64decode_buffer(memoryview(bad))
        else:
            assert strict_b64decode_buffer(memoryview(bad)) == expected
