"""The findings tables of the case database, as data (docs/schema.md, "Findings").

``findings`` holds the latest result of each rule (a run replaces the findings of the rules it
ran); ``finding_evidence`` ties each finding to ``events.event_uid`` (and through the event
row to bundle, member and SHA-256) or, for evidence that is a line of a collected file, to the
bundle, member and line; ``rule_outcomes`` and ``analysis_runs`` keep every run.
"""

from __future__ import annotations

from sealtrail.analysis.store import CaseDatabase

# (column, type, description)
FINDING_COLUMNS: list[tuple[str, str, str]] = [
    ("finding_id", "VARCHAR", "F- and 16 hex digits of SHA-256 over rule, host, user, source "
                              "address and group key: the same in every run"),
    ("rule_id", "VARCHAR", "the rule that fired"),
    ("rule_source", "VARCHAR", "builtin, sigma:<path>, config"),
    ("title", "VARCHAR", "the rule's title"),
    ("level", "VARCHAR", "informational, low, medium, high, critical"),
    ("tactics", "VARCHAR[]", "ATT&CK tactics"),
    ("techniques", "VARCHAR[]", "ATT&CK technique ids"),
    ("first_ts", "TIMESTAMPTZ", "earliest evidence time"),
    ("last_ts", "TIMESTAMPTZ", "latest evidence time"),
    ("host", "VARCHAR", "host"),
    ("user_name", "VARCHAR", "account concerned, or NULL"),
    ("src_ip", "VARCHAR", "remote address concerned, or NULL"),
    ("group_key", "VARCHAR", "what else separates this finding from the rule's others"),
    ("summary", "VARCHAR", "one line"),
    ("evidence_count", "BIGINT", "rows in finding_evidence"),
    ("mark", "VARCHAR", "false_positive, confirmed, or NULL (from the ledger's finding_marked)"),
    ("mark_note", "VARCHAR", "the analyst's note with the mark"),
    ("run_id", "VARCHAR", "the analysis run that produced it"),
]

FINDING_EVIDENCE_COLUMNS: list[tuple[str, str, str]] = [
    ("finding_id", "VARCHAR", "finding"),
    ("event_uid", "VARCHAR", "events.event_uid, or NULL for a line of a collected file"),
    ("bundle_id", "VARCHAR", "for a line of a collected file: its bundle (NULL for an event: "
                             "join events on event_uid for its provenance)"),
    ("member_path", "VARCHAR", "for a line of a collected file: its member path"),
    ("line_no", "BIGINT", "for a line of a collected file: the line (NULL: the whole file, "
                         "e.g. its mode)"),
]

RULE_OUTCOME_COLUMNS: list[tuple[str, str, str]] = [
    ("run_id", "VARCHAR", "analysis run"),
    ("rule_id", "VARCHAR", "rule"),
    ("source", "VARCHAR", "builtin, sigma:<path>, config"),
    ("title", "VARCHAR", "the rule's title"),
    ("outcome", "VARCHAR", "matched, no_match, not_applicable, failed"),
    ("reason", "VARCHAR", "why, for not_applicable and failed"),
    ("rows_matched", "BIGINT", "evidence rows the rule returned (NULL: not run)"),
    ("seconds", "DOUBLE", "time the rule took (NULL: not run)"),
]

ANALYSIS_RUN_COLUMNS: list[tuple[str, str, str]] = [
    ("run_id", "VARCHAR", "analysis run"),
    ("started", "TIMESTAMPTZ", "when it started (UTC)"),
    ("finished", "TIMESTAMPTZ", "when it finished (UTC)"),
    ("rule_sets", "VARCHAR", "JSON: rule set name -> SHA-256 of its rule files"),
    ("outcomes", "VARCHAR", "JSON: outcome -> rules"),
    ("findings", "BIGINT", "findings the run produced"),
    ("events", "BIGINT", "events rows in the database"),
]

FINDINGS_TABLES: dict[str, list[tuple[str, str, str]]] = {
    "findings": FINDING_COLUMNS,
    "finding_evidence": FINDING_EVIDENCE_COLUMNS,
    "rule_outcomes": RULE_OUTCOME_COLUMNS,
    "analysis_runs": ANALYSIS_RUN_COLUMNS,
}


def ensure_findings_tables(db: CaseDatabase) -> None:
    for table, columns in FINDINGS_TABLES.items():
        cols = ", ".join(f'"{name}" {kind}' for name, kind, _ in columns)
        db.execute(f"CREATE TABLE IF NOT EXISTS {table} ({cols})")


def has_findings_tables(db: CaseDatabase) -> bool:
    _, rows = db.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = "
                         "'findings'")
    return rows[0][0] > 0
