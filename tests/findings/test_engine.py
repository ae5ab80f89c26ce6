"""The engine: routing, outcomes, findings and their ids, evidence, marks."""

from __future__ import annotations

import pytest

from sealtrail.findings import engine
from sealtrail.findings.engine import Marks, run_rules
from sealtrail.findings.model import CompiledRule, RuleFailure, RuleMeta, RuleSource

COLUMNS = ("NULL::VARCHAR AS group_key, NULL::VARCHAR AS bundle_id, "
           "NULL::VARCHAR AS member_path, NULL::BIGINT AS line_no")


def rule(rule_id: str, sql: str, **kwargs) -> CompiledRule:
    return CompiledRule(RuleMeta(rule_id, f"title {rule_id}", "high", "stable", "test"), sql,
                        **kwargs)


def per_user(where: str = "true") -> str:
    return (f'SELECT event_uid, ts, host, "user" AS user_name, src_ip, {COLUMNS} '
            f"FROM events WHERE {where}")


def outcomes(report) -> dict[str, tuple[str, str | None, int | None]]:
    return {o.rule_id: (o.outcome, o.reason, o.rows_matched) for o in report.outcomes}


def findings(db) -> list[tuple]:
    return db.execute("SELECT finding_id, rule_id, host, user_name, src_ip, evidence_count "
                      "FROM findings ORDER BY ALL")[1]


def test_rule_without_rows_of_its_logsource_is_not_applicable_and_not_run(small_db):
    # the SQL would fail if it ran: routing decides first
    report = run_rules(small_db, [RuleSource("t", rules=(
        rule("sysmon", "SELECT no_such_column FROM events", needs=frozenset({("Sysmon", 1)})),
        rule("journal", "SELECT broken", sources=frozenset({"journald"})),
    ))], "run1")
    got = outcomes(report)
    assert got["sysmon"] == ("not_applicable", "no events of Sysmon/1 in the case", None)
    assert got["journal"] == ("not_applicable", "no events from journald in the case", None)
    assert not report.ran_any()


def test_routed_rule_reads_only_its_partition(small_db):
    report = run_rules(small_db, [RuleSource("t", rules=(
        rule("all", per_user()),
        rule("security", per_user(), needs=frozenset({("Security", 4625)})),
        rule("any-system", per_user(), needs=frozenset({("System", None)})),
        rule("sshd", per_user(), sources=frozenset({"syslog"})),
    ))], "run1")
    got = outcomes(report)
    assert [got[r][2] for r in ("all", "security", "any-system", "sshd")] == [6, 2, 1, 3]
    # the case's own table is back once the rules ran
    assert small_db.execute("SELECT count(*) FROM events")[1][0][0] == 6


def test_failing_rules_are_reported_and_the_others_run(small_db):
    report = run_rules(small_db, [
        RuleSource("t", rules=(
            rule("bad-sql", "SELECT * FROM nowhere"),
            rule("bad-columns", "SELECT event_uid, ts FROM events"),
            rule("good", per_user("source = 'syslog'")),
            rule("two-statements", per_user() + "; DROP TABLE events"),
        ), failures=(RuleFailure("unparsed", "x", "test", "not YAML"),)),
        RuleSource("v", views={"broken_view": "SELECT nope FROM events"},
                   rules=(rule("uses-view", "SELECT * FROM broken_view"),)),
    ], "run1")
    got = outcomes(report)
    assert got["bad-sql"][0] == "failed" and "nowhere" in got["bad-sql"][1]
    assert got["bad-columns"][0] == "failed"
    assert got["bad-columns"][1].startswith("returns columns event_uid, ts; the contract's")
    assert got["unparsed"] == ("failed", "not YAML", None)
    assert got["uses-view"][0] == "failed" and "view broken_view of v" in got["uses-view"][1]
    assert got["two-statements"] == ("failed", "not one SELECT statement: SELECT, DROP", None)
    assert small_db.execute("SELECT count(*) FROM events")[1][0][0] == 6
    assert got["good"] == ("matched", None, 3)
    assert report.counts() == {"matched": 1, "no_match": 0, "not_applicable": 0, "failed": 5}
    outcome_rows = small_db.execute("SELECT count(*) FROM rule_outcomes WHERE run_id = 'run1'")
    assert outcome_rows[1][0][0] == 6


def test_findings_group_by_rule_host_user_address_with_the_same_ids_every_run(small_db):
    source = RuleSource("t", rules=(rule("per-user", per_user("source = 'syslog'")),))
    run_rules(small_db, [source], "run1")
    first = findings(small_db)
    assert sorted((r[3], r[5]) for r in first) == [("admin", 1), ("root", 2)]
    assert all(r[0].startswith("F-") and len(r[0]) == 18 for r in first)
    run_rules(small_db, [source], "run2")
    assert findings(small_db) == first
    evidence = small_db.execute("SELECT event_uid, bundle_id, member_path FROM "
                                "finding_evidence ORDER BY 1")[1]
    # event evidence names the row; its provenance is the row's
    assert evidence == [("u4", None, None), ("u5", None, None), ("u6", None, None)]


