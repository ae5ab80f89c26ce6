"""EvtxParser against the upstream EVTX samples, both libraries alone, and hostile files."""

from __future__ import annotations

import io
import os
import struct
import time
from datetime import UTC, datetime
from pathlib import Path

import evtx
import pytest
from Evtx.Evtx import Evtx

from sealtrail.analysis.parsers.evtx_windows import EvtxParser
from sealtrail.analysis.records import EVENT_TYPES, Event, Rejection
from tests.analysis.helpers import member_from_bytes, member_from_file
from tests.shared_data import ABSENT, upstream_dir, upstream_path

# python-evtx alone takes more than ~3 s on these (it reads ~250 records/s).
SLOW_FOR_PYTHON_EVTX = {"System.evtx", "security.evtx", "smb-password-guessing-security.evtx",
                        "issue_43.evtx", "Security_with_size_t.evtx"}


def _all_names() -> list[str]:
    folder = upstream_dir() / "evtx"
    return sorted(p.name for p in folder.glob("*.evtx")) if folder.is_dir() else []


def _params() -> list:
    return [pytest.param(n, marks=pytest.mark.slow) if n in SLOW_FOR_PYTHON_EVTX else n
            for n in _all_names()] or [ABSENT]  # reaches upstream_path: skips, or fails


def evtx_alone(path: Path) -> tuple[dict[int, bool], int]:
    """evtx by itself: record id -> has a TimeCreated, and the number of errors raised."""
    ids: dict[int, bool] = {}
    errors = 0
    records = evtx.PyEvtxParser(str(path)).records_json()
    while True:
        try:
            record = next(records)
        except StopIteration:
            return ids, errors
        except RuntimeError:
            errors += 1
            continue
        ids[record["event_record_id"]] = '"TimeCreated":{' in record["data"]


def python_evtx_alone(path: Path) -> dict[int, bool]:
    """python-evtx by itself (as SOURCES.md counts): id -> has a TimeCreated, for records
    whose xml() works."""
    ids: dict[int, bool] = {}
    with Evtx(str(path)) as log:
        for chunk in log.chunks():
            try:
                for record in chunk.records():
                    try:
                        xml = record.xml()
                    except Exception:  # noqa: BLE001, S112 - counting python-evtx alone
                        continue
                    ids[record.record_num()] = '<TimeCreated SystemTime="">' not in xml
            except Exception:  # noqa: BLE001, S112
                continue
    return ids


def run(path_or_member) -> tuple[list[Event], list[Rejection]]:
    member = (member_from_file(path_or_member) if isinstance(path_or_member, Path)
              else path_or_member)
    parser = EvtxParser()
    assert parser.check(member, member.head())
    out = list(parser.parse(member))
    events = [o for o in out if isinstance(o, Event)]
    rejections = [o for o in out if isinstance(o, Rejection)]
    assert len(events) + len(rejections) == len(out)  # seen = loaded + rejected
    return events, rejections


def events_of(name: str) -> list[Event]:
    return run(upstream_path(f"evtx/{name}"))[0]


@pytest.mark.parametrize("name", _params())
def test_every_upstream_file_loads_at_least_what_each_library_reads_alone(name: str) -> None:
    path = upstream_path(f"evtx/{name}")
    events, rejections = run(path)
    alone_ids, alone_errors = evtx_alone(path)
    py_ids = python_evtx_alone(path)

    got = {int(e.record_ref.split(":")[1]) for e in events}
    rejected_records = {int(r.record_ref.split(":")[1]) for r in rejections
                        if r.record_ref.startswith("record:")}
    assert len(got) == len(events)  # no record twice
    assert set(alone_ids) <= got | rejected_records
    assert set(py_ids) <= got | rejected_records
    # records without a TimeCreated are rejections by design (sample_with_a_bad_chunk_magic)
    assert len(events) >= max(sum(alone_ids.values()), sum(py_ids.values()))
    # every evtx error ends as a rejection (a chunk, a record or the file)
    assert (alone_errors == 0) or rejections
    for r in rejections:
        assert r.record_ref.split(":")[0] in {"record", "chunk", "offset"}
        assert r.reason
    floor = datetime(1990, 1, 1, tzinfo=UTC)
    for e in events:
        assert e.ts.tzinfo is UTC
        assert e.ts > floor
        assert e.event_type in EVENT_TYPES
        assert e.parser in {"evtx", "python-evtx"}
        assert e.ts_desc == "event logged"
        assert e.record_ref.startswith("record:")


