"""Tests for sealtrail/analysis/parsers/utmp.py (wtmp/btmp/utmp and lastlog)."""

from __future__ import annotations

import gzip
import ipaddress
import json
import struct
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sealtrail.analysis.parsers.utmp import LastlogParser, UtmpParser
from sealtrail.analysis.records import EVENT_TYPES, Event, Rejection
from tests.analysis.helpers import member_from_bytes, member_from_file
from tests.shared_data import upstream_path

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "hosts"


def utmp_record(ut_type: int, *, pid: int = 0, line: str = "", ut_id: str = "", user: str = "",
                host: str = "", sec: int = 1_700_000_000, usec: int = 0,
                addr: str | None = None) -> bytes:
    packed = ipaddress.ip_address(addr).packed.ljust(16, b"\0") if addr else bytes(16)
    return struct.pack("<hxxi32s4s32s256shhiii16s20s", ut_type, pid, line.encode(),
                       ut_id.encode(), user.encode(), host.encode(), 0, 0, 0, sec, usec, packed,
                       bytes(20))


def parse(parser, member) -> tuple[list[Event], list[Rejection]]:
    out = list(parser.parse(member))
    events = [o for o in out if isinstance(o, Event)]
    rejections = [o for o in out if isinstance(o, Rejection)]
    assert len(events) + len(rejections) == len(out)  # seen == loaded + rejected
    for event in events:
        assert event.event_type in EVENT_TYPES
        assert event.ts.tzinfo is not None
        assert event.ts.utcoffset().total_seconds() == 0
    return events, rejections


# -- the synthetic web01 host against its ground truth ------------------------------------------
def test_web01_wtmp_matches_the_truth_file():
    truth = json.loads((FIXTURES / "web01.truth.json").read_text())
    counts = truth["counts"]["var/log/wtmp"]
    member = member_from_file(FIXTURES / "web01/var/log/wtmp", "/var/log/wtmp")
    events, rejections = parse(UtmpParser(), member)
    assert rejections == []
    assert len(events) == counts["records"] == truth["totals"]["wtmp_records"]
    by_type = Counter(e.attributes["ut_type"] for e in events)
    assert {f"ut_type_{k}": v for k, v in by_type.items()} == {
        k: v for k, v in counts.items() if k.startswith("ut_type_")
    }
    kinds = Counter(e.event_type for e in events)
    assert kinds["logon_success"] == counts["ut_type_7"]
    assert kinds["logoff"] == counts["ut_type_8"]
    assert kinds["system_boot"] == counts["ut_type_2"]
    # the two RUN_LVL records: the "shutdown" one and a change to runlevel 3
    assert kinds["system_shutdown"] == 1
    assert kinds["other"] == 1
    attacker = truth["attacker_logins"][1]
    login = next(e for e in events if e.event_type == "logon_success"
                 and e.ts.replace(microsecond=0).isoformat() == attacker["time"].replace("Z",
                                                                                      "+00:00"))
    assert (login.user, login.src_ip, login.attributes["line"]) == (
        attacker["user"], truth["attacker"]["ips"][0], attacker["tty"])


def test_web01_btmp_records_are_all_failed_logins():
    truth = json.loads((FIXTURES / "web01.truth.json").read_text())
    member = member_from_file(FIXTURES / "web01/var/log/btmp", "/var/log/btmp")
    events, rejections = parse(UtmpParser(), member)
    assert rejections == []
    assert len(events) == truth["counts"]["var/log/btmp"]["records"] == truth["totals"][
        "btmp_records"]
    # OpenSSH writes LOGIN_PROCESS records into btmp: in btmp they are failures too
    assert {e.event_type for e in events} == {"logon_failure"}
    attacker_ip = truth["brute_force"]["source_ip"]
    targeted = {e.user for e in events if e.src_ip == attacker_ip}
    assert targeted == set(truth["brute_force"]["targeted_users"])


