"""Member names have exactly one encoding: what the writer encodes, the reader accepts, and
every other spelling of the same bytes is rejected (docs/bundle-format.md section 2)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sealtrail.custody.bundle_format import (
    DATA_PREFIX,
    check_bundle_id,
    decode_member_name,
    encode_member_name,
    unsafe_member_name_reason,
)

components = st.binary(min_size=1, max_size=10).filter(
    lambda part: b"/" not in part and part not in (b".", b"..")
)
paths = st.lists(components, min_size=1, max_size=4).map(b"/".join)


def lax_decode(name: str) -> bytes | None:
    """How a permissive reader decodes: any-case hex, everything from the first ``~`` dropped
    (None where even it fails)."""
    body = name[len(DATA_PREFIX):].split("~", 1)[0]
    out, i = bytearray(), 0
    while i < len(body):
        if body[i] == "%":
            digits = body[i + 1 : i + 3]
            if len(digits) != 2 or not all(c in "0123456789abcdefABCDEF" for c in digits):
                return None
            out.append(int(digits, 16))
            i += 3
        else:
            out.append(ord(body[i]))
            i += 1
    return bytes(out)


def other_spellings(name: str) -> list[str]:
    """Every spelling one edit away from ``name`` that a lax reader decodes to the same bytes."""
    body = name[len(DATA_PREFIX):]
    out: list[str] = []
    i = 0
    while i < len(body):
        if body[i] == "%":
            escape = body[i : i + 3]
            if escape != escape.lower():
                out.append(body[:i] + escape.lower() + body[i + 3 :])
            i += 3
            continue
        for form in (f"%{ord(body[i]):02X}", f"%{ord(body[i]):02x}"):
            out.append(body[:i] + form + body[i + 1 :])
        i += 1
    for cut in range(1, len(body)):  # '~' is stripped by decoders: never inside a name
        out.append(body[:cut] + "~2" + body[cut:])
    out += [body + "~1", body + "~02", body + "~", body + "~2~3"]
    same = lax_decode(name)
    return [DATA_PREFIX + s for s in out if lax_decode(DATA_PREFIX + s) == same]


@settings(max_examples=300, deadline=None)
@given(paths)
def test_encoded_name_is_accepted_and_decodes_back(path):
    name = encode_member_name(path)
    assert unsafe_member_name_reason(name) is None
    assert decode_member_name(name) == path
    assert name.isascii()


@settings(max_examples=300, deadline=None)
@given(paths)
def test_every_other_spelling_of_the_same_path_is_rejected(path):
    name = encode_member_name(path)
    for spelling in other_spellings(name):
        assert unsafe_member_name_reason(spelling), spelling
        with pytest.raises(ValueError, match="not a canonical data member name"):
            decode_member_name(spelling)


def test_a_dedup_suffix_is_a_name_level_spelling_the_bundle_check_judges():
    """``~N`` (N >= 2, no leading zero) passes the name rules; whether an earlier member made
    it necessary is checked over the whole bundle (test_bundle_reader)."""
    assert unsafe_member_name_reason("data/etc/passwd~2") is None
    assert decode_member_name("data/etc/passwd~12") == b"etc/passwd"


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("etc/passwd", "is outside data/"),
        ("volatile/Processes.json", "is not a volatile capture name"),
        ("data/a%c3", "malformed %-escape"),
        ("data/a%4", "malformed %-escape"),
        ("data/a%41", "escapes a byte that is written as itself (%41 for 'A')"),
        ("data/.~2", "empty, '.' or '..' component before its ~N suffix"),
    ],
)
def test_names_the_format_does_not_allow(name, reason):
    assert reason in (unsafe_member_name_reason(name) or "")


def test_volatile_and_manifest_names_are_allowed():
    assert unsafe_member_name_reason("volatile/processes.json") is None
    assert unsafe_member_name_reason("manifest.dsse.json") is None


@pytest.mark.parametrize("name", ["data/etc/passwd\n", "volatile/ps.json\n"])
def test_a_trailing_newline_is_not_a_name(name):
    """``$`` in a pattern matches before a final newline; the patterns end with ``\\Z``."""
    assert unsafe_member_name_reason(name) is not None


def test_a_trailing_newline_is_not_a_bundle_id():
    assert check_bundle_id("20261208T000000Z-web01-0a1b2c3d")
    assert not check_bundle_id("20261208T000000Z-web01-0a1b2c3d\n")
