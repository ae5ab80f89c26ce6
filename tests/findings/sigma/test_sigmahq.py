"""All of SigmaHQ's rules: every rule ends converted or failed, and every converted rule is
DuckDB SQL that runs over the real ``events`` columns and returns the evidence columns."""

from __future__ import annotations

from sealtrail.findings.model import EVIDENCE_COLUMNS
from sealtrail.findings.sigma import sigma_source
from tests.findings.sigma.helpers import create_views, empty_events
from tests.shared_data import sigma_path


def test_every_sigmahq_rule_converts_to_runnable_sql_or_fails_with_a_reason() -> None:
    rules = sigma_path("rules")
    source = sigma_source([rules], levels=None, statuses=None)
    files = sum(1 for _ in rules.rglob("*.yml"))
    assert len(source.rules) + len(source.failures) >= files
    assert len(source.rules) > 2000
    assert all(f.reason and "\n" not in f.reason for f in source.failures)
    con = empty_events()
    create_views(con, source)
    for rule in source.rules:
        cur = con.execute(rule.sql)
        assert tuple(d[0] for d in cur.description) == EVIDENCE_COLUMNS, rule.meta.title
        assert cur.fetchall() == []
