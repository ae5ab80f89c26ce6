"""Windows event logs (.evtx): the ``evtx`` crate first, python-evtx for what it cannot read.

The only module that imports ``evtx`` (the Rust-backed ``PyEvtxParser``). Steps per member:

1. **evtx pass.** ``records_json()`` is driven with ``next()`` and each ``RuntimeError`` is
   caught and remembered: a plain ``for`` loop would end at the first bad record, and the
   iterator carries on after one. The parser reads the member's stream directly (it accepts
   a file-like object and reads it 64 KiB at a time), so a member is never held in memory.
2. **Chunk scan.** Every 64 KiB slot after the 4 KiB file header is looked at, up to the
   member's size, whatever the header's (possibly stale) chunk count says. A chunk is handed to
   python-evtx when evtx reported an error in it, or when its own record headers hold record
   ids evtx did not produce (a chunk evtx skipped or stopped in). A clean log never touches
   python-evtx: the scan reads 40 bytes per chunk and walks record headers only of chunks
   whose declared record range evtx did not fully produce.
3. **Union.** Records python-evtx renders whose id evtx did not produce become events with
   ``parser="python-evtx"``; evtx's own events say ``parser="evtx"``.
4. **Rejections.** A record python-evtx also fails on is ``record:<id>``; a chunk where evtx
   failed and python-evtx recovered nothing is ``chunk:<n>`` (the reason names both errors);
   a file evtx could not open at all and in which no chunk could be read is ``offset:0``.

Timestamps come from ``Event/System/TimeCreated/@SystemTime`` (UTC), never from the record
header, which is zero (1601) on some records; a record without a usable TimeCreated (missing,
unparseable, or before 1970) is a rejection.

``parse`` yields Events and Rejections. ``parse_deferred`` (what the ingest's workers call)
yields each record of the evtx pass as an ``EvtxJson`` instead, its JSON text unread: the
ingest reads them all at once in SQL (``evtx_sql``), which gives what ``record_from_json``
gives here. python-evtx's records are Events either way.
"""

from __future__ import annotations

import bisect
import re
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, BinaryIO

from evtx import PyEvtxParser

from sealtrail.analysis.parsers import evtx_fallback
from sealtrail.analysis.parsers.base import MemberContext
from sealtrail.analysis.parsers.evtx_fields import _int, extract
from sealtrail.analysis.records import Event, EvtxJson, Rejection
from sealtrail.custody.canonical import NotCanonicalError, parse_json

FILE_MAGIC = b"ElfFile\x00"
FILE_HEADER_SIZE = 0x1000
CHUNK_SIZE = 0x10000
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
MAX_SAFE_INT = 2**53 - 1
_CHUNK_NUMBER = re.compile(r"chunk number (\d+)")


@dataclass
class _EvtxError:
    message: str
    chunk: int | None  # from the message when evtx names it
    after_id: int | None  # id of the last record evtx yielded before the error


@dataclass
class _Scan:
    """What the evtx pass left behind for the chunk scan."""

    produced: set[int] = field(default_factory=set)
    errors: list[_EvtxError] = field(default_factory=list)
    open_error: str | None = None


