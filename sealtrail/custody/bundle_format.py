"""The bundle format's names and rules, shared by the writer and the reader.

A bundle is one ZIP file (stored, no compression, ZIP64 allowed) named ``<bundle_id>.stb``:
``data/<encoded path>`` members hold collected bytes, and the last member,
``manifest.dsse.json``, is a DSSE envelope whose payload (payload type ``MANIFEST_TYPE``) is the
canonical-JSON manifest. docs/bundle-format.md is the full specification.

Member names are ASCII by construction: every byte of the source path outside
``A-Z a-z 0-9 . _ -`` and the ``/`` separator is written ``%XX`` (upper-case hex), so names never
depend on Unicode normalisation and decode back to the exact source bytes. A literal ``~`` never
comes from a path (it is ``%7E``); the writer appends ``~N`` only to keep two names distinct when
they differ only in letter case, so a bundle extracts the same on case-insensitive file systems.
State captured from a live system (processes, sockets...) is stored as ``volatile/<name>``.
Each path has exactly one member name: ``unsafe_member_name_reason`` rejects every other
spelling (a needless ``%XX``, lower-case hex, a ``~`` that is not a final ``~N``, N >= 2), and
the bundle reader rejects a ``~N`` no earlier member made necessary.
"""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime

MANIFEST_MEMBER = "manifest.dsse.json"
MANIFEST_TYPE = "application/vnd.sealtrail.bundle-manifest.v1+json"
MANIFEST_KIND = "sealtrail.bundle-manifest"
DATA_PREFIX = "data/"
VOLATILE_PREFIX = "volatile/"
BUNDLE_SUFFIX = ".stb"
#: The most bytes ``manifest.dsse.json`` may have (docs/bundle-format.md section 3): a reader
#: rejects a larger one unread, and the writer fails a collection whose envelope would exceed
#: it. At ~600 envelope bytes a member that is ~3.5 million members; verifying a manifest at
#: the bound peaks at ~7x its payload (~11 GB; docs/benchmarks.md, "Many small members").
MAX_ENVELOPE_BYTES = 1 << 31
PARTIAL_SUFFIX = ".stb.partial"

_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-/")
_NAME_RE = re.compile(r"^(data|volatile)/[A-Za-z0-9._%~/-]+\Z")
_VOLATILE_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}\Z")
_BUNDLE_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}\Z")

# Outcomes of an item in the manifest. A member exists for the first three only.
MEMBER_OUTCOMES = ("collected", "changed", "partial")
ENTRY_OUTCOMES = (
    "missing",
    "unreadable",
    "vanished",
    "symlink",
    "special",
    "too_large",
    "directory",
    "damaged_metadata",
)


def encode_member_name(relpath: bytes) -> str:
    """``data/`` + the percent-encoded source path (relative, ``/``-separated)."""
    out = [chr(b) if b in _SAFE else f"%{b:02X}" for b in relpath]
    return DATA_PREFIX + "".join(out)


def volatile_member_name(name: str) -> str:
    """``volatile/<name>`` for state captured from the live system (not a file of the source)."""
    if not _VOLATILE_NAME_RE.match(name):
        raise ValueError(f"bad volatile capture name {name!r}")
    return VOLATILE_PREFIX + name


def split_dedup_suffix(name: str) -> tuple[str, int]:
    """``(name without its ~N suffix, N)``; N is 1 when there is no suffix.

    Call only on a name ``unsafe_member_name_reason`` accepted: there a ``~`` appears only as
    the suffix ``~N``, N a decimal number >= 2 without leading zeros, at the very end.
    """
    base, tilde, number = name.rpartition("~")
    return (base, int(number)) if tilde else (name, 1)


def decode_member_name(name: str) -> bytes:
    """The source path bytes a data member name stands for (``~N`` suffix removed).

    Raises:
        ValueError: ``name`` is not a data member name in its one canonical encoding.
    """
    reason = unsafe_member_name_reason(name)
    if reason or not name.startswith(DATA_PREFIX):
        raise ValueError(f"not a canonical data member name: {name!r} ({reason or 'not data/'})")
    body = split_dedup_suffix(name)[0][len(DATA_PREFIX) :]
    return re.sub(rb"%([0-9A-F]{2})", lambda m: bytes([int(m.group(1), 16)]),
                  body.encode("ascii"))


