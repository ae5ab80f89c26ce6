"""Sigma semantics on rows written here: case, |cased, |re, keywords, and correlations that
return the evidence rows of the groups meeting their condition."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb

from sealtrail.findings.model import EVIDENCE_COLUMNS
from sealtrail.findings.sigma import sigma_source
from tests.findings.sigma.helpers import create_views, empty_events

HEAD = """title: '{title}'
id: {id}
name: {name}
status: test
level: high
author: Test Author
"""


def security_rule(title: str, rule_id: str, name: str, event_id: int) -> str:
    """A Security rule selecting one event id."""
    return HEAD.format(title=title, id=rule_id, name=name) + f"""\
logsource: {{product: windows, service: security}}
detection:
    selection: {{EventID: {event_id}}}
    condition: selection
"""


FAILED_LOGON = security_rule("Failed logon", "aaaaaaaa-0000-4000-8000-000000000001",
                             "failed_logon", 4625)


def over_failed_logons(title: str, rule_id: str, kind: str, condition: str) -> str:
    """A correlation of ``kind`` over FAILED_LOGON by IpAddress within 5 minutes."""
    return HEAD.format(title=title, id=rule_id, name=title.lower().replace(" ", "_")) + f"""\
correlation:
    type: {kind}
    rules: [failed_logon]
    group-by: [IpAddress]
    timespan: 5m
    condition: {condition}
"""


BRUTE = over_failed_logons("Brute force", "aaaaaaaa-0000-4000-8000-000000000002", "event_count",
                           "{gte: 3}")
SPRAY = over_failed_logons("Spray", "aaaaaaaa-0000-4000-8000-000000000003", "value_count",
                           "{gte: 2, field: TargetUserName}")


def _insert(con: duckdb.DuckDBPyConnection, n: int, *, ip: str, user: str, minute: int,
            eid: int = 4625, channel: str = "Security", message: str = "") -> None:
    data = {"provider": "Microsoft-Windows-Security-Auditing",
            "EventData": {"IpAddress": ip, "TargetUserName": user}}
    con.execute(
        "INSERT INTO events (event_uid, ts, host, source, event_type, event_id, channel, "
        "src_ip, \"user\", message, attributes) VALUES (?, TIMESTAMPTZ '2026-01-01 00:00:00+00' "
        "+ to_minutes(?::BIGINT), 'dc01', 'winevtx', 'logon_failure', ?, ?, ?, ?, ?, ?)",
        [f"uid-{n}", minute, eid, channel, ip, user, message, json.dumps(data)])


def _run(tmp_path: Path, con: duckdb.DuckDBPyConnection, *texts: str) -> dict[str, list]:
    for i, text in enumerate(texts):
        (tmp_path / f"r{i}.yml").write_text(text, encoding="utf-8")
    source = sigma_source([tmp_path], levels=None, statuses=None)
    assert source.failures == ()
    create_views(con, source)
    out = {}
    for rule in source.rules:
        cur = con.execute(rule.sql)
        assert tuple(d[0] for d in cur.description) == EVIDENCE_COLUMNS
        out[rule.meta.title] = sorted(cur.fetchall(), key=lambda r: r[0])
    return out


def test_event_count_returns_evidence_rows_of_the_group(tmp_path: Path) -> None:
    con = empty_events()
    for n in range(3):
        _insert(con, n, ip="203.0.113.9", user="admin", minute=n)
    _insert(con, 3, ip="198.51.100.1", user="admin", minute=1)
    _insert(con, 4, ip="203.0.113.9", user="admin", minute=60)  # outside the 5 minutes
    out = _run(tmp_path, con, FAILED_LOGON, BRUTE)
    assert "Failed logon" not in out  # a base rule does not stand alone (generate: false)
    assert [r[0] for r in out["Brute force"]] == ["uid-0", "uid-1", "uid-2"]
    assert {r[5] for r in out["Brute force"]} == {"IpAddress=203.0.113.9"}


def test_value_count_counts_distinct_accounts(tmp_path: Path) -> None:
    con = empty_events()
    _insert(con, 0, ip="203.0.113.9", user="alice", minute=0)
    _insert(con, 1, ip="203.0.113.9", user="bob", minute=1)
    _insert(con, 2, ip="198.51.100.1", user="alice", minute=1)
    _insert(con, 3, ip="198.51.100.1", user="alice", minute=2)
    out = _run(tmp_path, con, FAILED_LOGON, SPRAY)
    assert [r[0] for r in out["Spray"]] == ["uid-0", "uid-1"]


def test_matching_is_case_insensitive_except_cased_and_re(tmp_path: Path) -> None:
    con = empty_events()
    _insert(con, 0, ip="203.0.113.9", user="ADMIN_1", minute=0)
    rule = HEAD.replace("name: {name}\n", "") + """\
