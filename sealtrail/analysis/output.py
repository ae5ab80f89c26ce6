"""Query results as text, written as they are fetched: aligned table, CSV, JSON, JSON Lines, and
Parquet.

Every writer takes the column names and an iterator of row batches and holds one batch at a
time, so a result of any size costs the same memory. The table is the one format that needs
the whole result to align columns: its widths are taken from the header and the first batch
(``store.FETCH_BATCH`` rows); a longer cell in a later row is written whole and shifts its line.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import IO, Any, TextIO

import pyarrow as pa
import pyarrow.parquet as pq

from sealtrail.custody.bundle_format import utc_text
from sealtrail.terminal import printable

MAX_CELL = 80

Batches = Iterable[Sequence[Sequence[Any]]]


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return utc_text(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def _cell(value: Any) -> str:
    if value is None:
        return ""
    text = printable(_plain(value))
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "\u2026"


def _line(cells: Sequence[str], widths: Sequence[int]) -> str:
    return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip() + "\n"


def write_table(names: Sequence[str], batches: Batches, out: TextIO) -> int:
    """Aligned columns, widths from the header and the first batch; then ``(N rows)``."""
    names = [printable(n) for n in names]
    widths: list[int] | None = None
    count = 0
    for rows in batches:
        cells = [[_cell(v) for v in row] for row in rows]
        if widths is None:
            widths = [max([len(n)] + [len(r[i]) for r in cells]) for i, n in enumerate(names)]
            out.write(_line(names, widths) + "  ".join("-" * w for w in widths) + "\n")
        out.writelines(_line(r, widths) for r in cells)
        count += len(rows)
    if widths is None:
        widths = [len(n) for n in names]
        out.write(_line(names, widths) + "  ".join("-" * w for w in widths) + "\n")
    out.write(f"({count} rows)\n")
    return count


def write_csv(names: Sequence[str], batches: Batches, out: TextIO) -> int:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(names)
    count = 0
    for rows in batches:
        writer.writerows([_plain(v) for v in r] for r in rows)
        count += len(rows)
    return count


def _objects(names: Sequence[str], rows: Sequence[Sequence[Any]]) -> Iterable[dict[str, Any]]:
    return (dict(zip(names, map(_plain, r), strict=True)) for r in rows)


def write_jsonl(names: Sequence[str], batches: Batches, out: TextIO) -> int:
    count = 0
    for rows in batches:
        out.writelines(json.dumps(o, ensure_ascii=False) + "\n" for o in _objects(names, rows))
        count += len(rows)
    return count


def write_json(names: Sequence[str], batches: Batches, out: TextIO) -> int:
    """One JSON array, the same text as ``json.dumps(rows, indent=1)``, written row by row."""
    count = 0
    for rows in batches:
        for o in _objects(names, rows):
            item = json.dumps(o, ensure_ascii=False, indent=1).replace("\n", "\n ")
            out.write(("[\n " if count == 0 else ",\n ") + item)
            count += 1
    out.write("\n]\n" if count else "[]\n")
    return count


TEXT_WRITERS = {"table": write_table, "csv": write_csv, "json": write_json,
                "jsonl": write_jsonl}


def render(fmt: str, names: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """The whole text of rows already in hand (one batch), in a ``TEXT_WRITERS`` format."""
    out = io.StringIO()
    TEXT_WRITERS[fmt](names, [rows], out)
    return out.getvalue()


PARQUET_BATCH = 65_536  # rows of one Arrow batch, and so of one Parquet row group


def write_parquet(schema: pa.Schema, batches: Iterable[pa.RecordBatch], out: IO[bytes]) -> int:
    """A Parquet file (zstd) written as the batches arrive: a row group per batch."""
    count = 0
    with pq.ParquetWriter(out, schema, compression="zstd") as writer:
        for batch in batches:
            writer.write_batch(batch)
            count += batch.num_rows
    return count