class EvtxParser:
    """Windows .evtx event logs; one Event per record, from evtx or python-evtx."""

    NAME = "winevtx"
    VERSION = "1"
    DESCRIPTION = "Windows event log (.evtx) records, evtx crate with python-evtx fallback"

    def __init__(self, fallback_budget_s: float = 300.0) -> None:
        """``fallback_budget_s``: python-evtx time allowed per member; chunks beyond it are
        rejected with that reason instead of read (python-evtx reads ~250 records/s)."""
        self.fallback_budget_s = fallback_budget_s

    def check(self, member: MemberContext, head: bytes) -> bool:
        return head.startswith(FILE_MAGIC)

    def parse(self, member: MemberContext) -> Iterator[Event | Rejection]:
        for item in self.parse_deferred(member):
            if type(item) is EvtxJson:
                yield record_from_json(item.record_id, item.data)
            else:
                yield item  # type: ignore[misc]

    def parse_deferred(self, member: MemberContext) -> Iterator[Event | Rejection | EvtxJson]:
        """Like ``parse``, but the evtx pass's records come as ``EvtxJson``, unread."""
        scan = _Scan()
        with member.open() as stream:
            yield from self._evtx_pass(stream, scan)
        with member.open() as stream:
            yield from self._fallback_pass(stream, member.size, scan)

    # -- step 1 ---------------------------------------------------------------------------

    def _evtx_pass(self, stream: BinaryIO, scan: _Scan) -> Iterator[EvtxJson]:
        try:
            records = PyEvtxParser(stream, number_of_threads=1).records_json()
        except (RuntimeError, OSError, ValueError) as exc:
            scan.open_error = f"evtx: {exc}"
            return
        produced = scan.produced
        last_id: int | None = None
        while True:
            try:
                record = next(records)
            except StopIteration:
                return
            except RuntimeError as exc:
                message = str(exc)
                match = _CHUNK_NUMBER.search(message)
                scan.errors.append(_EvtxError(f"evtx: {message}",
                                              int(match.group(1)) if match else None, last_id))
                if len(scan.errors) > 100_000:  # an iterator that only fails: stop asking
                    return
                continue
            record_id = record["event_record_id"]
            produced.add(record_id)
            last_id = record_id
            yield EvtxJson(record_id, record["data"])

    # -- steps 2 to 4 ---------------------------------------------------------------------

    def _fallback_pass(self, stream: BinaryIO, size: int,
                       scan: _Scan) -> Iterator[Event | Rejection]:
        chunks = _chunk_headers(stream, size)
        produced_sorted = sorted(scan.produced)
        by_chunk: dict[int, list[str]] = {}
        for error in scan.errors:
            n = error.chunk if error.chunk is not None else _locate(error, chunks)
            by_chunk.setdefault(n if n is not None else -1, []).append(error.message)

        suspects: list[int] = sorted(n for n in by_chunk if n >= 0)
        for n, header in chunks.items():
            if n in by_chunk or header is None:
                continue
            first, last = header
            declared = last - first + 1 if last >= first else 0
            have = (bisect.bisect_right(produced_sorted, last)
                    - bisect.bisect_left(produced_sorted, first))
            if declared and have >= declared:
                continue
            if any(i not in scan.produced for i in _walk_ids(stream, n, size)):
                suspects.append(n)
        suspects.sort()

        recovered_any = False
        started = time.monotonic()
        for n in suspects:
            evtx_errors = by_chunk.get(n, [])
            if chunks.get(n) is None:  # no chunk magic: python-evtx cannot help
                yield Rejection(f"chunk:{n}", "; ".join(
                    [*evtx_errors, "python-evtx: no chunk magic"]))
                continue
            if time.monotonic() - started > self.fallback_budget_s:
                yield Rejection(f"chunk:{n}", "; ".join(
                    [*evtx_errors, "python-evtx: not tried, time budget for this member spent"]))
                continue
            stream.seek(FILE_HEADER_SIZE + n * CHUNK_SIZE)
            result = evtx_fallback.read_chunk(stream.read(CHUNK_SIZE))
            yielded = 0
            for fb in result.records:
                if fb.record_id in scan.produced:
                    continue
                scan.produced.add(fb.record_id)
                yielded += 1
                if fb.document is None:
                    why = evtx_errors or ["evtx: did not read this record"]
                    yield Rejection(f"record:{fb.record_id}", "; ".join([*why, fb.error or ""]))
                else:
                    recovered_any = True
                    yield _to_event(fb.document, fb.record_id, "python-evtx")
            lost = _lost_range(chunks[n], scan.produced, result.records)
            if lost or ((evtx_errors or result.error) and not yielded):
                reasons = [*evtx_errors, result.error
                           or "python-evtx: recovered no record evtx had not produced"]
                if lost:
                    reasons.append(f"records {lost[0]}..{lost[1]} declared by the chunk header"
                                   " were not found by either parser")
                yield Rejection(f"chunk:{n}", "; ".join(reasons))

        if -1 in by_chunk or (scan.open_error and not scan.produced and not recovered_any):
            reasons = by_chunk.get(-1, []) + ([scan.open_error] if scan.open_error else [])
            yield Rejection("offset:0", "; ".join(reasons))


