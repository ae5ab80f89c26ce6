"""Tests for sealtrail/analysis/parsers/journald.py and journal_compression.py.

Expected values for the upstream files (Velociraptor's system.journal.zip) were checked
independently: for 2004.journal and 2404.journal every field of every entry equals what
``journalctl --file F -o json --all`` (systemd 252) prints. journalctl refuses the two truncated
files (ENODATA), so their counts were checked by brute force over the raw bytes: every 8-aligned
offset holding an ENTRY object header (type 3, zero reserved bytes) whose seqnum and realtime lie
between the header's head and tail values and which ends inside the file. That gives 1 entry
(seqnum 19161) in system.journal and 380 (seqnums 4837..5360) in compact.journal;
``test_truncated_counts_agree_with_a_brute_force_scan`` repeats that scan.
"""

from __future__ import annotations

import lzma
import random
import struct
import zipfile
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sealtrail.analysis.parsers import journal_compression
from sealtrail.analysis.parsers.journald import JournaldParser
from sealtrail.analysis.records import EVENT_TYPES, Event, Rejection
from tests.analysis.helpers import member_from_bytes, member_from_file
from tests.shared_data import upstream_path


# -- helpers ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def journals(tmp_path_factory) -> Path:
    """The four journal files of the upstream zip, unpacked to a temporary folder."""
    folder = tmp_path_factory.mktemp("journals")
    with zipfile.ZipFile(upstream_path("linux/system.journal.zip")) as archive:
        archive.extractall(folder)
    return folder


def parse_bytes(data: bytes, name: str = "/var/log/journal/m/system.journal"):
    return split(JournaldParser().parse(member_from_bytes(name, data)))


def parse_file(path: Path):
    return split(JournaldParser().parse(member_from_file(path)))


def split(records: Iterable[Event | Rejection]) -> tuple[list[Event], list[Rejection]]:
    out = list(records)
    events = [o for o in out if isinstance(o, Event)]
    rejections = [o for o in out if isinstance(o, Rejection)]
    assert len(events) + len(rejections) == len(out)
    for event in events:
        assert event.event_type in EVENT_TYPES
        assert event.ts.tzinfo is not None
        assert event.ts.utcoffset().total_seconds() == 0
    return events, rejections


def _object(kind: int, body: bytes, flags: int = 0) -> bytes:
    raw = struct.pack("<BB6xQ", kind, flags, 16 + len(body)) + body
    return raw + bytes(-len(raw) % 8)


def build_journal(entries: list[list[bytes]], *, compact: bool = False,
                  realtime: int = 1_773_108_891_000_000) -> tuple[bytearray, dict[str, int]]:
    """A minimal journal: DATA objects, ENTRY objects, one ENTRY_ARRAY, no hash tables.

    Returns the bytes and where things are (``array``, ``entries`` list, ``data`` list).
    """
    header_size = 272
    body = bytearray()
    layout: dict = {"entries": [], "data": []}

    def add(raw: bytes) -> int:
        offset = header_size + len(body)
        body.extend(raw)
        return offset

    entry_offsets = []
    for number, fields in enumerate(entries, start=1):
        items = []
        for payload in fields:
            tail = struct.pack("<II", 0, 0) if compact else b""
            items.append(add(_object(1, bytes(48) + tail + payload)))
            layout["data"].append(items[-1])
        packed = b"".join(struct.pack("<I", o) if compact else struct.pack("<QQ", o, 0)
                          for o in items)
        head = struct.pack("<QQQ16sQ", number, realtime + number, 1000 + number, b"B" * 16, 0)
        entry_offsets.append(add(_object(3, head + packed)))
    layout["entries"] = entry_offsets
    fmt = "<I" if compact else "<Q"
    array = add(_object(6, struct.pack("<Q", 0) + b"".join(struct.pack(fmt, o)
                                                              for o in entry_offsets)))
    layout["array"] = array
    header = bytearray(header_size)
    header[0:8] = b"LPKSHHRH"
    struct.pack_into("<II", header, 8, 0, 16 if compact else 0)
    struct.pack_into("<QQ", header, 88, header_size, len(body))
    struct.pack_into("<QQQQQQQQQ", header, 136, array, 0, len(entries), len(entries), 1, array,
                     realtime + 1, realtime + len(entries), 0)
    return header + body, layout


