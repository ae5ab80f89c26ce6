"""Bounded, line-by-line reading of text members, shared by the line-oriented parsers.

Every text parser reads through :func:`iter_lines`, so they agree on three things:

* a line is at most :data:`MAX_LINE` bytes; a longer one is reported as too long and skipped
  in chunks, never held in memory whole (a 100 MB single line costs ~1 MiB);
* a line that is mostly not text (more than 30% control bytes or invalid UTF-8) is binary
  garbage, not a damaged log line;
* line numbers are 1-based over the decompressed stream, blank lines included, so
  ``record_ref="line:<n>"`` points at the same line ``sed -n <n>p`` shows.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import BinaryIO

MAX_LINE = 1 << 20  # 1 MiB
_SKIP_CHUNK = 1 << 16
_BINARY_RATIO = 0.30

# Bytes that count as "text": printable ASCII, tab, CR, LF, the GS separator auditd's enriched
# format uses, and every byte >= 0x80 (judged after UTF-8 decoding, by replacement chars).
_TEXT_BYTES = bytes([9, 10, 13, 0x1D, *range(0x20, 0x7F), *range(0x80, 0x100)])

NOT_TEXT = "not text"
TOO_LONG = "line too long"


@dataclass(frozen=True, slots=True)
class Line:
    """One line of a member: ``text`` is None when ``problem`` says why it is unusable."""

    number: int
    text: str | None
    problem: str | None = None

    @property
    def ref(self) -> str:
        return f"line:{self.number}"


def decode_line(raw: bytes) -> str | None:
    """The line as text (UTF-8, invalid bytes replaced), or None if it is binary garbage."""
    if raw.isascii():
        bad = len(raw.translate(None, _TEXT_BYTES))
        if bad == 0:
            return raw.decode("ascii")
        text = raw.decode("ascii")
    else:
        text = raw.decode("utf-8", errors="replace")
        bad = len(raw.translate(None, _TEXT_BYTES)) + text.count("\ufffd")
    if bad > _BINARY_RATIO * max(1, len(text)):
        return None
    return text


def iter_raw_lines(stream: BinaryIO, max_len: int = MAX_LINE) -> Iterator[tuple[int, bytes | None]]:
    """``(number, bytes without the line end)``; bytes is None for a line over ``max_len``."""
    number = 0
    readline = stream.readline
    while True:
        raw = readline(max_len + 1)
        if not raw:
            return
        number += 1
        if len(raw) > max_len and not raw.endswith(b"\n"):
            # Too long: drain the rest of this line in bounded chunks.
            while True:
                rest = readline(_SKIP_CHUNK)
                if not rest or rest.endswith(b"\n"):
                    break
            yield number, None
            continue
        if raw.endswith(b"\n"):
            raw = raw[:-2] if raw.endswith(b"\r\n") else raw[:-1]
        yield number, raw


def iter_lines(stream: BinaryIO, max_len: int = MAX_LINE) -> Iterator[Line]:
    """Every line of ``stream`` (blank ones as ``Line(n, "")``), decoded or with its problem."""
    for number, raw in iter_raw_lines(stream, max_len):
        if raw is None:
            yield Line(number, None, TOO_LONG)
            continue
        text = decode_line(raw)
        if text is None:
            yield Line(number, None, NOT_TEXT)
        else:
            yield Line(number, text)


def first_text_line(head: bytes) -> str | None:
    """The first non-blank line of a member's head, if it is text (for ``check`` sniffing)."""
    for raw in head.split(b"\n")[:20]:
        raw = raw.rstrip(b"\r")
        if raw.strip():
            return decode_line(raw[:4096])
    return None


def epoch_to_utc(seconds: float) -> datetime | None:
    """A POSIX time as an aware UTC datetime, or None when it is out of range."""
    try:
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None
