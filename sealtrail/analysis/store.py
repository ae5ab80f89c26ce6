"""The case database (``CASE/analysis.duckdb``): the only module that imports duckdb.

The database is derived: it can always be rebuilt from the verified bundles. Rows arrive in
bulk from Parquet files written by the parse workers (EVTX records as JSON text, read by the SQL
``parsers.evtx_sql`` writes). Events are kept sorted by time, which makes time-window queries
several times faster: inserted in time order when the table was empty, else sorted after the
ingest.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from sealtrail.analysis.schema import EVENT_COLUMNS, EVENT_UID_COLUMN, TABLES
from sealtrail.errors import AnalysisError, QueryRefused

DATABASE_NAME = "analysis.duckdb"
MEMORY_LIMIT = "600MB"  # bench/bench_ingest_evtx.py: flat main-process memory, same speed
# JSON columns are stored as text: DuckDB's JSON functions and ->> work on VARCHAR, and the JSON
# type validates every value on insert, which slowed bulk loads in a trial while building
# bench/bench_query.py. Our writers only ever store JSON they serialised themselves.
_DDL = {"JSON": "VARCHAR"}


_EVENT_ORDER = "ts NULLS LAST, bundle_id, member_path, record_ref"
_BUNDLE_ORDER = "ts NULLS LAST, member_path, record_ref"


# What identifies an events row: its provenance, its time and its type. Several rows can share
# all of it (a member's file-system times share one ``manifest:`` reference but differ in ts_desc
# and event_type; a damaged EVTX log can repeat a record id), so an ordinal among the rows of
# one INSERT with the same key, ordered by their content, separates the rest.
_UID_KEY = ("bundle_id", "member_path", "record_ref", "ts", "ts_desc", "event_type")


def event_uid_sql() -> str:
    """The SQL expression of ``events.event_uid`` over a SELECT of the events columns.

    MD5 (hex) of the key's values, each written with its length first (so no value can borrow
    another's characters: ``("a:b", "c")`` and ``("a", "b:c")`` differ) and NULL written apart
    from any text, then ``#`` and the ordinal among rows with the same key. Rows that share the
    key and their content are interchangeable, so which of them gets which ordinal does not
    change the set of ids.
    """
    parts = []
    for name in _UID_KEY:
        text = "CAST(epoch_us(ts) AS VARCHAR)" if name == "ts" else f'"{name}"'
        parts.append(f"coalesce(CAST(length({text}) AS VARCHAR) || ':' || {text}, '-')")
    key = ", ".join(f'"{name}"' for name in _UID_KEY)
    ordinal = (f"row_number() OVER (PARTITION BY {key} ORDER BY message, attributes, "
               "member_sha256, parser)")
    return f"md5(concat({', '.join(parts)}, '#', {ordinal}))"


FETCH_BATCH = 4096  # rows a query result holds in Python at a time
# DuckDB's words for SQL the sandbox stopped (beside its PermissionException): a locked setting,
# a write to the read-only database, a COPY onto the database's own files.
_REFUSALS = ("the configuration has been locked", "in read-only mode",
             "belongs to an attached database")


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _sandbox_config(scratch: str) -> dict[str, Any]:
    """DuckDB settings for SQL a user types: nothing outside the database file and ``scratch``.

    Given at connect (the database file is opened first and stays allowed: DuckDB adds it and
    its WAL to ``allowed_paths`` itself); ``lock_configuration`` is set after our own SETs, so
    no ``SET``, ``RESET`` or ``PRAGMA`` can undo these. Spilling goes to ``scratch``, a private
    folder removed on close, the only folder DuckDB may touch (``allowed_directories``).
    """
    return {"enable_external_access": False, "autoload_known_extensions": False,
            "autoinstall_known_extensions": False, "allow_community_extensions": False,
            "allow_persistent_secrets": False, "python_enable_replacements": False,
            "temp_directory": scratch}


def _query_error(exc: Exception) -> AnalysisError:
    first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if isinstance(exc, duckdb.PermissionException) or any(r in first for r in _REFUSALS):
        return QueryRefused(first)
    return AnalysisError(f"query failed: {first}")


class CaseDatabase:
    """The case database. ``sandboxed`` (implies read-only): for SQL a user types, which can then
    read only this database: no host file, no extension, no setting (``_sandbox_config``)."""

    def __init__(self, path: Path, *, read_only: bool = False, sandboxed: bool = False) -> None:
        self.path = path
        read_only = read_only or sandboxed
        if read_only and not path.exists():
            raise AnalysisError(f"{path} does not exist: run 'sealtrail ingest' first")
        self._scratch = tempfile.mkdtemp(prefix="sealtrail-query-") if sandboxed else None
        try:
            self.conn = duckdb.connect(str(path), read_only=read_only,
                                       config=_sandbox_config(self._scratch) if sandboxed else {})
        except duckdb.Error as exc:
            self._remove_scratch()
            raise AnalysisError(f"cannot open {path}: {exc}") from exc
        self.conn.execute("SET TimeZone = 'UTC'")
        # DuckDB draws a progress bar on stdout during long statements: it would corrupt
        # machine-readable output (--json). Memory is bounded; DuckDB spills to disk past it.
        self.conn.execute("SET enable_progress_bar = false")
        self.conn.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
        if sandboxed:
            self.conn.execute("SET lock_configuration = true")
        if not read_only:
            self.ensure_schema()

    def _remove_scratch(self) -> None:
        if self._scratch:
            shutil.rmtree(self._scratch, ignore_errors=True)

    def close(self) -> None:
        self.conn.close()
        self._remove_scratch()

    def __enter__(self) -> CaseDatabase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def ensure_schema(self) -> None:
        for table, columns in TABLES.items():
            cols = ", ".join(f'"{name}" {_DDL.get(kind, kind)}' for name, kind, _ in columns)
            self.conn.execute(f"CREATE TABLE IF NOT EXISTS {table} ({cols})")
        self._add_event_uid()

    def _add_event_uid(self) -> None:
        """A database built before ``event_uid`` existed gets it, as an ingest would give it
        (all rows of a bundle went in in one INSERT, so the ordinal is the same)."""
        columns = {row[0] for row in self.conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'events'"
        ).fetchall()}
        if EVENT_UID_COLUMN[0] in columns:
            return
        names = ", ".join(f'"{name}"' for name, _, _ in EVENT_COLUMNS)
        self.conn.execute("BEGIN")
        self.conn.execute(f"CREATE TABLE events_uid AS SELECT {names}, {event_uid_sql()} AS "  # noqa: S608 - names from schema, a constant expression
                          f"event_uid FROM events ORDER BY {_EVENT_ORDER}")
        self.conn.execute("DROP TABLE events")
        self.conn.execute("ALTER TABLE events_uid RENAME TO events")
        self.conn.execute("COMMIT")

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Everything inside commits together or not at all."""
        self.conn.execute("BEGIN TRANSACTION")
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def ingested_bundles(self) -> set[str]:
        return {row[0] for row in self.conn.execute("SELECT bundle_id FROM ingests").fetchall()}

    def load_parquet(self, table: str, files: Sequence[Path]) -> int:
        """Append the rows of Parquet files (written with the table's schema) to ``table``
        (``events`` rows go through ``insert_events``, which derives their ``event_uid``)."""
        if not files:
            return 0
        if table == "events":
            raise AnalysisError("events rows are loaded with insert_events")
        names = ", ".join(f'"{name}"' for name, _, _ in TABLES[table])
        before = self.count(table)
        self.conn.execute(
            f"INSERT INTO {table} ({names}) SELECT {names} FROM {parquet_source(files)}"  # noqa: S608 - names from schema.TABLES, paths quoted
        )
        return self.count(table) - before

    def insert_events(self, files: Sequence[Path], selects: Sequence[str] = (), *,
                      ordered: bool) -> None:
        """Append one bundle's rows, from Parquet files (events schema) and SELECTs yielding the
        events columns, in one statement; ``ordered``: in time order (as ``sort_events``).
        Each row gets its ``event_uid`` here (``event_uid_sql``), whichever parser made it."""
        names = ", ".join(f'"{name}"' for name, _, _ in EVENT_COLUMNS)
        # names from schema.TABLES, SELECTs from parsers.evtx_sql, paths quoted
        parts = [f"SELECT {names} FROM ({select})" for select in selects]  # noqa: S608
        if files:
            parts.append(f"SELECT {names} FROM {parquet_source(files)}")  # noqa: S608
        if not parts:
            return
        # one bundle's rows: the same order as sort_events' without its constant bundle_id,
        # whose comparison would cost on every tie of ts
        order = f" ORDER BY {_BUNDLE_ORDER}" if ordered else ""
        # On one thread: with two, this statement (the event_uid window over whole rows, then
        # the sort) ran out of the 600 MB memory_limit on a bundle of ~1M EVTX records
        # (docs/benchmarks.md, "EVTX ingest rate"); on one it fits.
        self.conn.execute("SET threads = 1")
        try:
            self.conn.execute(f"INSERT INTO events ({names}, event_uid) SELECT {names}, "  # noqa: S608 - names from schema.TABLES, SQL from evtx_sql, paths quoted
                              f"{event_uid_sql()} FROM ({' UNION ALL '.join(parts)}){order}")
        except duckdb.Error as exc:
            raise AnalysisError(f"loading events failed: {str(exc).splitlines()[0]}") from exc
        finally:
            self.conn.execute("RESET threads")

    def check_one_select(self, sql: str) -> None:
        """Raise ``AnalysisError`` unless ``sql`` is exactly one SELECT statement (SQL that is
        run inside another statement, such as a rule's, must not carry a second one)."""
        try:
            statements = self.conn.extract_statements(sql)
        except duckdb.Error as exc:
            raise AnalysisError(f"query failed: {str(exc).splitlines()[0]}") from exc
        kinds = [s.type.name for s in statements]
        if kinds != ["SELECT"]:
            raise AnalysisError(f"not one SELECT statement: {', '.join(kinds) or 'nothing'}")

    def create_temp_table(self, name: str, select: str) -> None:
        """A temporary table of a SELECT's rows (gone with the connection, or ``drop_table``)."""
        if not name.isidentifier():
            raise AnalysisError(f"not a table name: {name!r}")
        try:
            self.conn.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {select}")
        except duckdb.Error as exc:
            raise AnalysisError(f"query failed: {str(exc).splitlines()[0]}") from exc

    def drop_table(self, name: str) -> None:
        if not name.isidentifier() or name in TABLES:
            raise AnalysisError(f"not a temporary table name: {name!r}")
        self.conn.execute(f"DROP TABLE IF EXISTS {name}")

    def checkpoint(self) -> None:
        self.conn.execute("CHECKPOINT")

    def count(self, table: str) -> int:
        if table not in TABLES:
            raise AnalysisError(f"no table {table!r}")
        return int(self.conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # noqa: S608

    def sort_events(self) -> None:
        """Rewrite events ordered by time (stable on provenance), then checkpoint."""
        self.conn.execute("BEGIN")
        self.conn.execute(
            f"CREATE TABLE events_sorted AS SELECT * FROM events ORDER BY {_EVENT_ORDER}"  # noqa: S608 - a constant
        )
        self.conn.execute("DROP TABLE events")
        self.conn.execute("ALTER TABLE events_sorted RENAME TO events")
        self.conn.execute("COMMIT")
        self.conn.execute("CHECKPOINT")

    def execute(self, sql: str, params: Sequence[Any] = ()) -> tuple[list[str], list[tuple]]:
        try:
            cursor = self.conn.execute(sql, list(params))
        except duckdb.Error as exc:
            raise AnalysisError(f"query failed: {str(exc).splitlines()[0]}") from exc
        if cursor.description is None:
            return [], []
        names = [d[0] for d in cursor.description]
        return names, cursor.fetchall()

    def stream(self, sql: str, batch: int = FETCH_BATCH) -> Iterator[tuple]:
        """The rows of ``sql``, fetched ``batch`` at a time (never all at once)."""
        _, batches = self.batches(sql, batch=batch)
        for rows in batches:
            yield from rows

    def batches(self, sql: str, params: Sequence[Any] = (), *, batch: int = FETCH_BATCH
                ) -> tuple[list[str], Iterator[list[tuple]]]:
        """The column names of ``sql`` and its rows, ``batch`` at a time (never all at once:
        DuckDB streams the result). Refused or failed SQL raises ``QueryRefused`` or
        ``AnalysisError``, at once or while fetching."""
        try:
            cursor = self.conn.execute(sql, list(params))
        except duckdb.Error as exc:
            raise _query_error(exc) from exc
        names = [d[0] for d in cursor.description or ()]

        def fetch() -> Iterator[list[tuple]]:
            if cursor.description is None:
                return
            try:
                while rows := cursor.fetchmany(batch):
                    yield rows
            except duckdb.Error as exc:
                raise _query_error(exc) from exc

        return names, fetch()

    def arrow_batches(self, sql: str, params: Sequence[Any] = (), *, batch: int = FETCH_BATCH
                      ) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
        """The Arrow schema of ``sql`` and its rows as record batches, streamed as ``batches``
        does (a DB-API cursor would copy the whole result first: DuckDB says so)."""
        try:
            relation = self.conn.sql(sql, params=list(params))
            if relation is None:
                raise AnalysisError("query failed: the statement returns no rows")
            reader = relation.to_arrow_reader(batch)
        except duckdb.Error as exc:
            raise _query_error(exc) from exc

        def fetch() -> Iterator[pa.RecordBatch]:
            try:
                yield from reader
            except (duckdb.Error, pa.ArrowException) as exc:
                raise _query_error(exc) from exc

        return reader.schema, fetch()

    def copy_to_parquet(self, sql: str, dest: Path, partition_by: Sequence[str] = ()) -> None:
        options = "FORMAT parquet, COMPRESSION zstd"
        if partition_by:
            options += ", PARTITION_BY (" + ", ".join(partition_by) + "), OVERWRITE_OR_IGNORE"
        try:
            self.conn.execute(f"COPY ({sql}) TO {_sql_string(dest.as_posix())} ({options})")
        except duckdb.Error as exc:
            raise AnalysisError(f"export failed: {str(exc).splitlines()[0]}") from exc


def file_sha256(path: Path) -> str:
    """SHA-256 of the database file (the ledger's entries name the database they leave)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def parquet_source(files: Sequence[Path], *, filename: bool = False) -> str:
    """A FROM item reading Parquet files (``filename``: with the path of each row's file)."""
    listing = "[" + ", ".join(_sql_string(p.as_posix()) for p in files) + "]"
    return f"read_parquet({listing}{', filename = true' if filename else ''})"

