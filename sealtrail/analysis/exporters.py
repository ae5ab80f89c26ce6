"""Exports of the timeline for other tools. Rows are streamed in batches: memory stays flat.

- ``timesketch``: JSON Lines with ``message``, ``datetime`` (ISO 8601), ``timestamp``
  (microseconds since the epoch), ``timestamp_desc``, and every other column as a field.
- ``l2tcsv``: plaso's L2T CSV, its 17 columns
  (date,time,timezone,MACB,source,sourcetype,type,user,host,short,desc,version,filename,
  inode,notes,format,extra), times in UTC.
- ``bodyfile``: TSK 3.x bodyfile lines from the collected items' file-system metadata
  (``MD5|name|inode|mode|UID|GID|size|atime|mtime|ctime|crtime``; MD5 is written as 0, the
  SHA-256 is in the case database).
- ``parquet``: the events table as Parquet, partitioned by ``host`` and ``day`` (Hive style,
  ``host=web01/day=2026-03-10/...``), for Spark, Trino or DuckDB on a cluster.
"""

from __future__ import annotations

import csv
import json
import stat
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from sealtrail.analysis.store import CaseDatabase
from sealtrail.custody.bundle_format import utc_text
from sealtrail.errors import UsageError

FORMATS = ("timesketch", "l2tcsv", "bodyfile", "parquet")
BATCH = 50_000
L2T_COLUMNS = ("date", "time", "timezone", "MACB", "source", "sourcetype", "type", "user",
               "host", "short", "desc", "version", "filename", "inode", "notes", "format",
               "extra")
_MACB = {"mtime": "M...", "atime": ".A..", "ctime": "..C.", "birthtime": "...B"}
_L2T_SOURCE = {"winevtx": "EVT", "manifest_fs": "FILE", "web_access": "WEBHIST",
               "bash_history": "HIST", "yara": "YARA"}


def _batches(db: CaseDatabase, sql: str) -> Iterator[tuple[list[str], list[tuple]]]:
    cursor = db.conn.execute(sql)
    names = [d[0] for d in cursor.description]
    while rows := cursor.fetchmany(BATCH):
        yield names, rows


def _iso(ts: datetime) -> str:
    return utc_text(ts)


def _jsonable(value: Any) -> Any:
    return _iso(value) if isinstance(value, datetime) else value


def write_timesketch(db: CaseDatabase, out: TextIO) -> int:
    count = 0
    for names, rows in _batches(db, "SELECT * FROM events ORDER BY ts"):
        for row in rows:
            record = dict(zip(names, row, strict=True))
            ts: datetime = record.pop("ts")
            attributes = record.pop("attributes")
            doc = {k: _jsonable(v) for k, v in record.items() if v is not None}
            doc["message"] = record.get("message") or record.get("event_type") or ""
            doc["datetime"] = _iso(ts)
            doc["timestamp"] = int(ts.timestamp() * 1_000_000)
            doc["timestamp_desc"] = record.get("ts_desc") or "event time"
            doc.pop("ts_desc", None)
            if attributes:
                doc["attributes"] = json.loads(attributes)
            out.write(json.dumps(doc, ensure_ascii=False, sort_keys=True) + "\n")
            count += 1
    return count


def write_l2tcsv(db: CaseDatabase, out: TextIO) -> int:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(L2T_COLUMNS)
    count = 0
    sql = ("SELECT ts, ts_desc, source, event_type, \"user\", host, message, member_path, "
           "record_ref, bundle_id, parser, src_ip, member_sha256 FROM events ORDER BY ts")
    for _names, rows in _batches(db, sql):
        for (ts, desc, source, etype, user, host, message, path, ref, bundle, parser, ip,
             sha) in rows:
            extra = f"event_type: {etype} src_ip: {ip or '-'} sha256: {sha or '-'}"
            writer.writerow((
                ts.strftime("%m/%d/%Y"), ts.strftime("%H:%M:%S"), "UTC",
                _MACB.get(desc, "...."), _L2T_SOURCE.get(source, "LOG"), parser or source,
                desc, user or "-", host or "-", (message or "")[:80], message or "", "2",
                path or "-", "-", f"bundle {bundle} {ref}", source, extra,
            ))
            count += 1
    return count


def _epoch(ts: datetime | None) -> int:
    return int(ts.timestamp()) if ts else 0


def write_bodyfile(db: CaseDatabase, out: TextIO) -> int:
    count = 0
    sql = ("SELECT member_path, inode, mode, uid, gid, size, atime, mtime, ctime, birthtime "
           "FROM artifacts WHERE mode IS NOT NULL ORDER BY member_path")
    for _names, rows in _batches(db, sql):
        for path, inode, mode, uid, gid, size, atime, mtime, ctime, birth in rows:
            mode_text = stat.filemode(int(mode, 8)) if mode else "----------"
            out.write(f"0|{path}|{inode or 0}|{mode_text}|{uid or 0}|{gid or 0}|{size or 0}|"
                      f"{_epoch(atime)}|{_epoch(mtime)}|{_epoch(ctime)}|{_epoch(birth)}\n")
            count += 1
    return count


def export(db: CaseDatabase, fmt: str, dest: Path) -> int:
    """Write the export; returns the number of rows (events, or file records for bodyfile)."""
    if fmt == "parquet":
        if dest.exists() and any(dest.iterdir()):
            raise UsageError(f"{dest} is not empty; choose a new folder for the Parquet export")
        dest.mkdir(parents=True, exist_ok=True)
        db.copy_to_parquet("SELECT *, strftime(ts, '%Y-%m-%d') AS day FROM events",
                           dest, partition_by=("host", "day"))
        return db.count("events")
    writers = {"timesketch": write_timesketch, "l2tcsv": write_l2tcsv,
               "bodyfile": write_bodyfile}
    if fmt not in writers:
        raise UsageError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
    with open(dest, "x", encoding="utf-8", newline="") as out:
        return writers[fmt](db, out)
