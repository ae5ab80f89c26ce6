"""systemd journal files (``*.journal``, ``*.journal~``), read in pure Python.

The layout follows systemd's "Journal File Format" document. All integers are little-endian;
objects are 8-byte aligned and start with ``type u8, flags u8, reserved[6], size le64``.

Order of work, chosen so that a truncated or damaged file still gives every intact entry:

1. Header: signature ``LPKSHHRH``, ``header_size`` (>= 208, inside the file), incompatible
   flags (XZ 1, LZ4 2, KEYED_HASH 4, ZSTD 8, COMPACT 16; an unknown bit rejects the file, as
   journalctl does). KEYED_HASH only changes the hash tables, which we do not need.
2. Sequential object scan from ``header_size``: each object's size moves to the next one. It
   ends after the header's tail object, or with one problem: an object header of zeros before the
   tail object, an invalid type or size, or an object running past the end of the file
   (truncation). The offset strictly grows, so the scan always ends.
3. Entry array chain from the header's ``entry_array_offset`` (the index journalctl uses): it
   can reach entries beyond a damaged object in step 2, and it lists entries that a truncated file
   no longer holds. The walk keeps the set of visited arrays, so a cycle ends it.
4. Every entry offset from 2 and 3, in file order, gives one ``Event`` or ``Rejection``: an
   ``ENTRY`` object (``seqnum, realtime, monotonic, boot_id, xor_hash``, then items: 16-byte
   ``offset, hash`` pairs, or 4-byte offsets in COMPACT files) whose items point at ``DATA``
   objects holding ``FIELD=value`` (payload at 64, or at 72 in COMPACT files; compressed when an
   object flag says XZ 1, LZ4 2 or ZSTD 4). An entry with an unreadable item, an offset that holds
   no entry, or one past the end of the file is a ``Rejection``.
5. If the header counts more entries than steps 2-4 accounted for, one more ``Rejection`` at the
   point where reading stopped says how many are missing (a truncated file cannot say which).

Events: ``ts`` is the entry's realtime (``__REALTIME_TIMESTAMP``, µs since the epoch, UTC);
``message`` is ``MESSAGE``; ``process`` is ``_COMM`` or else ``SYSLOG_IDENTIFIER``; ``computer``
is ``_HOSTNAME``; ``attributes`` hold every field (a field given twice becomes a list; a value
that is not UTF-8 becomes ``{"base64": ...}``) plus ``__SEQNUM``, ``__REALTIME_TIMESTAMP``,
``__MONOTONIC_TIMESTAMP`` and ``_BOOT_ID``. The event type and user/address fields come from
:func:`sealtrail.analysis.parsers.auth_messages.interpret` with ``SYSLOG_IDENTIFIER`` (or
``_COMM``) and ``MESSAGE``, so an sshd line means the same here as in auth.log.

The whole member is read into memory (journal files are capped at 128 MiB by journald).
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from sealtrail.analysis.parsers import auth_messages
from sealtrail.analysis.parsers.base import MemberContext
from sealtrail.analysis.parsers.journal_compression import DecompressionFailed, decompress
from sealtrail.analysis.records import Event, Rejection

SIGNATURE = b"LPKSHHRH"
MIN_HEADER_SIZE = 208  # the original (systemd 38) header, up to tail_entry_monotonic

INCOMPATIBLE_COMPRESSED_XZ = 1
INCOMPATIBLE_COMPRESSED_LZ4 = 2
INCOMPATIBLE_KEYED_HASH = 4
INCOMPATIBLE_COMPRESSED_ZSTD = 8
INCOMPATIBLE_COMPACT = 16
_KNOWN_INCOMPATIBLE = 31

OBJECT_UNUSED, OBJECT_DATA, OBJECT_FIELD, OBJECT_ENTRY = 0, 1, 2, 3
OBJECT_ENTRY_ARRAY = 6
_MAX_OBJECT_TYPE = 7  # TAG
_OBJECT_COMPRESSION = {1: "xz", 2: "lz4", 4: "zstd"}

_OBJECT_HEADER = struct.Struct("<BB6xQ")
_ENTRY_HEAD = struct.Struct("<QQQ16sQ")  # seqnum, realtime, monotonic, boot_id, xor_hash
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_OBJECT_HEADER_SIZE = 16
_ENTRY_ITEMS_AT = 64
_ENTRY_ARRAY_ITEMS_AT = 24
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_REALTIME = int((datetime(9999, 1, 1, tzinfo=UTC) - _EPOCH).total_seconds()) * 1_000_000


@dataclass(frozen=True, slots=True)
class _Header:
    incompatible: int
    compatible: int
    state: int
    header_size: int
    arena_size: int
    tail_object_offset: int
    n_entries: int
    entry_array_offset: int

    @property
    def compact(self) -> bool:
        return bool(self.incompatible & INCOMPATIBLE_COMPACT)


class _BadObject(ValueError):
    """An object that cannot be read; the message is the Rejection reason."""


def _align8(value: int) -> int:
    return (value + 7) & ~7


def _read_header(data: bytes) -> _Header | str:
    """The header, or the reason it cannot be used."""
    if len(data) < MIN_HEADER_SIZE or data[:8] != SIGNATURE:
        return "not a journal file: header shorter than 208 bytes or signature missing"
    compatible, incompatible = struct.unpack_from("<II", data, 8)
    state = data[16]
    header_size, arena_size = struct.unpack_from("<QQ", data, 88)
    tail_object_offset, _n_objects, n_entries = struct.unpack_from("<QQQ", data, 136)
    (entry_array_offset,) = _U64.unpack_from(data, 176)
    if incompatible & ~_KNOWN_INCOMPATIBLE:
        return f"unsupported incompatible flags 0x{incompatible:x}"
    if header_size < MIN_HEADER_SIZE or header_size % 8 or header_size > len(data):
        return f"invalid header_size {header_size} (file has {len(data)} bytes)"
    return _Header(incompatible, compatible, state, header_size, arena_size,
                   tail_object_offset, n_entries, entry_array_offset)


def _text(value: bytes) -> str | dict[str, str]:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(value).decode("ascii")}


class JournaldParser:
    """systemd journal files, including compact and compressed (XZ/LZ4/ZSTD) ones."""

    NAME: ClassVar[str] = "journald"
    VERSION: ClassVar[str] = "1"
    DESCRIPTION: ClassVar[str] = "systemd journal files (.journal), pure Python"

    def check(self, member: MemberContext, head: bytes) -> bool:
        return head[:8] == SIGNATURE

    def parse(self, member: MemberContext) -> Iterator[Event | Rejection]:
        with member.open() as stream:
            data = stream.read()
        header = _read_header(data)
        if isinstance(header, str):
            yield Rejection("offset:0", header)
            return
        reader = _JournalReader(data, header, self.NAME)
        yield from reader.records()


class _JournalReader:
    """One journal file in memory; see the module docstring for the order of work."""

    def __init__(self, data: bytes, header: _Header, parser: str) -> None:
        self.data = data
        self.header = header
        self.parser = parser
        self.item_size = 4 if header.compact else 16  # entry items: offset (+ hash)
        self.array_item_size = 4 if header.compact else 8  # entry array items: offset
        self.payload_at = 72 if header.compact else 64
        self._data_cache: dict[int, tuple[str, bytes]] = {}

    # -- steps 2 and 3: where the entries are ------------------------------------------------
    def _scan(self) -> tuple[list[int], int, str | None]:
        """Entry offsets found by walking objects, where the walk stopped, and why (if early)."""
        data, tail = self.data, self.header.tail_object_offset
        end = len(data)
        if self.header.arena_size:
            end = min(end, self.header.header_size + self.header.arena_size)
        entries: list[int] = []
        offset = self.header.header_size
        while not (tail and offset > tail):
            if offset + _OBJECT_HEADER_SIZE > end:
                if offset < len(data) or (tail and offset <= tail):
                    return entries, offset, (
                        f"file ends at byte {len(data)}, before the object at offset {offset}"
                        f" (tail object at {tail})"
                    )
                break
            kind, _flags, size = _OBJECT_HEADER.unpack_from(data, offset)
            if kind == OBJECT_UNUSED and size == 0:
                if not tail:
                    break  # no tail recorded: zeros are the end of what was written
                return entries, offset, (
                    f"zero bytes instead of an object at offset {offset}, before the tail object"
                    f" at {tail}"
                )
            if size < _OBJECT_HEADER_SIZE or kind > _MAX_OBJECT_TYPE or kind == OBJECT_UNUSED:
                return entries, offset, (
                    f"invalid object at offset {offset}: type {kind}, size {size}"
                )
            if offset + size > len(data):
                return entries, offset, (
                    f"truncated: object at offset {offset} (type {kind}) needs {size} bytes,"
                    f" the file ends at byte {len(data)}"
                )
            if kind == OBJECT_ENTRY:
                entries.append(offset)
            offset += _align8(size)
        return entries, offset, None

    def _entry_array_chain(self) -> tuple[set[int], str | None]:
        """Entry offsets listed by the entry array chain, and why the walk stopped early."""
        data, found = self.data, set()
        visited: set[int] = set()
        offset = self.header.entry_array_offset
        while offset:
            if offset in visited:
                return found, f"entry array chain loops back to offset {offset}"
            visited.add(offset)
            if offset % 8 or offset < self.header.header_size:
                return found, f"entry array offset {offset} is invalid"
            if offset + _ENTRY_ARRAY_ITEMS_AT > len(data):
                return found, None  # cut off; the scan reports the truncation
            kind, _flags, size = _OBJECT_HEADER.unpack_from(data, offset)
            if kind != OBJECT_ENTRY_ARRAY or size < _ENTRY_ARRAY_ITEMS_AT:
                return found, f"offset {offset} holds no entry array (type {kind}, size {size})"
            stop = min(offset + size, len(data))
            unpack = _U32.unpack_from if self.header.compact else _U64.unpack_from
            for at in range(offset + _ENTRY_ARRAY_ITEMS_AT, stop - self.array_item_size + 1,
                            self.array_item_size):
                (item,) = unpack(data, at)
                if item:
                    found.add(item)
            if offset + size > len(data):
                return found, None
            (offset,) = _U64.unpack_from(data, offset + 16)
        return found, None

    # -- step 4 and 5: the records ------------------------------------------------------------
    def records(self) -> Iterator[Event | Rejection]:
        scanned, stop_offset, scan_problem = self._scan()
        listed, chain_problem = self._entry_array_chain()
        accounted = 0
        for offset in sorted(set(scanned) | listed):
            accounted += 1
            if offset >= len(self.data):
                yield Rejection(f"offset:{offset}",
                                f"entry at offset {offset} is past the end of the file"
                                f" ({len(self.data)} bytes): truncated")
                continue
            yield self._entry(offset)
        missing = self.header.n_entries - accounted
        if missing > 0:
            why = "; ".join(p for p in (scan_problem, chain_problem) if p) or "no damage found"
            yield Rejection(
                f"offset:{stop_offset}",
                f"{missing} of the {self.header.n_entries} entries the header counts are missing"
                f" ({why})",
            )

    def _entry(self, offset: int) -> Event | Rejection:
        data = self.data
        ref = f"offset:{offset}"
        if offset % 8 or offset < self.header.header_size or offset + _ENTRY_ITEMS_AT > len(data):
            return Rejection(ref, f"entry offset {offset} is invalid")
        kind, _flags, size = _OBJECT_HEADER.unpack_from(data, offset)
        if kind != OBJECT_ENTRY or size < _ENTRY_ITEMS_AT:
            return Rejection(ref,
                             f"offset {offset} holds no entry object (type {kind}, size {size})")
        if offset + size > len(data):
            return Rejection(ref, f"entry at offset {offset} is cut off by the end of the file")
        seqnum, realtime, monotonic, boot_id, _xor = _ENTRY_HEAD.unpack_from(data, offset + 16)
        ref = f"entry:{seqnum}"
        fields: dict[str, Any] = {}
        unpack = _U32.unpack_from if self.header.compact else _U64.unpack_from
        for index, at in enumerate(range(offset + _ENTRY_ITEMS_AT, offset + size - self.item_size
                                         + 1, self.item_size)):
            (item,) = unpack(data, at)
            try:
                name, value = self._data_object(item)
            except _BadObject as exc:
                return Rejection(ref, f"item {index}: {exc}")
            text = _text(value)
            if name in fields:
                previous = fields[name]
                fields[name] = [*previous, text] if isinstance(previous, list) else [previous, text]
            else:
                fields[name] = text
        if not 0 < realtime < _MAX_REALTIME:
            return Rejection(ref, f"invalid realtime timestamp {realtime}")
        fields.setdefault("_BOOT_ID", boot_id.hex())
        fields["__SEQNUM"] = seqnum
        fields["__REALTIME_TIMESTAMP"] = realtime
        fields["__MONOTONIC_TIMESTAMP"] = monotonic
        return self._event(ref, realtime, fields)

    def _data_object(self, offset: int) -> tuple[str, bytes]:
        """``(FIELD, value)`` of the DATA object at ``offset`` (decompressed)."""
        cached = self._data_cache.get(offset)
        if cached is not None:
            return cached
        data = self.data
        if offset % 8 or offset < self.header.header_size or offset + self.payload_at > len(data):
            raise _BadObject(f"DATA offset {offset} is outside the file or misaligned")
        kind, flags, size = _OBJECT_HEADER.unpack_from(data, offset)
        if kind != OBJECT_DATA or size < self.payload_at:
            raise _BadObject(f"offset {offset} holds no DATA object (type {kind}, size {size})")
        if offset + size > len(data):
            raise _BadObject(f"DATA object at offset {offset} is cut off by the end of the file")
        payload = data[offset + self.payload_at : offset + size]
        compression = flags & 7
        if compression:
            method = _OBJECT_COMPRESSION.get(compression)
            if method is None:
                raise _BadObject(f"DATA object at offset {offset} has flags 0x{flags:x}")
            try:
                payload = decompress(method, payload)
            except DecompressionFailed as exc:
                raise _BadObject(f"DATA object at offset {offset}: {exc}") from exc
        name, sep, value = payload.partition(b"=")
        if not sep or not name:
            raise _BadObject(f"DATA object at offset {offset} is not FIELD=value")
        result = (name.decode("ascii", errors="backslashreplace"), value)
        self._data_cache[offset] = result
        return result

    def _event(self, ref: str, realtime: int, fields: dict[str, Any]) -> Event:
        def first(name: str) -> str | None:
            value = fields.get(name)
            if isinstance(value, list):
                value = value[0]
            return value if isinstance(value, str) else None

        message = first("MESSAGE") or ""
        identifier = first("SYSLOG_IDENTIFIER")
        comm = first("_COMM")
        meaning = auth_messages.interpret(identifier or comm, message)
        attributes = dict(fields)
        for key, value in meaning.attributes.items():
            attributes.setdefault(key, value)
        return Event(
            ts=_EPOCH + timedelta(microseconds=realtime),
            ts_desc="journal entry written",
            event_type=meaning.event_type,
            message=message,
            record_ref=ref,
            user=meaning.user,
            src_ip=meaning.src_ip,
            src_port=meaning.src_port,
            dst_ip=meaning.dst_ip,
            process=comm or identifier,
            command_line=meaning.command_line,
            computer=first("_HOSTNAME"),
            target_user=meaning.target_user,
            attributes=attributes,
            parser=self.parser,
        )