# -- upstream (plaso test data) -------------------------------------------------------------------
def test_upstream_utmp_has_fourteen_records():
    member = member_from_file(upstream_path("linux/utmp"), "/var/run/utmp")
    events, rejections = parse(UtmpParser(), member)
    assert rejections == []
    assert len(events) == 14
    assert Counter(e.event_type for e in events) == {
        "logon_success": 6, "other": 7, "system_boot": 1}
    boot = events[0]
    assert boot.event_type == "system_boot"
    assert boot.ts == datetime(2013, 12, 13, 14, 45, 9, 688666, tzinfo=UTC)
    assert boot.user is None
    assert boot.attributes["host"] == "3.8.0-33-generic"
    assert events[1].attributes["runlevel"] == "2"
    logins = [e for e in events if e.event_type == "logon_success"]
    assert {e.user for e in logins} == {"moxilo"}
    assert [e.attributes["line"] for e in logins] == ["tty7", "pts/0", "pts/2", "pts/3", "pts/4",
                                                      "pts/5"]
    assert logins[1].src_ip is None  # ut_host ":0" is an X display, not an address
    assert [e.record_ref for e in events] == [f"offset:{n * 384}" for n in range(14)]


def test_upstream_wtmp_torn_byte_is_one_rejection_and_empty_slots_are_counted():
    member = member_from_file(upstream_path("linux/wtmp.1"), "/var/log/wtmp.1")
    assert UtmpParser().check(member, member.head())
    events, rejections = parse(UtmpParser(), member)
    login, logout = events
    assert login.event_type == "logon_success"
    assert (login.user, login.src_ip, login.attributes["line"]) == ("userA", "10.10.122.1",
                                                                    "pts/32")
    assert login.ts == datetime(2011, 12, 1, 17, 36, 38, 432935, tzinfo=UTC)
    assert logout.event_type == "logoff"
    assert logout.attributes["pid"] == 20060
    assert rejections == [
        Rejection("offset:768", "empty slot"),
        Rejection("offset:1152", "empty slot"),
        Rejection("offset:1536", "torn record: 1 trailing bytes"),
    ]


def test_upstream_corrupted_utmp_keeps_alice_and_bob():
    member = member_from_file(upstream_path("linux/utmp_corrupted"), "/var/run/utmp")
    events, rejections = parse(UtmpParser(), member)
    assert [(e.user, e.attributes["line"], e.src_ip, e.record_ref) for e in events] == [
        ("alice", "tty1", None, "offset:0"),
        ("bob", "pts/0", "10.0.0.5", "offset:1152"),
    ]
    assert rejections == [
        Rejection("offset:384", "invalid ut_type 99"),
        Rejection("offset:768", "invalid ut_type 99"),
        Rejection("offset:1536", "torn record: 50 trailing bytes"),
    ]


# -- record semantics ---------------------------------------------------------------------------
def test_ipv6_address_and_host_fallback():
    data = (utmp_record(7, user="a", line="pts/0", addr="2001:db8::7")
            + utmp_record(7, user="b", line="pts/1", host="192.0.2.9")
            + utmp_record(7, user="c", line="pts/2", host="bastion.example.com"))
    events, _ = parse(UtmpParser(), member_from_bytes("/var/log/wtmp", data))
    assert [e.src_ip for e in events] == ["2001:db8::7", "192.0.2.9", None]


def test_runlevel_zero_and_six_are_shutdowns():
    data = (utmp_record(1, pid=ord("0") + 256 * ord("5"), user="runlevel", line="~")
            + utmp_record(1, pid=ord("6"), user="runlevel", line="~")
            + utmp_record(1, pid=ord("5") + 256 * ord("N"), user="runlevel", line="~"))
    events, _ = parse(UtmpParser(), member_from_bytes("/var/log/wtmp", data))
    assert [e.event_type for e in events] == ["system_shutdown", "system_shutdown", "other"]
    assert events[2].attributes["previous_runlevel"] == "N"
    assert events[2].message == "runlevel change to 5 from N"