def _chunk_headers(stream: BinaryIO, size: int) -> dict[int, tuple[int, int] | None]:
    """Slot number -> (first, last record id) from its header, or None without chunk magic.

    Every slot whose header lies inside the member counts, not only the header's chunk count.
    """
    out: dict[int, tuple[int, int] | None] = {}
    n = 0
    while FILE_HEADER_SIZE + n * CHUNK_SIZE + 0x28 <= size:
        stream.seek(FILE_HEADER_SIZE + n * CHUNK_SIZE)
        head = stream.read(0x28)
        if len(head) < 0x28:
            break
        if head[:8] == evtx_fallback.CHUNK_MAGIC:
            out[n] = struct.unpack_from("<QQ", head, 0x18)
        else:
            out[n] = None
        n += 1
    return out


def _walk_ids(stream: BinaryIO, n: int, size: int) -> list[int]:
    """Record ids found by following record headers through chunk ``n`` (no rendering)."""
    stream.seek(FILE_HEADER_SIZE + n * CHUNK_SIZE)
    chunk = stream.read(CHUNK_SIZE)
    ids = []
    ofs = evtx_fallback.RECORDS_START
    while ofs + 0x18 <= len(chunk) and chunk[ofs:ofs + 4] == evtx_fallback.RECORD_MAGIC:
        size_, record_id = struct.unpack_from("<IQ", chunk, ofs + 4)
        if size_ < 0x1C or ofs + size_ > len(chunk):
            break
        ids.append(record_id)
        ofs += size_
    return ids


def _lost_range(header: tuple[int, int] | None, produced: set[int],
                records: list[evtx_fallback.FallbackRecord]) -> tuple[int, int] | None:
    """Record ids the chunk header declares after the last one either parser looked at."""
    if header is None:
        return None
    first, last = header
    seen = [r.record_id for r in records if first <= r.record_id <= last]
    highest = max(seen, default=first - 1)
    while highest + 1 <= last and highest + 1 in produced:  # evtx got the tail
        highest += 1
    if highest >= last or last - first > 0xFFFF:  # nothing lost, or a nonsense header
        return None
    return highest + 1, last


def _locate(error: _EvtxError, chunks: dict[int, tuple[int, int] | None]) -> int | None:
    """The chunk an unnumbered evtx error happened in: the one after the last good record."""
    if error.after_id is None:
        return next(iter(chunks), None)
    for wanted in (error.after_id + 1, error.after_id):
        for n, header in chunks.items():
            if header is not None and header[0] <= wanted <= header[1]:
                return n
    return None


# -- one record -----------------------------------------------------------------------------


_FIELD_INDEX = {name: i for i, name in enumerate(Event._fields)}
_BLANK = [None] * len(Event._fields)
_TS, _TS_DESC, _TYPE, _MESSAGE, _REF, _EID, _CHANNEL, _COMPUTER, _ATTRS, _PARSER = (
    _FIELD_INDEX[name] for name in ("ts", "ts_desc", "event_type", "message", "record_ref",
                                    "event_id", "channel", "computer", "attributes", "parser"))


def record_from_json(record_id: int, data: str) -> Event | Rejection:
    """What one record of the evtx pass is: the Event from its JSON, or why not."""
    try:
        document = parse_json(data)
    except NotCanonicalError as exc:
        return Rejection(f"record:{record_id}", f"evtx: {exc}")
    return _to_event(document, record_id, "evtx")


