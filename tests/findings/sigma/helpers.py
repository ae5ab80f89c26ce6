"""A case database's ``events`` for Sigma tests: from the real ingest, or rows written here."""

from __future__ import annotations

import duckdb

from sealtrail.analysis.schema import TABLES
from sealtrail.findings.model import RuleSource

#: What the engine's ``events.event_uid`` stands for until it lands on this branch: the
#: provenance, time and type of the row, as issue 11 describes it.
EVENT_UID = ("md5(concat_ws('|', bundle_id, member_path, record_ref, CAST(ts AS VARCHAR), "
             "event_type, CAST(event_id AS VARCHAR)))")


def ensure_event_uid(con: duckdb.DuckDBPyConnection) -> None:
    """Add ``events.event_uid`` when the schema does not have it yet."""
    names = {row[0] for row in con.execute("DESCRIBE events").fetchall()}
    if "event_uid" not in names:
        con.execute("ALTER TABLE events ADD COLUMN event_uid VARCHAR")
        con.execute(f"UPDATE events SET event_uid = {EVENT_UID}")


def empty_events() -> duckdb.DuckDBPyConnection:
    """An in-memory database with the real ``events`` columns and no rows."""
    con = duckdb.connect()
    cols = ", ".join(f'"{name}" {"VARCHAR" if kind == "JSON" else kind}'
                     for name, kind, _ in TABLES["events"])
    con.execute(f"CREATE TABLE events ({cols})")
    ensure_event_uid(con)
    return con


def create_views(con: duckdb.DuckDBPyConnection, source: RuleSource) -> None:
    for name, select in source.views.items():
        con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS {select}")