def test_btmp_user_process_is_a_failure_and_wtmp_user_process_a_success():
    record = utmp_record(7, user="root", line="ssh:notty", addr="203.0.113.45")
    (failed,), _ = parse(UtmpParser(), member_from_bytes("/var/log/btmp.1", record))
    (success,), _ = parse(UtmpParser(), member_from_bytes("/var/log/wtmp", record))
    assert (failed.event_type, success.event_type) == ("logon_failure", "logon_success")


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        (utmp_record(7, sec=0), "invalid timestamp: tv_sec 0"),
        (utmp_record(7, sec=-5), "invalid timestamp: tv_sec -5"),
        (utmp_record(7, usec=1_000_000), "invalid timestamp: tv_usec 1000000"),
        (utmp_record(12), "invalid ut_type 12"),
        (bytes(384), "empty slot"),
    ],
)
def test_damaged_records_are_rejected_with_the_reason(record, reason):
    good = utmp_record(8, line="pts/0", pid=4)
    events, rejections = parse(UtmpParser(), member_from_bytes("/var/log/wtmp", good + record))
    assert len(events) == 1
    assert rejections == [Rejection("offset:384", reason)]


def test_compressed_rotation_is_read_through_the_member():
    data = utmp_record(2, user="reboot", line="~", host="6.1.0")
    member = member_from_bytes("/var/log/wtmp.2.gz", gzip.compress(data))
    assert UtmpParser().check(member, member.head())
    (event,), _ = parse(UtmpParser(), member)
    assert event.event_type == "system_boot"


def test_check_by_name_and_by_content():
    record = utmp_record(7, user="a", line="pts/0")
    parser = UtmpParser()
    assert parser.check(member_from_bytes("/var/log/btmp-20260301", b""), b"")
    assert parser.check(member_from_bytes("/var/log/wtmp.1.gz", b""), b"")
    assert not parser.check(member_from_bytes("/var/lib/wtmpdb/wtmp.db", b""), b"")
    assert not parser.check(member_from_bytes("/var/adm/wtmpx", b""), b"")
    unnamed = member_from_bytes("/evidence/login-records.bin", record * 3)
    assert parser.check(unnamed, record * 3)
    text = b"Mar 10 02:00:07 web01 sshd[1]: hello\n" * 20
    assert not parser.check(member_from_bytes("/var/log/syslog", text), text)
    odd = record * 2 + b"x"
    assert not parser.check(member_from_bytes("/evidence/blob", odd), odd)
    assert not parser.check(member_from_bytes("/evidence/zeros", bytes(768)), bytes(768))


# -- lastlog ------------------------------------------------------------------------------------
def lastlog_slot(sec: int, line: str = "", host: str = "") -> bytes:
    return struct.pack("<i32s256s", sec, line.encode(), host.encode())


def test_lastlog_sparse_slots_are_indexed_by_uid():
    data = bytearray(292 * 1003)
    data[0:292] = lastlog_slot(1_773_000_000, "pts/0", "198.51.100.7")
    data[292 * 1002 : 292 * 1003] = lastlog_slot(1_773_110_000, "pts/1", "203.0.113.45")
    member = member_from_bytes("/var/log/lastlog", bytes(data))
    parser = LastlogParser()
    assert parser.check(member, member.head())
    events, rejections = parse(parser, member)
    assert rejections == []  # all-zero slots are holes, not records
    assert [(e.attributes["uid"], e.src_ip, e.record_ref) for e in events] == [
        (0, "198.51.100.7", "offset:0"),
        (1002, "203.0.113.45", f"offset:{292 * 1002}"),
    ]
    assert events[1].ts == datetime.fromtimestamp(1_773_110_000, tz=UTC)
    assert {(e.event_type, e.ts_desc, e.user) for e in events} == {("other", "last login", None)}


def test_lastlog_torn_tail_and_zero_time_are_rejected():
    data = lastlog_slot(1_773_000_000, "tty1") + lastlog_slot(0, "pts/3", "x") + b"\1" * 10
    events, rejections = parse(LastlogParser(), member_from_bytes("/var/log/lastlog", data))
    assert len(events) == 1
    assert rejections == [
        Rejection("offset:292", "invalid timestamp: ll_time 0"),
        Rejection("offset:584", "torn record: 10 trailing bytes"),
    ]
    assert not LastlogParser().check(member_from_bytes("/var/log/wtmp", data), data)