def test_sysmon_stale_chunk_count_gives_the_union_of_both_libraries() -> None:
    path = upstream_path("evtx/sysmon.evtx")
    events, rejections = run(path)
    alone_ids, _ = evtx_alone(path)
    py_ids = python_evtx_alone(path)
    union = set(alone_ids) | set(py_ids)
    assert len(py_ids) == 41  # python-evtx alone trusts the header's chunk count of 1
    # chunks 9-16 have no chunk magic, so neither library can read them: the union is evtx's.
    assert len(events) == len(union) == 358
    assert {e.parser for e in events} == {"evtx"}
    assert sorted(r.record_ref for r in rejections) == sorted(f"chunk:{n}" for n in range(9, 17))
    assert all("python-evtx: no chunk magic" in r.reason and "ElfChnk" in r.reason
               for r in rejections)


def test_truncated_system2_recovers_the_cut_chunk_with_python_evtx() -> None:
    # evtx and python-evtx alone both stop at 194 records; the third (cut) chunk holds 90 more.
    events, rejections = run(upstream_path("evtx/System2.evtx"))
    by_parser = {p: sum(1 for e in events if e.parser == p) for p in ("evtx", "python-evtx")}
    assert by_parser == {"evtx": 194, "python-evtx": 88}
    refs = {r.record_ref: r.reason for r in rejections}
    assert set(refs) == {"record:216", "record:284"}
    assert "UnicodeDecodeError" in refs["record:216"]
    assert "cut off" in refs["record:284"]
    recovered = next(e for e in events if e.record_ref == "record:195")
    assert recovered.parser == "python-evtx"
    assert recovered.event_type == "logon_success"
    assert recovered.logon_type == 5
    assert recovered.target_user == "NT AUTHORITY\\SYSTEM"
    assert recovered.ts == datetime(2015, 8, 9, 9, 17, 38, 765625, tzinfo=UTC)


def test_zero_size_record_is_rejected_with_the_records_it_hides() -> None:
    events, rejections = run(upstream_path("evtx/sample-with-zero-data-size-event.evtx"))
    assert len(events) == 335
    refs = {r.record_ref: r.reason for r in rejections}
    assert set(refs) == {"record:3", "chunk:0"}
    assert "Invalid EVTX record data size" in refs["record:3"]
    assert "records 4..117" in refs["chunk:0"]


def test_bad_chunk_magic_and_record_without_time_are_rejections() -> None:
    events, rejections = run(upstream_path("evtx/sample_with_a_bad_chunk_magic.evtx"))
    assert len(events) == 269
    refs = {r.record_ref: r.reason for r in rejections}
    assert set(refs) == {"chunk:6", "chunk:10", "record:46741"}
    assert "no TimeCreated" in refs["record:46741"]


# -- field extraction against known values -------------------------------------------------

def test_security_4624_has_logon_type_and_target_user() -> None:
    logons = [e for e in events_of("security.evtx") if e.event_id == 4624]
    assert len(logons) == 583
    assert all(e.event_type == "logon_success" and e.logon_type is not None
               and e.target_user and e.user == e.target_user for e in logons)
    assert {e.logon_type for e in logons} == {0, 2, 3, 5, 7}
    first = next(e for e in logons if e.record_ref == "record:2")
    assert first.target_user == "NT AUTHORITY\\SYSTEM"
    assert first.target_sid == "S-1-5-18"
    assert first.src_ip is None  # "-" in the record
    assert first.message == "4624 logon type 0 by NT AUTHORITY\\SYSTEM from ?"


