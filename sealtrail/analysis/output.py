"""Query results as text: aligned table, CSV, JSON, JSON Lines."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sealtrail.analysis.store import rows_as_csv
from sealtrail.custody.bundle_format import utc_text
from sealtrail.terminal import printable

MAX_CELL = 80


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


def as_table(names: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    names = [printable(n) for n in names]
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max([len(n)] + [len(r[i]) for r in cells]) for i, n in enumerate(names)]
    lines = ["  ".join(n.ljust(w) for n, w in zip(names, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
              for r in cells]
    lines.append(f"({len(rows)} rows)")
    return "\n".join(lines) + "\n"


def as_jsonl(names: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    return "".join(json.dumps(dict(zip(names, map(_plain, r), strict=True)),
                              ensure_ascii=False) + "\n" for r in rows)


def as_json(names: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    return json.dumps([dict(zip(names, map(_plain, r), strict=True)) for r in rows],
                      ensure_ascii=False, indent=1) + "\n"


def render(fmt: str, names: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    return {"table": as_table, "csv": rows_as_csv, "json": as_json, "jsonl": as_jsonl}[fmt](
        names, [tuple(_plain(v) if fmt == "csv" else v for v in r) for r in rows])
