"""Reading the findings back: the list, one finding with its evidence, and why a list is empty.

Every evidence row is shown with the provenance that leads to the signed bytes: the event's
bundle, member path, member SHA-256 and record reference (or, for a line of a collected file,
the bundle, member path, line and the member's SHA-256 from ``artifacts``).
"""

from __future__ import annotations

import json
from typing import Any

from sealtrail.analysis.store import CaseDatabase
from sealtrail.errors import UsageError
from sealtrail.findings.model import LEVELS
from sealtrail.findings.tables import FINDING_COLUMNS, has_findings_tables

_LEVEL_ORDER = "CASE level " + " ".join(
    f"WHEN '{level}' THEN {i}" for i, level in enumerate(reversed(LEVELS))) + " END"
EVIDENCE_FIELDS = ("event_uid", "ts", "event_type", "source", "message", "bundle_id",
                   "member_path", "member_sha256", "record_ref", "line_no")


def _rows(db: CaseDatabase, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
    names, rows = db.execute(sql, params or [])
    return [dict(zip(names, row, strict=True)) for row in rows]


def list_findings(db: CaseDatabase) -> list[dict[str, Any]]:
    """Every finding, most severe first, then by first time and id."""
    if not has_findings_tables(db):
        return []
    names = ", ".join(f'"{name}"' for name, _, _ in FINDING_COLUMNS)
    return _rows(db, f"SELECT {names} FROM findings "  # noqa: S608 - names from FINDING_COLUMNS
                     f"ORDER BY {_LEVEL_ORDER}, first_ts NULLS LAST, finding_id")


def show_finding(db: CaseDatabase, finding_id: str) -> dict[str, Any]:
    """One finding with its evidence rows (oldest first) and the rule's outcome in its run.

    Raises:
        UsageError: no such finding.
    """
    found = [f for f in list_findings(db) if f["finding_id"] == finding_id]
    if not found:
        raise UsageError(f"no finding {finding_id} (see 'sealtrail findings CASE')")
    finding = found[0]
    # file evidence: its line as written (config_entries: absent in a database built before
    # the table existed and opened read-only) and the place as a record_ref, like an event's
    config = ("config_entries" if db.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'config_entries'")[1][0][0]
        else "(SELECT NULL::VARCHAR AS bundle_id, NULL::VARCHAR AS member_path, "
             "NULL::BIGINT AS line_no, NULL::VARCHAR AS raw WHERE false)")
    finding["evidence"] = _rows(db, f"""
        SELECT fe.event_uid, e.ts, e.event_type, e.source, coalesce(e.message, c.raw) AS message,
               coalesce(e.bundle_id, fe.bundle_id) AS bundle_id,
               coalesce(e.member_path, fe.member_path) AS member_path,
               coalesce(e.member_sha256, a.sha256) AS member_sha256,
               coalesce(e.record_ref, CASE WHEN fe.event_uid IS NULL THEN
                        coalesce('line:' || fe.line_no, 'file') END) AS record_ref, fe.line_no
        FROM finding_evidence fe
        LEFT JOIN events e ON e.event_uid = fe.event_uid
        LEFT JOIN artifacts a ON fe.event_uid IS NULL AND a.bundle_id = fe.bundle_id
             AND a.member_path = fe.member_path
        LEFT JOIN {config} c ON fe.event_uid IS NULL AND c.bundle_id = fe.bundle_id
             AND c.member_path = fe.member_path AND c.line_no = fe.line_no
        WHERE fe.finding_id = ?
        ORDER BY e.ts NULLS LAST, 6, 7, e.record_ref, fe.line_no""",  # noqa: S608 - constants
        [finding_id])
    return finding


def why_empty(db: CaseDatabase) -> str:
    """Why there are no findings, in one sentence."""
    events = db.execute("SELECT count(*) FROM events")[1][0][0]
    if not events:
        return "no events in the case database: ingest the case's bundles first"
    if not has_findings_tables(db):
        return "no analysis has run yet: run 'sealtrail analyze CASE'"
    runs = db.execute("SELECT run_id, outcomes FROM analysis_runs ORDER BY started DESC "
                      "LIMIT 1")[1]
    if not runs:
        return "no analysis has run yet: run 'sealtrail analyze CASE'"
    counts = json.loads(runs[0][1])
    ran = counts.get("matched", 0) + counts.get("no_match", 0)
    if not ran:
        return (f"no rule could run in the last analysis ({runs[0][0]}): "
                f"{counts.get('not_applicable', 0)} not applicable (no events of their kind), "
                f"{counts.get('failed', 0)} failed")
    return (f"the last analysis ({runs[0][0]}) ran {ran} rules over {events:,} events and none "
            f"matched ({counts.get('not_applicable', 0)} not applicable, "
            f"{counts.get('failed', 0)} failed)")