_DEDUP_SUFFIX_RE = re.compile(r"~[1-9][0-9]*\Z")


def _encoding_reason(body: str) -> str | None:
    """Why the text after ``data/`` is not the one encoding of some path bytes, or None."""
    suffix = _DEDUP_SUFFIX_RE.search(body)
    if suffix and suffix.group() != "~1":
        body = body[: suffix.start()]
    if "~" in body:
        return "has '~' other than the suffix ~N (N >= 2) at the end"
    if any(part in ("", ".", "..") for part in body.split("/")):
        return "has an empty, '.' or '..' component before its ~N suffix"
    for escape in re.finditer(r"%(.{0,2})", body):
        digits = escape.group(1)
        if not re.fullmatch(r"[0-9A-F]{2}", digits):
            return "has a malformed %-escape"
        byte = int(digits, 16)
        if byte in _SAFE:
            return f"escapes a byte that is written as itself (%{digits} for {chr(byte)!r})"
    return None


def unsafe_member_name_reason(name: str) -> str | None:
    """Why ``name`` is not a member name the format allows, or None if it is.

    Rejects what could escape a destination folder or be read two ways: absolute paths, ``..``
    or ``.`` components, empty components, backslashes, drive letters, NUL and other control
    characters, names outside ``data/`` and ``volatile/``, anything outside the encoded
    alphabet, and every spelling of a path other than the one ``encode_member_name`` writes
    (docs/bundle-format.md section 2).
    """
    if name == MANIFEST_MEMBER:
        return None
    if "\x00" in name:
        return "contains a NUL byte"
    if name.startswith("/") or name.startswith("\\"):
        return "is an absolute path"
    if "\\" in name:
        return "contains a backslash"
    if re.match(r"^[A-Za-z]:", name):
        return "starts with a drive letter"
    parts = name.split("/")
    if any(part in ("", ".", "..") for part in parts):
        return "has an empty, '.' or '..' component"
    if name.startswith(VOLATILE_PREFIX):
        if not _VOLATILE_NAME_RE.fullmatch(name[len(VOLATILE_PREFIX) :]):
            return "is not a volatile capture name (volatile/ then [a-z0-9][a-z0-9_.-]{0,63})"
        return None
    if not name.startswith(DATA_PREFIX):
        return f"is outside data/ (only data/..., volatile/... and {MANIFEST_MEMBER} may appear)"
    if not _NAME_RE.match(name):
        return "has characters outside the bundle name alphabet"
    return _encoding_reason(name[len(DATA_PREFIX) :])


def fold_name(name: str) -> str:
    """The key under which two names would collide on a case-insensitive file system."""
    return name.casefold()


def check_bundle_id(bundle_id: str) -> bool:
    return bool(_BUNDLE_ID_RE.match(bundle_id))


def utc_text(dt: datetime) -> str:
    """RFC 3339 UTC with microseconds and ``Z``."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def ns_text(ns: int | None) -> str | None:
    """A nanosecond POSIX timestamp as RFC 3339 UTC with all nine fraction digits (lossless)."""
    if ns is None:
        return None
    seconds, frac = divmod(ns, 1_000_000_000)
    return f"{_second_text(seconds)}.{frac:09d}Z"


@functools.lru_cache(maxsize=4096)
def _second_text(seconds: int) -> str:
    """A whole second as RFC 3339 UTC without fraction; cached, since the files of one tree
    share few distinct seconds and formatting was a fifth of a 200k-file walk's time."""
    # isoformat, not strftime("%Y"): glibc's %Y does not pad years before 1000 to four digits
    return datetime.fromtimestamp(seconds, tz=UTC).replace(tzinfo=None).isoformat("T", "seconds")