def test_new_user_gives_account_created_and_group_membership() -> None:
    events = events_of("new-user-security.evtx")
    sid = "S-1-5-21-3463664321-2923530833-3546627382-1000"
    created = [e for e in events if e.event_type == "account_created"]
    assert len(created) == 1
    assert created[0].target_user == "IE8Win7\\IEUser"
    assert created[0].target_sid == sid
    assert created[0].user == created[0].subject_user == "WORKGROUP\\WIN-QALA5Q3KJ43$"
    groups = [e for e in events if e.event_type == "group_membership_changed"]
    assert sorted(e.event_id for e in groups) == [4728, 4732, 4732]
    assert all(e.target_sid == sid for e in groups)
    assert {e.message.split(" group ")[1].split(" by ")[0] for e in groups} == {
        "IE8Win7\\None", "Builtin\\Users", "Builtin\\Administrators"}


def test_system_has_25_service_installs_with_names() -> None:
    installs = [e for e in events_of("System.evtx") if e.event_type == "service_installed"]
    assert len(installs) == 25
    assert all(e.service_name and e.event_id == 7045 for e in installs)
    first = next(e for e in installs if e.record_ref == "record:174")
    assert first.service_name == "Intel(R) PRO/1000 NDIS 6 Adapter Driver"
    assert first.service_path == "system32\\DRIVERS\\E1G6032E.sys"


def test_short_security_has_one_logon_failure() -> None:
    failures = [e for e in events_of("Security_short_selected.evtx")
                if e.event_type == "logon_failure"]
    assert len(failures) == 1
    f = failures[0]
    assert (f.event_id, f.logon_type, f.user, f.src_ip, f.src_port) == (
        4625, 10, "TEMPORAL\\Administrator", "23.94.153.202", 60167)
    assert f.process == "C:\\Windows\\System32\\winlogon.exe"
    assert f.attributes["EventData"]["SubStatus"] == "0xc000006a"
    assert f.attributes["provider"] == "Microsoft-Windows-Security-Auditing"


def test_powershell_script_blocks() -> None:
    events = events_of("EID4103_PowershellModule.evtx")
    blocks = [e for e in events if e.script_block]
    assert len(blocks) == 13
    assert all(e.event_id == 4104 and e.event_type == "shell_command" for e in blocks)
    assert any(e.script_block == "add-type yolo" for e in blocks)
    module = next(e for e in events if e.event_id == 4103)
    assert module.event_type == "shell_command"
    assert module.user == "PATSY\\yolo"
    assert module.command_line.startswith('CommandInvocation(Add-Type): "Add-Type"')


def test_sysmon_process_start_columns() -> None:
    start = next(e for e in events_of("sysmon.evtx") if e.record_ref == "record:1742")
    assert start.event_type == "process_start"
    assert start.process == "C:\\Windows\\SysWOW64\\PING.EXE"
    assert start.command_line == "ping  -n 6 127.0.0.1"
    assert start.parent_process == "C:\\Windows\\SysWOW64\\cmd.exe"
    assert start.user == "NT AUTHORITY\\SYSTEM"


def test_log_cleared_and_psexec_service() -> None:
    events = events_of("metasploit-psexec-native-target-system.evtx")
    cleared = [e for e in events if e.event_type == "log_cleared"]
    assert [(e.event_id, e.user) for e in cleared] == [(104, "IE10WIN7\\IEUser")]
    assert sum(e.event_type == "service_installed" for e in events) == 2


# -- hostile input ----------------------------------------------------------------------------

def _file_header(chunks: int = 1) -> bytes:
    header = bytearray(0x1000)
    header[:8] = b"ElfFile\x00"
    struct.pack_into("<QQQIHHHH", header, 8, 0, chunks - 1, 100, 0x80, 1, 3, 0x1000, chunks)
    return bytes(header)


