"""Parsing one bundle member, inside a worker process (see ``sandbox``).

The worker opens the bundle itself, reads the member through a read-only window, lets the
chosen parser yield events and rejections, and writes them to Parquet files that the main
process loads into DuckDB. It returns the account: seen = loaded + rejected + staged.

A parser with ``parse_deferred`` (EVTX) may yield ``EvtxJson`` records instead: their
(record id, JSON text) go to a third Parquet file, unread, and the main process reads them in
SQL, where each becomes a loaded or a rejected record (``staged`` counts them until then).
A configuration parser yields ``ConfigEntry`` records: they go to a ``config_entries`` Parquet
file and count as loaded.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sealtrail.analysis.arrow_rows import (
    CONFIG_SCHEMA,
    ERRORS_SCHEMA,
    EVENTS_SCHEMA,
    EVTX_JSON_SCHEMA,
    ParquetSink,
)
from sealtrail.analysis.parsers.base import MemberContext
from sealtrail.analysis.parsers.registry import choose_parser
from sealtrail.analysis.records import EVENT_TYPES, ConfigEntry, Event, EvtxJson, Rejection
from sealtrail.custody.bundle_reader import BundleFile
from sealtrail.custody.canonical import json_text

READ_BUFFER = 1 << 20
INTEGER_RANGE = (-(2**31), 2**31 - 1)  # the events table's INTEGER columns
_INTEGER_FIELDS = tuple((name, Event._fields.index(name))
                        for name in ("event_id", "src_port", "logon_type"))


@dataclass(frozen=True, slots=True)
class MemberTask:
    task_id: int
    bundle_path: str
    bundle_id: str
    member_name: str
    member_sha256: str
    source_path: str
    size: int
    mtime: str | None
    host: str | None
    artifacts: tuple[str, ...]
    out_dir: str


@dataclass(frozen=True, slots=True)
class MemberResult:
    task_id: int
    parser: str | None
    parser_version: str | None
    seen: int
    loaded: int
    rejected: int
    events_file: str | None
    errors_file: str | None
    failure: str | None
    seconds: float
    staged: int = 0  # EvtxJson records written to staged_file, neither loaded nor rejected yet
    staged_file: str | None = None
    config_file: str | None = None  # ConfigEntry rows (config_entries), counted as loaded


def _context(task: MemberTask, bundle: BundleFile) -> MemberContext:
    member = bundle.member(task.member_name)
    if member is None:
        raise LookupError(f"member {task.member_name} is not in {task.bundle_path}")

    def opener() -> io.BufferedReader:
        return io.BufferedReader(bundle.open_member(member), READ_BUFFER)

    mtime = datetime.fromisoformat(task.mtime.replace("Z", "+00:00")) if task.mtime else None
    return MemberContext(
        bundle_id=task.bundle_id, member_name=task.member_name,
        member_sha256=task.member_sha256, source_path=task.source_path, size=task.size,
        mtime=mtime, host=task.host, opener=opener, artifacts=task.artifacts,
    )


def _event_row(event: Event, task: MemberTask, name: str, version: str) -> tuple[Any, ...]:
    (ts, ts_desc, event_type, message, record_ref, event_id, user, src_ip, src_port, dst_ip,
     process, command_line, path, channel, computer, logon_type, subject_user, subject_sid,
     target_user, target_sid, parent_process, service_name, service_path, task_name,
     script_block, attributes, parser) = event  # one unpacking, not 27 attribute lookups
    return (
        ts, ts_desc, task.host, name, event_type, event_id, user, src_ip, src_port, dst_ip,
        process, command_line, path, message, channel, computer, logon_type, subject_user,
        subject_sid, target_user, target_sid, parent_process, service_name, service_path,
        task_name, script_block, json_text(attributes) if attributes else None, task.bundle_id,
        task.source_path, task.member_sha256, record_ref, parser or name, version,
    )


def _invalid(event: Event) -> str | None:
    if event.ts.tzinfo is None or event.ts.utcoffset() is None:
        return "parser produced a naive timestamp"
    if event.event_type not in EVENT_TYPES:
        return f"parser produced an unknown event type {event.event_type!r}"
    low, high = INTEGER_RANGE
    for name, index in _INTEGER_FIELDS:  # a value Arrow cannot write must not fail the member
        value = event[index]
        if value is not None and not low <= value <= high:
            return f"{name} {value} is outside the range of the events column (INTEGER)"
    return None


def _config_row(entry: ConfigEntry, task: MemberTask, name: str,
                version: str) -> tuple[Any, ...]:
    return (task.bundle_id, task.host, task.source_path, task.member_sha256, entry.line_no,
            entry.file_kind, entry.key, entry.value, entry.raw, name, version)


def item_rows(item: Event | Rejection, task: MemberTask, name: str,
              version: str) -> tuple[tuple[Any, ...] | None, tuple[Any, ...] | None]:
    """(events row, None) for a valid Event, else (None, ingest_errors row)."""
    if isinstance(item, Event):
        problem = _invalid(item)
        if problem is None:
            return _event_row(item, task, name, version), None
        item = Rejection(item.record_ref, problem)
    return None, (task.bundle_id, task.source_path, task.member_sha256, item.record_ref,
                  item.reason, name)


def parse_member(task: MemberTask) -> MemberResult:
    """Parse one member; every exception becomes a failure in the result, never a crash."""
    started = time.monotonic()
    out = Path(task.out_dir)
    events = ParquetSink(out / f"{task.task_id}.events.parquet", EVENTS_SCHEMA)
    errors = ParquetSink(out / f"{task.task_id}.errors.parquet", ERRORS_SCHEMA)
    # JSON texts: no dictionary (they are all different), zstd (they compress ~10x)
    staged = ParquetSink(out / f"{task.task_id}.evtx-json.parquet", EVTX_JSON_SCHEMA,
                         dictionary=False)
    config = ParquetSink(out / f"{task.task_id}.config.parquet", CONFIG_SCHEMA)
    name = version = None
    seen = loaded = rejected = 0
    failure = None
    try:
        with BundleFile(task.bundle_path) as bundle:
            member = _context(task, bundle)
            parser = choose_parser(member, member.head())
            if parser is not None:
                name, version = parser.NAME, parser.VERSION
                deferred = getattr(parser, "parse_deferred", None)
                for item in (deferred or parser.parse)(member):
                    seen += 1
                    if type(item) is EvtxJson:
                        staged.add(item)
                        continue
                    if type(item) is ConfigEntry:
                        config.add(_config_row(item, task, name, version))
                        loaded += 1
                        continue
                    event_row, error_row = item_rows(item, task, name, version)
                    if event_row is not None:
                        events.add(event_row)
                        loaded += 1
                    else:
                        errors.add(error_row)
                        rejected += 1
    except Exception as exc:  # noqa: BLE001 - a parser failure is recorded, not raised
        failure = f"{type(exc).__name__}: {exc}"
    events_rows = events.close()
    errors_rows = errors.close()
    staged_rows = staged.close()
    config_rows = config.close()
    return MemberResult(
        task.task_id, name, version, seen, loaded, rejected,
        events.path.as_posix() if events_rows else None,
        errors.path.as_posix() if errors_rows else None,
        failure, time.monotonic() - started,
        staged_rows, staged.path.as_posix() if staged_rows else None,
        config.path.as_posix() if config_rows else None,
    )
