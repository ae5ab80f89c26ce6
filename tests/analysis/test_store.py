"""CaseDatabase: streaming reads come in batches and give what one fetch would."""

from __future__ import annotations

from pathlib import Path

import pytest

from sealtrail.analysis.store import CaseDatabase
from sealtrail.errors import AnalysisError


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
