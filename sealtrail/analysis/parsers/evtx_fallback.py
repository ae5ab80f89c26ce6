"""python-evtx as a second reader for single EVTX chunks the ``evtx`` crate could not read.

The only module that imports python-evtx (module ``Evtx``). It is ~1000x slower than ``evtx``,
so the parser calls it for one 64 KiB chunk at a time, and only for chunks ``evtx`` reported an
error in or did not read completely. It is handed the chunk's bytes, not the file: python-evtx's
own ``Evtx`` class trusts the file header's chunk count, which is stale on dirty logs.

Each record is rendered to XML by python-evtx and turned into the same dict shape as the
``evtx`` crate's JSON (``{"Event": {"System": ..., "EventData": {name: value}}}``), so one
field extractor serves both. All values are strings (python-evtx does not type them).

Order of checks for a chunk:
1. the chunk magic is ``ElfChnk\\x00`` (else nothing is read);
2. the string and template hash chains in the chunk header are finite (a crafted cycle would
   make python-evtx loop forever);
3. records are walked by their own headers (magic ``**\\0\\0``, size within the chunk, the size
   repeated at the record's end), so a damaged record ends the walk instead of the process;
4. each record is rendered separately; a failure is reported with its record id.
"""

from __future__ import annotations

import struct
import xml.etree.ElementTree as ET  # noqa: S405 - parses python-evtx's own escaped rendering
from dataclasses import dataclass
from typing import Any

from Evtx.Evtx import ChunkHeader, Record

CHUNK_MAGIC = b"ElfChnk\x00"
RECORD_MAGIC = b"**\x00\x00"
CHUNK_SIZE = 0x10000
RECORDS_START = 0x200
RECORD_HEADER = 0x18


@dataclass(frozen=True, slots=True)
class FallbackRecord:
    """One record python-evtx looked at: ``document`` on success, ``error`` otherwise."""

    record_id: int
    document: dict[str, Any] | None
    error: str | None


@dataclass(frozen=True, slots=True)
class FallbackChunk:
    records: list[FallbackRecord]
    error: str | None  # why the walk stopped early or never started, if it did


def _chain_is_finite(chunk: bytes, table: int, buckets: int, template: bool) -> bool:
    """True if every hash-bucket chain in the header ends (no cycle, no out-of-chunk jump)."""
    seen: set[int] = set()
    for i in range(buckets):
        ofs = struct.unpack_from("<I", chunk, table + 4 * i)[0]
        while ofs > 0:
            if ofs in seen:
                return False
            if ofs + 4 > len(chunk):
                break  # python-evtx raises on this one; a record error, not a hang
            if template and (ofs < 10 or chunk[ofs - 10] != 0x0C
                             or struct.unpack_from("<I", chunk, ofs - 4)[0] != ofs):
                break  # python-evtx stops this chain here too
            seen.add(ofs)
            ofs = struct.unpack_from("<I", chunk, ofs)[0]
    return True


def read_chunk(chunk: bytes) -> FallbackChunk:
    """Render every record of one chunk (``chunk`` = its bytes, at most 64 KiB) with python-evtx."""
    if chunk[:8] != CHUNK_MAGIC:
        return FallbackChunk([], "python-evtx: no chunk magic")
    if len(chunk) < RECORDS_START:
        return FallbackChunk([], "python-evtx: chunk header truncated")
    if not (_chain_is_finite(chunk, 0x80, 64, template=False)
            and _chain_is_finite(chunk, 0x180, 32, template=True)):
        return FallbackChunk([], "python-evtx: not tried, chunk string/template table loops")
    header = ChunkHeader(chunk, 0)
    first, last = struct.unpack_from("<QQ", chunk, 0x18)  # log first/last record id
    end = struct.unpack_from("<I", chunk, 0x30)[0]  # next_record_offset
    if not RECORDS_START < end <= len(chunk):
        end = len(chunk)
    records: list[FallbackRecord] = []
    ofs = RECORDS_START
    stop: str | None = None
    while ofs + RECORD_HEADER <= end:
        if chunk[ofs:ofs + 4] != RECORD_MAGIC:
            if any(chunk[ofs:end]):
                stop = f"python-evtx: no record magic at chunk offset {ofs:#x}"
            break
        size, record_id = struct.unpack_from("<IQ", chunk, ofs + 4)
        if size < RECORD_HEADER + 4:
            stop = f"python-evtx: record {record_id} has an invalid size {size}"
        elif ofs + size > len(chunk):
            stop = f"python-evtx: record {record_id} (size {size}) is cut off by the end of data"
        elif struct.unpack_from("<I", chunk, ofs + size - 4)[0] != size:
            stop = f"python-evtx: record {record_id} size is not repeated at its end"
        if stop is not None:
            if first <= record_id <= last:  # a real record header, damaged or cut off
                records.append(FallbackRecord(record_id, None, stop))
            break
        records.append(_render(Record(chunk, ofs, header), record_id))
        ofs += size
    return FallbackChunk(records, stop)


def _render(record: Record, record_id: int) -> FallbackRecord:
    try:
        xml = record.xml()
    except Exception as exc:  # noqa: BLE001 - python-evtx raises anything on bad data
        return FallbackRecord(record_id, None, f"python-evtx: {type(exc).__name__}: {exc}")
    try:
        root = ET.fromstring(xml)  # noqa: S314 - no DTD possible: python-evtx escapes values
    except ET.ParseError as exc:
        return FallbackRecord(record_id, None, f"python-evtx: XML not well-formed: {exc}")
    return FallbackRecord(record_id, {_local(root.tag): _element(root)}, None)


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _element(elem: ET.Element) -> Any:
    """An element as the evtx crate writes it in JSON: leaves as text, else a dict."""
    name = _local(elem.tag)
    children = list(elem)
    attrs = {_local(k): v for k, v in elem.attrib.items()}
    if name == "EventData":
        return _event_data(children, attrs)
    if not children and not attrs:
        return elem.text
    out: dict[str, Any] = {}
    if attrs:
        out["#attributes"] = attrs
    for child in children:
        _add(out, _local(child.tag), _element(child))
    text = (elem.text or "").strip()
    if text:
        out["#text"] = text
    return out


def _event_data(children: list[ET.Element], attrs: dict[str, str]) -> dict[str, Any]:
    """Named <Data Name="x">v</Data> become {"x": "v"}; unnamed ones collect under "Data"."""
    out: dict[str, Any] = {}
    unnamed: list[str] = []
    for child in children:
        tag = _local(child.tag)
        if tag == "Data" and "Name" in child.attrib:
            out[child.attrib["Name"]] = child.text or ""
        elif tag == "Data":
            unnamed.append(child.text or "")
        else:
            _add(out, tag, _element(child))
    if unnamed:
        out["Data"] = {"#text": unnamed[0] if len(unnamed) == 1 else unnamed}
    return out


def _add(out: dict[str, Any], key: str, value: Any) -> None:
    if key not in out:
        out[key] = value
    elif isinstance(out[key], list):
        out[key].append(value)
    else:
        out[key] = [out[key], value]