logsource: {{product: windows, service: security}}
detection:
    selection: {{TargetUserName{mod}: '{value}'}}
    condition: selection
"""
    cases = {"admin_1": ("", True), "admin?1": ("", True), "admin-2": ("", False),
             "admin_1 ": ("", False),
             "admin_": ("|startswith", True), "admin": ("|cased|startswith", False),
             "ADMIN": ("|cased|startswith", True), "^admin": ("|re", False),
             "^ADMIN_\\d$": ("|re", True), "^admin_\\d$": ("|re|i", True)}
    texts = [rule.format(title=f"{mod} {value}", id=f"bbbbbbbb-0000-4000-8000-{i:012d}",
                         mod=mod, value=value)
             for i, (value, (mod, _)) in enumerate(cases.items())]
    out = _run(tmp_path, con, *texts)
    for value, (mod, fires) in cases.items():
        assert bool(out[f"{mod} {value}"]) is fires, (mod, value)


def test_keywords_search_message_and_attributes(tmp_path: Path) -> None:
    con = empty_events()
    _insert(con, 0, ip="203.0.113.9", user="x", minute=0, message="sshd: Accepted password")
    rule = HEAD.format(title="kw", id="cccccccc-0000-4000-8000-000000000001", name="kw") + """
logsource: {product: windows, service: security}
detection:
    keywords: ['accepted PASSWORD', '203.0.113.9']
    condition: keywords
"""
    assert len(_run(tmp_path, con, rule)["kw"]) == 1


def test_not_filter_on_an_absent_field_keeps_the_row(tmp_path: Path) -> None:
    con = empty_events()
    _insert(con, 0, ip="203.0.113.9", user="admin", minute=0)
    rule = HEAD.format(title="nf", id="dddddddd-0000-4000-8000-000000000001", name="nf") + """
logsource: {product: windows, service: security}
detection:
    selection: {TargetUserName: admin}
    filter: {ParentImage|endswith: '\\\\explorer.exe'}
    condition: selection and not filter
"""
    assert len(_run(tmp_path, con, rule)["nf"]) == 1


def test_temporal_needs_every_rule_in_the_window(tmp_path: Path) -> None:
    con = empty_events()
    success = security_rule("Logon", "eeeeeeee-0000-4000-8000-000000000001", "logon", 4624)
    temporal = HEAD.format(title="Fail then logon", id="eeeeeeee-0000-4000-8000-000000000002",
                           name="fail_logon") + """\
correlation:
    type: temporal
    rules: [failed_logon, logon]
    group-by: [IpAddress]
    timespan: 10m
"""
    _insert(con, 0, ip="203.0.113.9", user="admin", minute=0)
    _insert(con, 1, ip="203.0.113.9", user="admin", minute=3, eid=4624)
    _insert(con, 2, ip="198.51.100.1", user="admin", minute=0)
    _insert(con, 3, ip="198.51.100.1", user="admin", minute=30, eid=4624)  # too late
    out = _run(tmp_path, con, FAILED_LOGON, success, temporal)
    assert [r[0] for r in out["Fail then logon"]] == ["uid-0", "uid-1"]


def test_correlation_over_a_missing_rule_fails_naming_it(tmp_path: Path) -> None:
    (tmp_path / "brute.yml").write_text(BRUTE, encoding="utf-8")
    source = sigma_source([tmp_path], levels=None, statuses=None)
    [failure] = source.failures
    assert failure.title == "Brute force"
    assert "failed_logon" in failure.reason
