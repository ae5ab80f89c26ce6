"""dpkg.log and apt history.log parsers against web01."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from sealtrail.analysis.parsers.package_logs import AptHistoryParser, DpkgLogParser
from sealtrail.analysis.records import Event, Rejection
from tests.analysis.helpers import member_from_bytes, member_from_file

ROOT = Path(__file__).resolve().parents[3]
WEB01 = ROOT / "fixtures" / "hosts" / "web01"
TRUTH = json.loads((ROOT / "fixtures" / "hosts" / "web01.truth.json").read_text())


def test_dpkg_log_one_record_per_line() -> None:
    rel = "var/log/dpkg.log"
    data = (WEB01 / rel).read_bytes()
    records = list(DpkgLogParser().parse(member_from_file(WEB01 / rel, source_path="/" + rel)))
    assert len(records) == TRUTH["counts"][rel]["lines"]
    assert all(isinstance(r, Event) for r in records)
    changes = [r for r in records if r.event_type == "package_change"]
    expected = sum(1 for line in data.decode().splitlines()
                   if line.split()[2] in {"install", "upgrade", "remove", "purge"})
    assert len(changes) == expected
    kernel = [r for r in changes if r.attributes["package"] == "linux-image-5.15.0-101-generic"]
    assert kernel[0].attributes["action"] == "install"
    assert kernel[0].attributes["old_version"] is None
    assert kernel[0].ts == datetime(2026, 3, 6, 6, 41, 17, tzinfo=UTC)


def test_apt_history_one_event_per_run() -> None:
    rel = "var/log/apt/history.log"
    records = list(AptHistoryParser().parse(member_from_file(WEB01 / rel, source_path="/" + rel)))
    assert [r.record_ref for r in records] == ["line:2", "line:8", "line:13"]
    jq = records[2]
    assert (jq.user, jq.command_line, jq.event_type) == ("alice", "apt-get install -y jq",
                                                        "package_change")
    assert jq.ts == datetime(2026, 3, 11, 9, 31, 1, tzinfo=UTC)
    assert "jq:amd64 (1.6-2.1ubuntu3)" in jq.attributes["install"]
    assert Counter(len(r.attributes.get("upgrade", [])) for r in records) == Counter({2: 2, 0: 1})


def test_apt_stanza_without_start_date_is_rejected() -> None:
    data = b"Commandline: apt install x\nInstall: x:amd64 (1)\n"
    assert list(AptHistoryParser().parse(member_from_bytes("/var/log/apt/history.log", data))) == [
        Rejection("line:1", "apt history stanza without a valid Start-Date")]


def test_dpkg_bad_line_rejected() -> None:
    data = b"2026-03-06 06:41:12 install a:amd64 <none> 1\nnonsense\n"
    records = list(DpkgLogParser().parse(member_from_bytes("/var/log/dpkg.log", data)))
    assert records[1] == Rejection("line:2", "not a dpkg.log line")