def _hostile(data: bytes) -> list[Rejection]:
    started = time.monotonic()
    events, rejections = run(member_from_bytes("/evidence/hostile.evtx", data))
    assert time.monotonic() - started < 10
    return rejections


def test_random_bytes_behind_a_file_header_are_rejected() -> None:
    assert _hostile(_file_header(4) + os.urandom(4 * 0x10000))


def test_random_chunks_with_chunk_magic_are_rejected_without_hanging() -> None:
    chunks = b"".join(b"ElfChnk\x00" + os.urandom(0x10000 - 8) for _ in range(3))
    assert _hostile(_file_header(3) + chunks)


def test_truncated_file_keeps_what_is_there() -> None:
    data = upstream_path("evtx/security.evtx").read_bytes()[:0x1000 + 0x10000 + 0x7000]
    events, rejections = run(member_from_bytes("/evidence/cut.evtx", data))
    # 90 records of chunk 0 and those of chunk 1 before the cut; the cut record is rejected
    assert len(events) > 90
    assert any(r.record_ref.startswith("record:") and "cut off" in r.reason
               for r in rejections)


def test_zeroed_chunk_magic_is_a_chunk_rejection() -> None:
    data = bytearray(upstream_path("evtx/new-user-security.evtx").read_bytes())
    data[0x1000:0x1008] = bytes(8)
    rejections = _hostile(bytes(data))
    assert [r.record_ref for r in rejections] == ["chunk:0"]


def test_huge_record_size_is_a_rejection() -> None:
    data = bytearray(upstream_path("evtx/new-user-security.evtx").read_bytes())
    struct.pack_into("<I", data, 0x1000 + 0x200 + 4, 0xFFFFFFF0)
    rejections = _hostile(bytes(data))
    assert rejections


def test_looping_string_table_is_not_handed_to_python_evtx() -> None:
    data = bytearray(upstream_path("evtx/new-user-security.evtx").read_bytes())
    struct.pack_into("<I", data, 0x1000 + 0x200 + 4, 0)  # evtx fails: python-evtx is asked
    struct.pack_into("<I", data, 0x1000 + 0x80, 0x300)  # bucket 0 -> 0x300 -> 0x300 ...
    struct.pack_into("<I", data, 0x1000 + 0x300, 0x300)
    rejections = _hostile(bytes(data))
    assert any("loops" in r.reason for r in rejections)


def test_not_an_evtx_file() -> None:
    member = member_from_bytes("/evidence/x.evtx", b"MZ" + bytes(100))
    assert not EvtxParser().check(member, member.head())


# -- speed (printed, not asserted tightly) ----------------------------------------------------

def _bare(data: bytes) -> int:
    n = 0
    for _ in evtx.PyEvtxParser(io.BytesIO(data), number_of_threads=1).records_json():
        n += 1
    return n


def _ours(data: bytes) -> int:
    return sum(1 for _ in EvtxParser().parse(member_from_bytes("/e/x.evtx", data)))


@pytest.mark.parametrize("name", ["System.evtx", "security.evtx"])
def test_speed_against_bare_evtx(name: str) -> None:
    data = upstream_path(f"evtx/{name}").read_bytes()

    def median(fn) -> tuple[float, int]:
        times = []
        for _ in range(5):
            started = time.perf_counter()
            n = fn(data)
            times.append(time.perf_counter() - started)
        return sorted(times)[2], n

    bare_s, bare_n = median(_bare)
    ours_s, ours_n = median(_ours)
    ratio = (ours_n / ours_s) / (bare_n / bare_s)
    print(f"\n{name}: bare evtx {bare_n / bare_s:,.0f} rec/s, EvtxParser {ours_n / ours_s:,.0f}"
          f" rec/s, ratio {ratio:.2f}")
    assert ours_n >= bare_n
    assert ratio > 0.05  # a regression guard only; the figures are in the printout