def test_rule_that_stops_matching_loses_its_findings(small_db):
    run_rules(small_db, [RuleSource("t", rules=(rule("r", per_user()),))], "run1")
    assert findings(small_db)
    report = run_rules(small_db, [RuleSource("t", rules=(rule("r", per_user("false")),))],
                       "run2")
    assert outcomes(report)["r"][0] == "no_match"
    assert findings(small_db) == []
    assert small_db.execute("SELECT count(*) FROM finding_evidence")[1][0][0] == 0


def test_marks_are_applied_to_the_ids_they_name(small_db):
    source = RuleSource("t", rules=(rule("r", per_user("source = 'syslog'")),))
    run_rules(small_db, [source], "run1")
    target = findings(small_db)[0][0]
    run_rules(small_db, [source], "run2",
              marks=Marks({target: ("false_positive", "lab"), "F-unknown": ("confirmed", "x")}))
    marks = small_db.execute("SELECT finding_id, mark, mark_note FROM findings "
                             "WHERE mark IS NOT NULL")[1]
    assert marks == [(target, "false_positive", "lab")]


@pytest.mark.parametrize("outcome", ["matched", "no_match"])
def test_analysis_runs_row_counts_outcomes(small_db, outcome):
    where = "true" if outcome == "matched" else "false"
    report = run_rules(small_db, [RuleSource("t", rules=(rule("r", per_user(where)),))], "run1",
                       rule_sets={"t": "abc"})
    row = small_db.execute("SELECT rule_sets, outcomes, findings, events FROM analysis_runs")[1]
    assert row[0][0] == '{"t":"abc"}'
    assert f'"{outcome}":1' in row[0][1]
    assert row[0][2] == report.findings and row[0][3] == 6


def test_partition_shared_by_many_rules_is_copied_once_and_read_the_same(small_db):
    needs = frozenset({("Security", 4625)})
    rules = tuple(rule(f"r{i}", per_user(), needs=needs) for i in range(engine.MATERIALIZE_AT))
    report = run_rules(small_db, [RuleSource("t", rules=rules)], "run1")
    assert {o.rows_matched for o in report.outcomes} == {2}
    assert small_db.execute("SELECT DISTINCT e.member_path FROM finding_evidence f "
                            "JOIN events e USING (event_uid)")[1] == [("C:/Security.evtx",)]
    assert small_db.execute("SELECT count(*) FROM events")[1][0][0] == 6


@pytest.mark.parametrize("up_to", [1_000, -1])
def test_view_shared_by_many_rules_of_a_copied_partition_is_a_table_for_the_group(
        small_db, monkeypatch, up_to):
    # up_to -1: the partition is too large, the view stays a view; the results are the same
    monkeypatch.setattr(engine, "TABLE_VIEWS_UP_TO", up_to)
    needs = frozenset({("Security", 4625)})
    view = 'SELECT *, upper("user") AS shout FROM events'
    sql = f"SELECT event_uid, ts, host, shout AS user_name, src_ip, {COLUMNS} FROM shouting"
    rules = tuple(rule(f"r{i}", sql, needs=needs) for i in range(engine.MATERIALIZE_AT))
    kinds = set()

    def seen(_n: int, _total: int) -> None:
        kinds.update(small_db.execute("SELECT table_type FROM information_schema.tables "
                                      "WHERE table_name = 'shouting'")[1])

    report = run_rules(small_db, [RuleSource("t", views={"shouting": view}, rules=rules)],
                       "run1", progress=seen)
    assert kinds == {("LOCAL TEMPORARY",) if up_to > 0 else ("VIEW",)}
    assert {o.outcome for o in report.outcomes} == {"matched"}
    assert {o.rows_matched for o in report.outcomes} == {2}
    # the view is a view again, over the whole table
    assert small_db.execute("SELECT table_type FROM information_schema.tables "
                            "WHERE table_name = 'shouting'")[1] == [("VIEW",)]
    assert small_db.execute("SELECT count(*) FROM shouting")[1][0][0] == 6


def test_findings_of_a_rule_the_source_no_longer_has_are_removed(small_db):
    run_rules(small_db, [RuleSource("t", rules=(rule("old", per_user()),))], "run1")
    run_rules(small_db, [RuleSource("t", rules=(rule("new", per_user("false")),))], "run2")
    assert findings(small_db) == []
    assert small_db.execute("SELECT count(*) FROM finding_evidence")[1][0][0] == 0
