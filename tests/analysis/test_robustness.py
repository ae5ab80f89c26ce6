"""Hostile and broken logs, end to end: collect, ingest; good rows loaded, the rest counted."""

from __future__ import annotations

import os
import struct
from datetime import UTC, datetime

import pytest

from sealtrail.analysis.ingest import ingest_case
from sealtrail.analysis.store import CaseDatabase
from sealtrail.custody.case import Case
from tests.conftest import collect, write

GOOD = (b"Mar 10 02:14:51 web01 sshd[9]: Accepted password for deploy from 203.0.113.45 "
        b"port 5 ssh2\n")


def utmp_record(ut_type: int, user: bytes, ts: int) -> bytes:
    return struct.pack("<hxxi32s4s32s256shhiii16s20x", ut_type, 100, b"pts/1", b"ts/1", user,
                       b"203.0.113.45", 0, 0, 0, ts, 0, bytes([203, 0, 113, 45]) + b"\0" * 12)


@pytest.fixture
def hostile_case(tmp_path, keyring):
    host = tmp_path / "host"
    write(host, "etc/hostname", b"h\n")
    write(host, "etc/passwd", b"root:x:0:0::/root:/bin/bash\n")
    write(host, "var/log/syslog", GOOD + os.urandom(4096) + b"\n" + GOOD)
    write(host, "var/log/auth.log", GOOD + b"Mar 10 02:15:00 web01 sshd[9]: bad \xff\xfe utf8\n")
    write(host, "var/log/kern.log", b"Dec 31 23:59:59 h kernel: a\nJan  1 00:00:01 h kernel: b\n")
    wtmp = utmp_record(7, b"deploy", 1773108891) + utmp_record(8, b"", 1773109000)
    write(host, "var/log/wtmp", wtmp + wtmp[:100])  # a torn last record
    mtime = datetime(2026, 1, 2, tzinfo=UTC).timestamp()
    os.utime(host / "var/log/kern.log", (mtime, mtime))
    case = Case.init(tmp_path / "case", title="t", examiner="A", key=keyring.alice.key)
    collect(case, keyring.alice.key, host)
    return case, host


def accounts(case):
    with CaseDatabase(case.root / "analysis.duckdb", read_only=True) as db:
        _, rows = db.execute("SELECT member_path, parser, records_seen, records_loaded, "
                             "records_rejected FROM artifacts WHERE parser IS NOT NULL")
    return {r[0]: r[1:] for r in rows}


def test_hostile_logs_load_the_good_rows_and_count_the_rest(hostile_case, keyring):
    case, _ = hostile_case
    ingest_case(case, keyring.alice.key, workers=2)
    got = accounts(case)
    parser, seen, loaded, rejected = got["/var/log/syslog"]
    assert parser == "syslog" and loaded == 2 and rejected >= 1 and seen == loaded + rejected
    parser, seen, loaded, rejected = got["/var/log/auth.log"]
    assert loaded == 2 and rejected == 0  # invalid UTF-8 is replaced, not lost
    parser, seen, loaded, rejected = got["/var/log/wtmp"]
    assert (parser, loaded, rejected) == ("utmp", 2, 1)
    with CaseDatabase(case.root / "analysis.duckdb", read_only=True) as db:
        _, rows = db.execute("SELECT reason FROM ingest_errors WHERE member_path = "
                             "'/var/log/wtmp'")
        assert "torn record" in rows[0][0]
        _, rows = db.execute("SELECT ts FROM events WHERE member_path = '/var/log/kern.log' "
                             "AND source = 'syslog' ORDER BY ts")
        assert [r[0].year for r in rows] == [2025, 2026]  # Dec -> Jan rollover, no year given
        _, rows = db.execute("SELECT count(*) FROM ingest_errors WHERE member_path = "
                             "'/var/log/syslog' AND reason = 'not text'")
        assert rows[0][0] >= 1


def test_a_100_mb_single_line_does_not_stop_the_ingest(tmp_path, keyring):
    host = tmp_path / "host"
    write(host, "etc/hostname", b"h\n")
    write(host, "etc/passwd", b"root:x:0:0::/root:/bin/bash\n")
    path = host / "var/log/syslog"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(GOOD)
        handle.write(b"Mar 10 02:15:00 web01 x: " + b"A" * (100 << 20) + b"\n")
        handle.write(GOOD)
    case = Case.init(tmp_path / "case", title="t", examiner="A", key=keyring.alice.key)
    collect(case, keyring.alice.key, host)
    ingest_case(case, keyring.alice.key, workers=1)
    parser, seen, loaded, rejected = accounts(case)["/var/log/syslog"]
    assert (loaded, rejected) == (2, 1)
