"""A case database's ``events`` for Sigma tests: from the real ingest, or rows written here."""

from __future__ import annotations

from pathlib import Path

import duckdb

from sealtrail.analysis.ingest import ingest_case
from sealtrail.analysis.schema import TABLES
from sealtrail.custody.case import Case
from sealtrail.custody.keys import SigningKey
from sealtrail.findings.model import RuleSource
from tests.conftest import collect

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


def ingested_db(root: Path, host: Path, glob: str) -> duckdb.DuckDBPyConnection:
    """Collect ``host``'s files under ``glob`` into a new case in ``root``, ingest them, and
    open its database (with ``event_uid``)."""
    key = SigningKey.generate("alice")
    case = Case.init(root / "case", title=host.name, examiner="Alice", key=key)
    collect(case, key, host, paths=(glob,))
    ingest_case(case, key, pinned=[key.public], workers=2)
    con = duckdb.connect(str(case.root / "analysis.duckdb"))
    ensure_event_uid(con)
    return con


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
