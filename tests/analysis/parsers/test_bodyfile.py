"""Tests for sealtrail/analysis/parsers/bodyfile.py (TSK 3.x bodyfile)."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime

import pytest

from sealtrail.analysis.parsers.bodyfile import BodyfileParser
from sealtrail.analysis.records import EVENT_TYPES, Event, Rejection
from tests.analysis.helpers import member_from_bytes

# Lines in the shape `fls -r -m /` writes (TSK 4.x, same 11-field 3.x format).
BODY = (
    b"0|/etc/passwd|131-128-1|r/rrw-r--r--|0|0|1234|1773108000|1773108100|1773108100|1772000000\n"
    b"d41d8cd98f00b204e9800998ecf8427e|/tmp/.c.tgz (deleted)|912|r/rrw-------|1001|1001|0"
    b"|1773108130|1773108130|1773108130|1773108130\n"
    b"\n"
    b"0|/srv/odd|name|with|pipes|77|r/rrw-r--r--|1001|1001|5|0|1773108200.250000|0|0\n"
    b"0|$OrphanFiles|0|V/V---------|0|0|0|0|0|0|0\n"
    b"0|/broken|12|r/rrw-r--r--|0|0|5|yesterday|0|0|0\n"
    b"just some text\n"
)


def parse(data: bytes, name: str = "/case/fls.body") -> tuple[list[Event], list[Rejection]]:
    out = list(BodyfileParser().parse(member_from_bytes(name, data)))
    events = [o for o in out if isinstance(o, Event)]
    rejections = [o for o in out if isinstance(o, Rejection)]
    assert len(events) + len(rejections) == len(out)
    for event in events:
        assert event.event_type in EVENT_TYPES
        assert event.ts.tzinfo is UTC
    return events, rejections


def test_one_event_per_non_zero_time_with_macb_grouping():
    events, _ = parse(BODY)
    passwd = [e for e in events if e.record_ref == "line:1"]
    assert [(e.ts_desc, e.event_type, e.attributes["macb"]) for e in passwd] == [
        ("atime", "file_accessed", ".a.."),
        ("mtime", "file_modified", "m.c."),
        ("ctime", "file_changed", "m.c."),
        ("crtime", "file_created", "...b"),
    ]
    assert passwd[1].ts == datetime.fromtimestamp(1773108100, tz=UTC)
    assert passwd[0].path == "/etc/passwd"
    assert passwd[0].attributes | {"macb": None} == {
        "md5": None, "inode": "131-128-1", "mode": "r/rrw-r--r--", "uid": 0, "gid": 0,
        "size": 1234, "deleted": False, "macb": None}
    deleted = [e for e in events if e.record_ref == "line:2"]
    assert len(deleted) == 4
    assert {e.attributes["macb"] for e in deleted} == {"macb"}
    assert deleted[0].attributes["deleted"] is True
    assert deleted[0].attributes["md5"] == "d41d8cd98f00b204e9800998ecf8427e"


def test_pipes_in_names_keep_the_fixed_fields_from_the_right():
    events, _ = parse(BODY)
    (odd,) = [e for e in events if e.record_ref == "line:4"]
    assert odd.path == "/srv/odd|name|with|pipes"
    assert odd.attributes["inode"] == "77"
    assert odd.ts_desc == "mtime"
    assert odd.ts == datetime(2026, 3, 10, 2, 3, 20, 250000, tzinfo=UTC)


def test_every_non_blank_line_is_accounted_for():
    events, rejections = parse(BODY)
    assert len(events) == 4 + 4 + 1
    assert rejections == [
        Rejection("line:5", "no timestamp: atime, mtime, ctime and crtime are all 0"),
        Rejection("line:6", "time 'yesterday' is not a number"),
        Rejection("line:7", "1 fields, a TSK 3.x bodyfile line has 11"),
    ]
    assert {e.record_ref for e in events} == {"line:1", "line:2", "line:4"}


@pytest.mark.parametrize("value", ["-5", "1e400", "nan", "99999999999999"])
def test_out_of_range_times_are_rejected(value):
    line = f"0|/x|1|r/r---------|0|0|1|{value}|1773108100|0|0\n".encode()
    events, rejections = parse(line)
    assert events == []
    assert len(rejections) == 1


def test_check_by_content_and_by_name():
    parser = BodyfileParser()
    assert parser.check(member_from_bytes("/evidence/timeline.txt", BODY), BODY)
    cut = BODY[:130]  # the head may end inside a line
    assert parser.check(member_from_bytes("/evidence/timeline.txt", BODY), cut)
    assert parser.check(member_from_bytes("/evidence/host1.body", b""), b"")
    csv = b"name,size\na,1\n"
    assert not parser.check(member_from_bytes("/evidence/x.csv", csv), csv)
    syslog = b"Mar 10 02:00:07 web01 sshd[1]: Failed password for root\n"
    assert not parser.check(member_from_bytes("/var/log/auth.log", syslog), syslog)


def test_compressed_member_and_crlf():
    data = gzip.compress(BODY.replace(b"\n", b"\r\n"))
    member = member_from_bytes("/case/fls.body.gz", data)
    assert BodyfileParser().check(member, member.head())
    events = [o for o in BodyfileParser().parse(member) if isinstance(o, Event)]
    assert len(events) == 9
    assert events[0].path == "/etc/passwd"
