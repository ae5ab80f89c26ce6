"""Rows to Arrow: the only module that imports pyarrow.

Parsers yield frozen ``Event`` objects; workers gather them into column lists and write one
Parquet file per member, which DuckDB loads in bulk (``read_parquet``): never row by row.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from sealtrail.analysis.schema import CONFIG_ENTRY_COLUMNS, EVENT_COLUMNS, INGEST_ERROR_COLUMNS

_ARROW_TYPES = {
    "TIMESTAMPTZ": pa.timestamp("us", tz="UTC"),
    "VARCHAR": pa.string(),
    "INTEGER": pa.int32(),
    "BIGINT": pa.int64(),
    "JSON": pa.string(),
    "BOOLEAN": pa.bool_(),
    "VARCHAR[]": pa.list_(pa.string()),
}


def arrow_schema(columns: Sequence[tuple[str, str, str]]) -> pa.Schema:
    return pa.schema([(name, _ARROW_TYPES[kind]) for name, kind, _ in columns])


EVENTS_SCHEMA = arrow_schema(EVENT_COLUMNS)
ERRORS_SCHEMA = arrow_schema(INGEST_ERROR_COLUMNS)
CONFIG_SCHEMA = arrow_schema(CONFIG_ENTRY_COLUMNS)
# EVTX records staged for SQL (records.EvtxJson): the record id and the evtx crate's JSON text
EVTX_JSON_SCHEMA = pa.schema([("record_id", pa.int64()), ("data", pa.string())])


class ParquetSink:
    """Gathers rows (tuples in schema order) and writes them in row groups.

    Rows are kept as they come and turned into columns once per batch (``zip(*rows)``), which
    costs far less than appending every value to its column list as it arrives.
    """

    def __init__(self, path: Path, schema: pa.Schema, batch_rows: int = 65536, *,
                 dictionary: bool = True) -> None:
        self.path = path
        self.schema = schema
        self.dictionary = dictionary
        self.names = schema.names
        self.batch_rows = batch_rows
        self._pending: list[Sequence[Any]] = []
        self.rows = 0
        self._writer: pq.ParquetWriter | None = None

    def add(self, values: Sequence[Any]) -> None:
        pending = self._pending
        pending.append(values)
        if len(pending) >= self.batch_rows:
            self.flush()

    def flush(self) -> None:
        pending = self._pending
        if not pending:
            return
        columns = zip(*pending, strict=True)  # strict: every row has the schema's width
        batch = pa.record_batch(
            [pa.array(col, type=field.type) for col, field in zip(columns, self.schema,
                                                                   strict=True)],
            schema=self.schema,
        )
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.path, self.schema, compression="zstd",
                                            use_dictionary=self.dictionary)
        self._writer.write_batch(batch)
        self.rows += len(pending)
        self._pending = []

    def close(self) -> int:
        """Write what is left; returns the number of rows (0 means no file was written)."""
        self.flush()
        if self._writer is not None:
            self._writer.close()
        return self.rows


def write_table(path: Path, columns: Sequence[tuple[str, str, str]],
                rows: Iterable[Sequence[Any]]) -> int:
    sink = ParquetSink(path, arrow_schema(columns))
    for row in rows:
        sink.add(row)
    return sink.close()