def _to_event(document: Any, record_id: int, parser: str) -> Event | Rejection:
    """An Event from the evtx-JSON-shaped dict of one record, or why it cannot be one."""
    ref = f"record:{record_id}"
    try:
        event = document["Event"]
        system = event["System"]
        ts_text = system["TimeCreated"]["#attributes"]["SystemTime"]
    except (KeyError, TypeError, IndexError):
        if not isinstance(system := _get(_get(document, "Event"), "System"), dict):
            return Rejection(ref, f"{parser}: record has no Event/System")
        return Rejection(ref, f"{parser}: record has no TimeCreated/@SystemTime")
    ts = _time_created(ts_text)
    if type(ts) is str:
        return Rejection(ref, f"{parser}: {ts}")
    try:  # a missing level or a non-dict one (str, list, None) both mean "no provider"
        provider = system["Provider"]["#attributes"]["Name"]
    except (KeyError, TypeError, IndexError):
        provider = None
    if provider is not None and type(provider) is not str:
        provider = str(provider)
    channel = system.get("Channel")
    if channel is not None and type(channel) is not str:
        channel = _str_or_none(channel)
    event_id = system.get("EventID")
    if type(event_id) is not int:
        event_id = _int(event_id)
    body_key, data = "EventData", event.get("EventData")
    if data is None and event.get("UserData") is not None:
        body_key, data = "UserData", event["UserData"]
    event_type, message, columns = extract(channel, provider, event_id, _flat(data))
    attributes: dict[str, Any] = {"provider": provider}
    try:
        user_id = system["Security"]["#attributes"]["UserID"]
    except (KeyError, TypeError, IndexError):
        user_id = None
    if user_id:  # python-evtx renders a missing UserID as ''
        attributes["user_id"] = str(user_id)
    if data is not None:
        attributes[body_key] = _json_safe(data)
    computer = system.get("Computer")
    # Positional, not Event(**kwargs): a third cheaper per record on this hot path.
    values = _BLANK.copy()
    values[_TS] = ts
    values[_TS_DESC] = "event logged"
    values[_TYPE] = event_type
    values[_MESSAGE] = message
    values[_REF] = ref
    values[_EID] = event_id
    values[_CHANNEL] = channel
    values[_COMPUTER] = computer if computer is None or type(computer) is str else str(computer)
    values[_ATTRS] = attributes
    values[_PARSER] = parser
    for name, value in columns.items():
        values[_FIELD_INDEX[name]] = value
    return Event._make(values)


def _get(node: Any, key: str) -> Any:
    return node.get(key) if type(node) is dict else None


def _time_created(text: Any) -> datetime | str:
    if type(text) is not str or not text:
        return "record has no TimeCreated/@SystemTime"
    try:
        ts = datetime.fromisoformat(text)
    except ValueError:
        return f"TimeCreated {text!r} is not a timestamp"
    zone = ts.tzinfo
    if zone is not UTC:  # evtx writes "...Z", which fromisoformat gives as UTC itself
        ts = ts.replace(tzinfo=UTC) if zone is None else ts.astimezone(UTC)
    if ts < EARLIEST:
        return f"TimeCreated {text!r} is before 1970 (unset)"
    return ts


def _str_or_none(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, dict):
        value = value.get("#text")
        return None if value is None else str(value)
    return str(value)


def _flat(data: Any) -> dict[str, Any]:
    """EventData as is; UserData's single child element's fields (e.g. LogFileCleared)."""
    if not isinstance(data, dict):
        return {}
    if len(data) == 1:
        (only,) = data.values()
        if isinstance(only, dict) and "#text" not in only:
            return only
    return data


def _json_safe(value: Any) -> Any:
    """Only str/int/bool/None/list/dict; ints beyond 2**53 and anything else become str.

    The common case (a dict of strings and small ints) is checked and returned as is.
    """
    kind = type(value)
    if kind is dict:
        for item in value.values():
            k = type(item)
            if not (k is str or item is None or (k is int and -MAX_SAFE_INT <= item <= MAX_SAFE_INT)
                    or k is bool):
                return {str(k): _json_safe(v) for k, v in value.items()}
        return value
    if kind is str or value is None or kind is bool:
        return value
    if kind is int:
        return value if -MAX_SAFE_INT <= value <= MAX_SAFE_INT else str(value)
    if kind is list:
        return [_json_safe(v) for v in value]
    return str(value)