SSH = [b"SYSLOG_IDENTIFIER=sshd", b"_COMM=sshd", b"_HOSTNAME=web01", b"_PID=4242",
       b"MESSAGE=Accepted password for deploy from 203.0.113.45 port 51122 ssh2"]


# -- the upstream files -------------------------------------------------------------------------
def test_valid_lz4_journal_gives_its_three_entries(journals):
    events, rejections = parse_file(journals / "2004.journal")
    assert rejections == []
    assert [e.record_ref for e in events] == ["entry:1", "entry:2", "entry:3"]
    assert [e.ts for e in events] == [
        datetime(2026, 6, 7, 14, 1, 0, 655847, tzinfo=UTC),
        datetime(2026, 6, 7, 14, 1, 0, 655872, tzinfo=UTC),
        datetime(2026, 6, 7, 14, 1, 18, 946813, tzinfo=UTC),
    ]
    assert events[0].message == "Journal started"
    assert events[1].message.startswith(
        "Runtime Journal (/run/log/journal/d63f847ccaee71c9b67aa1156a257823) is 8.0M")
    assert events[2].message == "X" * 5000  # the one LZ4-compressed DATA object
    assert [e.process for e in events] == ["systemd-journal", "systemd-journal", "cat"]
    assert {e.computer for e in events} == {"9f5c084797a0"}
    first = events[0].attributes
    assert first["_SELINUX_CONTEXT"] == "docker-default (enforce)\n"
    assert first["MESSAGE_ID"] == "f77379a8490b408bbe5f6940505a777b"
    assert first["_BOOT_ID"] == "1621aee481fa42ad9693fe91a054f095"
    assert first["__MONOTONIC_TIMESTAMP"] == 171693086093
    assert first["__REALTIME_TIMESTAMP"] == 1780840860655847
    assert events[2].attributes["SYSLOG_IDENTIFIER"] == "mytag"
    assert {e.event_type for e in events} == {"other"}


def test_compact_zstd_journal_gives_its_three_entries(journals):
    events, rejections = parse_file(journals / "2404.journal")
    assert rejections == []
    assert [e.record_ref for e in events] == ["entry:1", "entry:2", "entry:3"]
    assert [e.attributes["__REALTIME_TIMESTAMP"] for e in events] == [
        1780843482302536, 1780843482302591, 1780843495635693]
    assert [e.message[:15] for e in events] == ["Journal started", "Runtime Journal", "X" * 15]
    assert events[2].message == "X" * 5000  # the one ZSTD-compressed DATA object
    assert {e.computer for e in events} == {"dd19d3f1f1a9"}


def test_missing_lz4_rejects_only_the_entry_that_needs_it(journals, monkeypatch):
    monkeypatch.setattr(journal_compression, "_lz4_block", None)
    events, rejections = parse_file(journals / "2004.journal")
    assert [e.record_ref for e in events] == ["entry:1", "entry:2"]
    (rejection,) = rejections
    assert rejection.record_ref == "entry:3"
    assert "compressed with LZ4 but lz4 is not installed" in rejection.reason


def test_missing_zstandard_rejects_only_the_entry_that_needs_it(journals, monkeypatch):
    monkeypatch.setattr(journal_compression, "_zstd", None)
    events, rejections = parse_file(journals / "2404.journal")
    assert len(events) == 2
    (rejection,) = rejections
    assert "compressed with ZSTD but zstandard is not installed" in rejection.reason


def test_truncated_journal_gives_what_is_intact(journals):
    events, rejections = parse_file(journals / "system.journal")
    (event,) = events
    assert event.record_ref == "entry:19161"
    assert event.message == "session-717.scope: Consumed 5.643s CPU time."
    assert event.ts == datetime(2023, 5, 9, 1, 31, 12, 435195, tzinfo=UTC)
    assert (event.process, event.computer) == ("systemd", "devbox")
    # three entries the first entry array lists lie past the cut; the rest cannot be located
    assert [r.record_ref for r in rejections[:3]] == [
        "offset:154136", "offset:155824", "offset:159384"]
    assert all("past the end of the file" in r.reason for r in rejections[:3])
    assert rejections[3].record_ref == "offset:153520"
    assert rejections[3].reason.startswith("2810 of the 2814 entries the header counts are missing")
    assert "truncated" in rejections[3].reason
    assert len(rejections) == 4


