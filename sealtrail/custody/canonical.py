"""The bytes that get hashed or signed. Nothing else in sealtrail serialises signed data.

Canonical JSON is RFC 8785 (JCS) restricted to the values sealtrail writes: objects with ASCII
keys, arrays, strings (valid Unicode, no lone surrogates), integers within +-(2**53 - 1), true,
false and null. No floats: a float has no single canonical text. Within that domain orjson with
sorted keys produces exactly the JCS bytes (compact separators, keys sorted, UTF-8, the JSON
short escapes and ``\\u00XX`` for other control characters), so any JCS implementation can
reproduce them. Every value is checked before serialising so an out-of-domain value is an error
at write time rather than an unverifiable record later.

Base64 in signed or verified data is read by ``strict_b64decode``: the standard alphabet with
padding (RFC 4648 section 4), zero pad bits, no whitespace, so each byte string has exactly one
spelling and two verifiers cannot read different bytes out of one text.

DSSE's PAE (pre-authentication encoding) binds a payload type to the payload, so a signature
over one kind of message cannot be replayed as another.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator
from typing import Any

import orjson

MAX_SAFE_INT = 2**53 - 1


class NotCanonicalError(ValueError):
    """A value outside the canonical JSON domain, or bytes that are not canonical."""


def _check(value: Any, where: str) -> None:
    if value is None or isinstance(value, bool | str):
        return
    if isinstance(value, int):
        if not -MAX_SAFE_INT <= value <= MAX_SAFE_INT:
            raise NotCanonicalError(f"{where}: integer {value} is outside +-(2**53 - 1)")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str) or not key.isascii():
                raise NotCanonicalError(f"{where}: key {key!r} is not an ASCII string")
            _check(item, f"{where}.{key}")
        return
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _check(item, f"{where}[{i}]")
        return
    raise NotCanonicalError(f"{where}: {type(value).__name__} is not allowed in canonical JSON")


def _ok(value: Any) -> bool:
    """Fast form of ``_check`` (no location strings); ``_check`` then says where it failed."""
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return True
    if kind is int:
        return -MAX_SAFE_INT <= value <= MAX_SAFE_INT
    if kind is dict:
        return all(type(k) is str and k.isascii() and _ok(v) for k, v in value.items())
    if kind is list or kind is tuple:
        return all(_ok(v) for v in value)
    return False


def canonical_json(value: Any) -> bytes:
    """Return the canonical JSON bytes of ``value`` (see the module docstring)."""
    if not _ok(value):
        _check(value, "$")  # raises, naming the offending value
        raise NotCanonicalError("value is outside the canonical JSON domain")
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError as exc:  # lone surrogates in a str, for instance
        raise NotCanonicalError(str(exc)) from exc


def canonical_json_of_part(value: Any) -> bytes:
    """Canonical bytes of a part of a value ``canonical_json`` has already accepted.

    Skips the domain check (the whole was checked); for anything else use ``canonical_json``.
    """
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


#: From this size on `parse_json` uses the standard library's parser (see there).
LARGE_JSON = 1 << 20


def parse_json(data: bytes | bytearray | memoryview | str) -> Any:
    """Parse JSON text; raises ``NotCanonicalError`` if it is not JSON at all.

    Text of ``LARGE_JSON`` bytes or more (a manifest) is parsed by ``json.loads``: orjson
    first builds a whole document tree of its own, which for a manifest peaks at about 12
    times the text on top of the Python objects (docs/benchmarks.md, many members), where
    ``json`` builds the objects directly, at about the same speed. Whatever either accepts
    beyond canonical JSON (NaN, a UTF-16 text, lone surrogates, duplicate keys) is rejected by
    the canonical comparison that follows in `parse_canonical_json`.
    """
    if len(data) >= LARGE_JSON and not isinstance(data, str):
        try:
            return json.loads(bytes(data) if isinstance(data, memoryview) else data)
        except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError
            raise NotCanonicalError(f"not valid JSON: {exc}") from None
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise NotCanonicalError(f"not valid JSON: {exc}") from exc


def parse_canonical_json(data: bytes | bytearray | memoryview) -> Any:
    """Parse bytes that must already be canonical; anything else is rejected.

    Rejecting non-canonical input means there is exactly one byte string for each record, so
    a verifier never has to decide which of two spellings was signed.

    The comparison is made piece by piece (`canonical_pieces`): a manifest of millions of
    records is never serialised again as a whole, so checking it costs no second copy of it.
    """
    value = parse_json(data)
    view = memoryview(data).cast("B")
    at = 0
    for piece in canonical_pieces(value):
        if view[at:at + len(piece)] != piece:
            raise NotCanonicalError("JSON is not in canonical form")
        at += len(piece)
    if at != len(view):
        raise NotCanonicalError("JSON is not in canonical form")
    return value


#: Containers nested deeper than this are serialised whole by `canonical_pieces` (a manifest's
#: records are at depth 2: the top-level object, then its ``members`` array).
_PIECE_DEPTH = 2


def canonical_pieces(value: Any, depth: int = _PIECE_DEPTH, where: str = "$") -> Iterator[bytes]:
    """The bytes of ``canonical_json(value)``, in pieces: objects and arrays down to ``depth``
    levels are taken apart (keys sorted, as orjson sorts ASCII keys), deeper values are
    serialised whole. ``b"".join`` of the pieces equals ``canonical_json(value)``; the domain
    check is the same (raises ``NotCanonicalError`` naming the value's place)."""
    kind = type(value)
    if depth <= 0 or kind not in (dict, list):
        try:
            piece = canonical_json(value)
        except NotCanonicalError:
            _check(value, where)  # raises again, naming the offending value's place
            raise
        yield piece
    elif kind is dict:
        for key in value:
            if type(key) is not str or not key.isascii():
                raise NotCanonicalError(f"{where}: key {key!r} is not an ASCII string")
        yield b"{"
        for i, key in enumerate(sorted(value)):
            yield b'%s%s:' % (b"," if i else b"", orjson.dumps(key))
            yield from canonical_pieces(value[key], depth - 1, f"{where}.{key}")
        yield b"}"
    else:
        yield b"["
        for i, item in enumerate(value):
            if i:
                yield b","
            yield from canonical_pieces(item, depth - 1, f"{where}[{i}]")
        yield b"]"


def strict_b64decode(text: object) -> bytes:
    """Decode base64 that is in its one canonical spelling (see the module docstring).

    ``base64.b64decode(validate=True)`` alone still accepts non-zero pad bits (``QR==`` and
    ``QQ==`` both give ``A``); re-encoding the result and comparing rejects every second
    spelling, missing or extra padding included.

    Raises:
        NotCanonicalError: ``text`` is not a str, or not canonical standard base64.
    """
    if not isinstance(text, str):
        raise NotCanonicalError(f"base64 value is a {type(text).__name__}, not a string")
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise NotCanonicalError("not valid base64 (standard alphabet, padded)") from None
    if base64.b64encode(raw).decode("ascii") != text:
        raise NotCanonicalError("base64 is not in canonical form (non-zero pad bits or padding)")
    return raw


def strict_b64decode_buffer(text: memoryview) -> bytes:
    """`strict_b64decode` for base64 held as bytes (a manifest envelope's payload, which can be
    gigabytes): decoded without a copy of the text, then encoded again and compared in 3 MiB
    steps, so only the decoded bytes are allocated.

    Raises:
        NotCanonicalError: not canonical standard base64.
    """
    text = text.cast("B")
    try:
        raw = binascii.a2b_base64(text, strict_mode=True)
    except (binascii.Error, ValueError):
        raise NotCanonicalError("not valid base64 (standard alphabet, padded)") from None
    if len(text) != 4 * -(-len(raw) // 3):
        raise NotCanonicalError("base64 is not in canonical form (non-zero pad bits or padding)")
    step = 3 << 20
    view = memoryview(raw)
    for at in range(0, len(raw), step):
        if binascii.b2a_base64(view[at:at + step], newline=False) != \
                text[at // 3 * 4:(at + step) // 3 * 4]:
            raise NotCanonicalError(
                "base64 is not in canonical form (non-zero pad bits or padding)")
    return raw


def pretty_json(value: Any) -> str:
    """Indented JSON for people (CLI output). Never hashed or signed."""
    return orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode()


def pretty_json_bytes(value: Any) -> bytes:
    """`pretty_json` as UTF-8 bytes, without the str copy (a manifest of millions of
    records, written beside an extraction). Never hashed or signed."""
    return orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)


def json_text(value: Any) -> str:
    """Compact JSON for data columns (never hashed or signed); non-str keys become strings."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: ``DSSEv1 SP len(type) SP type SP len(body) SP body``.

    Lengths are ASCII decimal byte counts; ``payload_type`` is encoded as UTF-8.
    """
    type_bytes = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(type_bytes), type_bytes, len(payload), payload)
