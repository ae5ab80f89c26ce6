"""WebAccessParser against the web01 nginx logs and hand-made edge lines."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sealtrail.analysis.parsers.web_access import WebAccessParser
from sealtrail.analysis.records import Event, Rejection
from tests.analysis.helpers import member_from_bytes, member_from_file

ROOT = Path(__file__).resolve().parents[3]
WEB01 = ROOT / "fixtures" / "hosts" / "web01"
TRUTH = json.loads((ROOT / "fixtures" / "hosts" / "web01.truth.json").read_text())


def parse(rel: str) -> list[Event | Rejection]:
    return list(WebAccessParser().parse(member_from_file(WEB01 / rel, source_path="/" + rel)))


@pytest.mark.parametrize("rel", ["var/log/nginx/access.log", "var/log/nginx/access.log.1",
                                 "var/log/nginx/access.log.2.gz"])
def test_access_logs_match_the_truth_counts(rel: str) -> None:
    records = parse(rel)
    counts = TRUTH["counts"][rel]
    assert len(records) == counts["lines"]
    assert all(isinstance(r, Event) and r.event_type == "http_request" for r in records)
    assert sum(1 for r in records if r.attributes["status"] == 404) == counts["status_404"]
    assert sum(1 for r in records if r.src_ip == "203.0.113.45") == counts["attacker_ip"]
    export_all = [r for r in records if r.path == "/export" and r.attributes["query"] == "all=1"]
    assert len(export_all) == counts["export_all"]


def test_the_export_request() -> None:
    records = parse("var/log/nginx/access.log.1")
    (hit,) = [r for r in records if r.path == "/export" and r.attributes["query"] == "all=1"]
    exfil = TRUTH["exfiltration"][1]
    assert hit.ts.isoformat().replace("+00:00", "Z") == exfil["time"]
    assert hit.attributes["bytes"] == exfil["bytes"] == 40260
    assert hit.message == "GET /export?all=1 -> 200 (40260 bytes)"
    assert hit.attributes["user_agent"] in TRUTH["attacker"]["user_agents"]
    assert (hit.ts_desc, hit.src_ip, hit.user) == ("request received", "203.0.113.45", None)


def test_zone_user_common_format_and_extras() -> None:
    data = (b'192.0.2.1 - bob [10/Mar/2026:03:47:33 +0200] "POST /a?b=1 HTTP/2.0" 201 - '
            b'"http://x/" "UA \\"q\\"" 0.004 "-"\n'
            b'192.0.2.2 - - [10/Mar/2026:01:47:33 -0500] "GET / HTTP/1.0" 304 0\n'
            b'192.0.2.3 - - [10/Mar/2026:01:47:33 +0000] "\\x16\\x03\\x01" 400 157 "-" "-"\n'
            b"\n"
            b"garbage line\n")
    first, second, tls, bad = WebAccessParser().parse(member_from_bytes("/x/access.log", data))
    assert first.ts == datetime(2026, 3, 10, 1, 47, 33, tzinfo=UTC)
    assert (first.user, first.attributes["bytes"], first.attributes["method"]) == (
        "bob", None, "POST")
    assert first.attributes["user_agent"] == 'UA "q"'
    assert first.attributes["extra"] == '0.004 "-"'
    assert first.attributes["protocol"] == "HTTP/2.0"
    assert second.ts == datetime(2026, 3, 10, 6, 47, 33, tzinfo=UTC)
    assert second.attributes["referer"] is None
    assert second.attributes["user_agent"] is None
    assert tls.attributes["method"] is None
    assert tls.attributes["request"] == "\\x16\\x03\\x01"
    assert tls.path is None
    assert bad == Rejection("line:5", "not a common/combined access log line")


def test_check_sniffs_content() -> None:
    line = (WEB01 / "var/log/nginx/access.log").read_bytes()[:300]
    assert WebAccessParser().check(member_from_bytes("/logs/site-x.log", line), line)
    assert not WebAccessParser().check(member_from_bytes("/logs/x.log", b"hello\n"), b"hello\n")
