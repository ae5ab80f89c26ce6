"""CaseDatabase: streaming reads come in batches and give what one fetch would."""

from __future__ import annotations

from pathlib import Path

import pytest

from sealtrail.analysis.schema import EVENT_COLUMNS
from sealtrail.analysis.store import CaseDatabase
from sealtrail.errors import AnalysisError, QueryRefused


def test_stream_gives_every_row_in_order_across_batches(tmp_path: Path) -> None:
    with CaseDatabase(tmp_path / "db.duckdb") as db:
        sql = "SELECT i, 'x' || i FROM range(10007) t(i) ORDER BY i"
        streamed = list(db.stream(sql, batch=1000))
        assert streamed == db.execute(sql)[1]
        assert len(streamed) == 10007


def test_stream_of_bad_sql_is_one_clear_error(tmp_path: Path) -> None:
    with CaseDatabase(tmp_path / "db.duckdb") as db, \
            pytest.raises(AnalysisError, match="query failed: .*no_such_table"):
        list(db.stream("SELECT * FROM no_such_table"))


def test_sandboxed_database_locks_its_settings_and_removes_its_scratch_folder(
        tmp_path: Path) -> None:
    CaseDatabase(tmp_path / "db.duckdb").close()
    with CaseDatabase(tmp_path / "db.duckdb", sandboxed=True) as db:
        _, rows = db.execute("SELECT current_setting('enable_external_access'), "
                             "current_setting('lock_configuration'), "
                             "current_setting('temp_directory'), current_setting('TimeZone')")
        external, locked, scratch, zone = rows[0]
        assert (external, locked, zone) == (False, True, "UTC")
        assert Path(scratch).is_dir() and (Path(scratch).stat().st_mode & 0o077) == 0
        with pytest.raises(QueryRefused, match="configuration has been locked"):
            db.batches("SET memory_limit = '10GB'")
    assert not Path(scratch).exists()


def test_insert_events_runs_on_one_thread_and_puts_the_setting_back(tmp_path: Path) -> None:
    # one thread keeps the ordered INSERT of a ~1M-record bundle inside the memory limit
    # (docs/benchmarks.md); the connection's other statements keep their threads
    columns = ", ".join(
        "TIMESTAMPTZ '2020-01-01 00:00:00+00' + to_seconds(999 - i) AS ts" if name == "ts"
        else f"'r' || i AS {name}" if name == "record_ref"
        else f"CAST(NULL AS {kind}) AS {name}" for name, kind, _ in EVENT_COLUMNS)
    select = f"SELECT {columns} FROM range(1000) t(i)"  # noqa: S608 - constants
    with CaseDatabase(tmp_path / "db.duckdb") as db:
        threads = db.execute("SELECT current_setting('threads')")[1]
        db.insert_events([], [select], ordered=True)
        assert db.execute("SELECT current_setting('threads')")[1] == threads
        ts = [row[0] for row in db.execute("SELECT ts FROM events ORDER BY rowid")[1]]
        assert len(ts) == 1000 and ts == sorted(ts)
        with pytest.raises(AnalysisError, match="loading events failed"):
            db.insert_events([], ["SELECT * FROM no_such_table"], ordered=True)
        assert db.execute("SELECT current_setting('threads')")[1] == threads