def test_truncated_compact_journal_gives_what_is_intact(journals):
    events, rejections = parse_file(journals / "compact.journal")
    assert len(events) == 380
    assert (events[0].record_ref, events[-1].record_ref) == ("entry:4837", "entry:5360")
    assert events[0].message == "Queued start job for default target default.target."
    assert len(rejections) == 673
    assert sum("past the end of the file" in r.reason for r in rejections) == 672
    assert rejections[-1].reason.startswith(
        "1189 of the 2241 entries the header counts are missing")
    assert len(events) + 672 + 1189 == 2241


def _brute_force_entries(data: bytes) -> list[int]:
    header_size = struct.unpack_from("<Q", data, 88)[0]
    tail_seq, head_seq, _ea, head_rt, tail_rt = struct.unpack_from("<QQQQQ", data, 160)
    seqnums = []
    for offset in range(header_size, len(data) - 64, 8):
        if data[offset] == 3 and data[offset + 2 : offset + 8] == bytes(6):
            size, seqnum, realtime = struct.unpack_from("<QQQ", data, offset + 8)
            if (head_seq <= seqnum <= tail_seq and head_rt <= realtime <= tail_rt
                    and offset + size <= len(data)):
                seqnums.append(seqnum)
    return seqnums


@pytest.mark.parametrize("name", ["system.journal", "compact.journal"])
def test_truncated_counts_agree_with_a_brute_force_scan(journals, name):
    path = journals / name
    events, _ = parse_file(path)
    assert [f"entry:{n}" for n in _brute_force_entries(path.read_bytes())] == [
        e.record_ref for e in events]


# -- meaning of messages and fields -------------------------------------------------------------
@pytest.mark.parametrize("compact", [False, True])
def test_sshd_messages_are_interpreted(compact):
    data, _ = build_journal([SSH], compact=compact)
    (event,), rejections = parse_bytes(bytes(data))
    assert rejections == []
    assert event.event_type == "logon_success"
    assert (event.user, event.src_ip, event.src_port) == ("deploy", "203.0.113.45", 51122)
    assert (event.process, event.computer, event.record_ref) == ("sshd", "web01", "entry:1")
    assert event.attributes["_PID"] == "4242"


def test_repeated_fields_become_lists_and_binary_values_base64():
    data, _ = build_journal([[b"MESSAGE=hi", b"TAG=a", b"TAG=b", b"BLOB=\xff\xfe"]])
    (event,), _ = parse_bytes(bytes(data))
    assert event.attributes["TAG"] == ["a", "b"]
    assert event.attributes["BLOB"] == {"base64": "//4="}


def test_check_needs_the_signature():
    data, _ = build_journal([SSH])
    parser = JournaldParser()
    assert parser.check(member_from_bytes("/x/user-1000.journal~", bytes(data)), bytes(data[:64]))
    assert not parser.check(member_from_bytes("/x/system.journal", b"LPKS"), b"LPKS")


# -- hostile input: no crash, no hang, every record accounted for --------------------------------
def test_random_bytes_after_a_valid_header():
    data, _ = build_journal([SSH])
    rng = random.Random(7)
    hostile = bytes(data[:272]) + rng.randbytes(64 * 1024)
    events, rejections = parse_bytes(hostile)
    assert events == []
    assert rejections
    assert rejections[-1].reason.startswith("1 of the 1 entries")


def test_object_size_past_the_end_of_the_file():
    data, layout = build_journal([SSH, SSH])
    struct.pack_into("<Q", data, layout["entries"][1] + 8, 2**63)
    events, rejections = parse_bytes(bytes(data))
    assert [e.record_ref for e in events] == ["entry:1"]
    assert rejections == [Rejection(f"offset:{layout['entries'][1]}",
                                    f"entry at offset {layout['entries'][1]} is cut off by the"
                                    " end of the file")]


def test_entry_array_cycle_terminates():
    data, layout = build_journal([SSH, SSH])
    struct.pack_into("<Q", data, layout["array"] + 16, layout["array"])  # next -> itself
    events, rejections = parse_bytes(bytes(data))
    assert len(events) == 2
    assert rejections == []


