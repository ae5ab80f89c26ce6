"""The Sleuth Kit 3.x+ bodyfile (``fls -m``, ``ils -m``, ``mac-robber``; mactime's input).

One line per file, 11 fields separated by ``|``::

    MD5|name|inode|mode_as_string|UID|GID|size|atime|mtime|ctime|crtime

Times are seconds since the epoch (UTC); 0 means "not set". Some tools write fractional
seconds (``1700000000.123456``); those are kept to the microsecond.

Choices:

- **One event per non-zero timestamp** (up to four per line): ``atime`` -> ``file_accessed``,
  ``mtime`` -> ``file_modified``, ``ctime`` -> ``file_changed`` (inode change; on NTFS the MFT
  entry change), ``crtime`` -> ``file_created``, with ``ts_desc`` the field name. This matches the
  ``manifest_fs`` rows the ingest makes and keeps ``event_type`` filters exact. mactime and plaso
  instead group equal times into one row: ``attributes["macb"]`` carries that view (``"m.c."``
  means mtime and ctime share this timestamp), so grouping is one ``GROUP BY`` away.
- **Records**: each (line, timestamp) is a record. A line that cannot be read is one
  ``Rejection``; a line whose four times are all 0 is one ``Rejection`` ("no timestamp"), so
  every non-blank line is accounted for. Blank lines are not records.
- **Pipes in names**: TSK writes names raw, so a name containing ``|`` gives more than 11
  fields. The MD5 is the first field and the last nine are fixed; the name is everything between.
- ``record_ref`` is ``line:<n>``, 1-based, shared by the events of one line.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import ClassVar

from sealtrail.analysis.parsers.base import MemberContext
from sealtrail.analysis.records import Event, Rejection

_TIMES = (
    ("atime", "file_accessed", "a", "accessed"),
    ("mtime", "file_modified", "m", "modified"),
    ("ctime", "file_changed", "c", "metadata changed"),
    ("crtime", "file_created", "b", "created"),
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_SECONDS = int((datetime(9999, 1, 1, tzinfo=UTC) - _EPOCH).total_seconds())
_NUMBER = r"-?\d+(?:\.\d+)?"
# The fixed right-hand part of a line: inode|mode|uid|gid|size|atime|mtime|ctime|crtime
_SNIFF = re.compile(
    r"^[^|\n]*\|.*\|[^|\n]*\|[^|\n]*\|\d*\|\d*\|\d+\|" + "\\|".join([_NUMBER] * 4) + r"\s*$"
)
_NAMES = ("bodyfile", "body", "body.txt")


class BodyfileParser:
    """TSK 3.x bodyfile lines -> file_accessed/modified/changed/created events."""

    NAME: ClassVar[str] = "bodyfile"
    VERSION: ClassVar[str] = "1"
    DESCRIPTION: ClassVar[str] = (
        "The Sleuth Kit 3.x bodyfile (MD5|name|inode|mode|UID|GID|size|atime|mtime|ctime|crtime)"
    )

    def check(self, member: MemberContext, head: bytes) -> bool:
        name = member.logical_name.lower()
        if name in _NAMES or name.endswith((".body", ".bodyfile")):
            return True
        lines = head.split(b"\n")
        if len(lines) > 1 and not head.endswith(b"\n"):
            lines = lines[:-1]  # the head may end inside a line
        first = next((line for line in lines if line.strip()), None)
        return first is not None and bool(
            _SNIFF.match(first.decode("utf-8", errors="replace").rstrip("\r"))
        )

    def parse(self, member: MemberContext) -> Iterator[Event | Rejection]:
        with member.open() as stream:
            for number, raw in enumerate(stream, start=1):
                line = raw.decode("utf-8", errors="backslashreplace").rstrip("\r\n")
                if not line.strip():
                    continue
                yield from self._line(line, f"line:{number}")

    def _line(self, line: str, ref: str) -> Iterator[Event | Rejection]:
        fields = line.split("|")
        if len(fields) < 11:
            yield Rejection(ref, f"{len(fields)} fields, a TSK 3.x bodyfile line has 11")
            return
        md5, name = fields[0], "|".join(fields[1:-9])
        inode, mode, uid, gid, size, *times = fields[-9:]
        try:
            size_value = int(size) if size else None
            stamps = [_seconds(value) for value in times]
        except ValueError as exc:
            yield Rejection(ref, str(exc))
            return
        if not any(stamps):
            yield Rejection(ref, "no timestamp: atime, mtime, ctime and crtime are all 0")
            return
        attributes = {
            "md5": md5 if md5 not in ("", "0") else None,
            "inode": inode,
            "mode": mode,
            "uid": _int_or_text(uid),
            "gid": _int_or_text(gid),
            "size": size_value,
            "deleted": name.endswith(" (deleted)") or name.endswith("(deleted-realloc)"),
        }
        by_letter = {letter: stamp for (_k, _t, letter, _v), stamp in zip(_TIMES, stamps,
                                                                          strict=True)}
        for (key, event_type, _letter, verb), stamp in zip(_TIMES, stamps, strict=True):
            if not stamp:
                continue
            macb = "".join(letter if by_letter[letter] == stamp else "." for letter in "macb")
            yield Event(
                ts=stamp,
                ts_desc=key,
                event_type=event_type,
                message=f"{name} {verb} ({key})",
                record_ref=ref,
                path=name,
                attributes={**attributes, "macb": macb},
                parser=self.NAME,
            )


def _seconds(value: str) -> datetime | None:
    """A bodyfile time: None for 0, else a UTC datetime (microseconds kept)."""
    try:
        number = Decimal(value.strip())
    except InvalidOperation as exc:
        raise ValueError(f"time {value!r} is not a number") from exc
    if not number.is_finite():
        raise ValueError(f"time {value!r} is not a number")
    if number == 0:
        return None
    if number < 0 or number > _MAX_SECONDS:
        raise ValueError(f"time {value!r} is out of range")
    micro = int((number * 1_000_000).to_integral_value())
    return _EPOCH + timedelta(microseconds=micro)


def _int_or_text(value: str) -> int | str:
    return int(value) if value.isdigit() else value