def test_entry_array_pointing_at_garbage_is_rejected_per_entry():
    data, layout = build_journal([SSH])
    struct.pack_into("<Q", data, layout["array"] + 24, layout["data"][0])  # a DATA object
    events, rejections = parse_bytes(bytes(data))
    assert len(events) == 1  # still found by the object scan
    assert rejections == [Rejection(f"offset:{layout['data'][0]}",
                                    f"offset {layout['data'][0]} holds no entry object"
                                    f" (type 1, size {16 + 48 + len(SSH[0])})")]


def test_zero_size_object():
    data, layout = build_journal([SSH])
    struct.pack_into("<Q", data, 272 + 8, 0)  # the first DATA object
    events, rejections = parse_bytes(bytes(data))
    # the entry is still reachable through the entry array, but its first item is now invalid
    assert events == []
    assert rejections[0].record_ref == "entry:1"
    assert "holds no DATA object" in rejections[0].reason


def test_item_outside_the_file_rejects_that_entry_only():
    data, layout = build_journal([SSH, SSH])
    struct.pack_into("<Q", data, layout["entries"][0] + 64, 10**9)
    events, rejections = parse_bytes(bytes(data))
    assert [e.record_ref for e in events] == ["entry:2"]
    assert rejections == [Rejection("entry:1", f"item 0: DATA offset {10**9} is outside the file"
                                               " or misaligned")]


def test_unknown_incompatible_flag_and_short_header():
    data, _ = build_journal([SSH])
    struct.pack_into("<I", data, 12, 1 << 9)
    assert parse_bytes(bytes(data)) == ([], [Rejection("offset:0",
                                                       "unsupported incompatible flags 0x200")])
    (rejection,) = parse_bytes(b"LPKSHHRH" + bytes(40))[1]
    assert rejection.reason.startswith("not a journal file")


def test_corrupt_compressed_payload_is_rejected(journals):
    data = bytearray((journals / "2004.journal").read_bytes())
    # find the LZ4 DATA object (flag 2) and scramble its compressed block
    offset = struct.unpack_from("<Q", data, 88)[0]
    while True:
        kind, flags, size = struct.unpack_from("<BB6xQ", data, offset)
        if kind == 1 and flags == 2:
            break
        offset += (size + 7) & ~7
    data[offset + 64 + 8 : offset + size] = bytes(size - 72)
    events, rejections = parse_bytes(bytes(data))
    assert len(events) == 2
    assert rejections[0].record_ref == "entry:3"
    assert "LZ4" in rejections[0].reason


def test_random_mutations_never_raise():
    good, _ = build_journal([SSH, [b"MESSAGE=x", b"_COMM=cron"], SSH], compact=True)
    rng = random.Random(2026)
    for _ in range(300):
        data = bytearray(good)
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(8, len(data))] = rng.randrange(256)
        parse_bytes(bytes(data))
        parse_bytes(bytes(data[: rng.randrange(200, len(data))]))


def test_decompression_is_capped():
    with pytest.raises(journal_compression.DecompressionFailed, match="over the 100-byte limit"):
        journal_compression.decompress("lz4", struct.pack("<Q", 1000) + b"\0" * 10, limit=100)
    bomb = lzma.compress(b"\0" * 10_000)
    with pytest.raises(journal_compression.DecompressionFailed, match="beyond 100 bytes"):
        journal_compression.decompress("xz", bomb, limit=100)
    assert journal_compression.decompress("xz", bomb) == b"\0" * 10_000


def test_truncated_or_corrupt_compressed_payloads_are_refused():
    import lz4.block
    import zstandard

    raw = bytes(range(256)) * 400
    frame = zstandard.ZstdCompressor().compress(raw)
    assert journal_compression.decompress("zstd", frame) == raw
    with pytest.raises(journal_compression.DecompressionFailed, match="expected"):
        journal_compression.decompress("zstd", frame[: len(frame) // 2])
    with pytest.raises(journal_compression.DecompressionFailed, match="ZSTD data is corrupt"):
        journal_compression.decompress("zstd", b"garbage")
    block = struct.pack("<Q", len(raw)) + lz4.block.compress(raw, store_size=False)
    assert journal_compression.decompress("lz4", block) == raw
    with pytest.raises(journal_compression.DecompressionFailed, match="LZ4 data is corrupt"):
        journal_compression.decompress("lz4", block[:40])
    with pytest.raises(journal_compression.DecompressionFailed, match="XZ data is truncated"):
        journal_compression.decompress("xz", lzma.compress(raw)[:60])
