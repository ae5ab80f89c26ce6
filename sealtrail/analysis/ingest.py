"""Ingest: verified bundles -> parsers (in sandboxed workers) -> the DuckDB case database.

Order:
1. Verify the case (``check_case``). Evidence that fails verification is refused, naming the
   first problem, unless ``force``: then it is ingested and the ledger entry says so, with the
   problems.
2. For each sealed bundle not ingested yet: its manifest gives an ``artifacts`` row per item and
   file-system time events (source ``manifest_fs``); each data member goes to a worker, which
   picks a parser and writes events and rejections to Parquet (EVTX records as JSON text).
3. In one transaction per bundle, the Parquet files are loaded in bulk. The staged EVTX records
   are read in SQL (``parsers.evtx_sql``) into a temporary table: its rejections become
   ``ingest_errors`` rows, and the few records it leaves to Python are read here with the
   worker's code. Then one INSERT adds all the bundle's events (that table's, the other
   parsers' and Python's), in time order if ``events`` was empty; configuration settings go to
   ``config_entries``. Every member's account
   (seen = loaded + rejected, a parser failure counting as one rejected item) is stored with
   its artifacts row.
4. Events are re-sorted by time unless they went in in order; the database is checkpointed and
   closed; its SHA-256 is taken.
5. An ``ingested`` ledger entry records the bundles, parsers and versions, row counts, and the
   database digest, so a later reader knows exactly which evidence the database was built from.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sealtrail.analysis.arrow_rows import (
    ERRORS_SCHEMA,
    EVENTS_SCHEMA,
    ParquetSink,
    write_table,
)
from sealtrail.analysis.parsers import evtx_sql
from sealtrail.analysis.parsers.evtx_windows import record_from_json
from sealtrail.analysis.parsers.registry import REGISTRY
from sealtrail.analysis.sandbox import WorkerPool, default_timeout
from sealtrail.analysis.schema import ARTIFACT_COLUMNS, EVENT_COLUMNS, INGEST_ERROR_COLUMNS
from sealtrail.analysis.store import DATABASE_NAME, CaseDatabase, file_sha256, parquet_source
from sealtrail.analysis.worker import MemberResult, MemberTask, item_rows
from sealtrail.custody.bundle_reader import BundleFile
from sealtrail.custody.canonical import json_text
from sealtrail.custody.case import Case
from sealtrail.custody.extract import read_unverified_manifest
from sealtrail.custody.keys import PublicKey, SigningKey
from sealtrail.custody.verify import check_case, sealed_bundles
from sealtrail.errors import AnalysisError, CustodyError
from sealtrail.worker_start import warm_up

FS_TIMES = (
    ("mtime", "file_modified", "modified (mtime)"),
    ("atime", "file_accessed", "accessed (atime)"),
    ("ctime", "file_changed", "inode changed (ctime)"),
    ("birthtime", "file_created", "created (birth time)"),
)
FS_PARSER = ("manifest_fs", "1")
_EVTX_ROWS = "evtx_rows"  # temporary table of a bundle's EVTX records read in SQL


class IngestRefused(AnalysisError):
    """The case failed verification and ``force`` was not given (CLI exit status 1); also
    raised by the other steps that read verified evidence (``action``: scan, analyze)."""

    exit_code = 1

    def __init__(self, problems: Sequence[CustodyError], action: str = "ingest") -> None:
        self.problems = list(problems)
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(
            f"refusing to {action} evidence that fails verification: {problems[0]}{more}; "
            f"run 'sealtrail verify' for the details, or --force to {action} anyway "
            "(recorded in the ledger)"
        )


@dataclass(frozen=True, slots=True)
class MemberAccount:
    bundle_id: str
    member_path: str
    parser: str | None
    seen: int
    loaded: int
    rejected: int
    failure: str | None


@dataclass
class IngestReport:
    bundles: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    accounts: list[MemberAccount] = field(default_factory=list)
    events_added: int = 0
    errors_added: int = 0
    artifacts_added: int = 0
    fs_events: int = 0
    forced: bool = False
    problems: list[str] = field(default_factory=list)
    database: str = ""
    database_sha256: str = ""
    ledger_index: int | None = None
    seconds: float = 0.0

    def to_json_obj(self) -> dict[str, Any]:
        return {
            "bundles": self.bundles,
            "skipped": self.skipped,
            "events_added": self.events_added,
            "errors_added": self.errors_added,
            "artifacts_added": self.artifacts_added,
            "forced": self.forced,
            "problems": self.problems,
            "database": self.database,
            "database_sha256": self.database_sha256,
            "ledger_entry": self.ledger_index,
            "seconds": round(self.seconds, 3),
            "members": [
                {"bundle_id": a.bundle_id, "member_path": a.member_path, "parser": a.parser,
                 "seen": a.seen, "loaded": a.loaded, "rejected": a.rejected,
                 "failure": a.failure}
                for a in self.accounts
            ],
        }


def parse_time(text: str | None) -> datetime | None:
    """Manifest times carry nanoseconds; datetimes keep microseconds."""
    if not text:
        return None
    head, _, frac = text.rstrip("Z").partition(".")
    return datetime.fromisoformat(f"{head}.{(frac + '000000')[:6]}+00:00")


def _fs_rows(bundle_id: str, host: str | None, record: dict[str, Any],
             member_sha256: str | None) -> Iterator[tuple[Any, ...]]:
    source = record.get("source", {})
    path = source.get("path")
    attributes = json_text({k: source.get(k) for k in ("mode", "uid", "gid", "inode", "size",
                                                        "kind") if k in source}
                           | {"outcome": record.get("outcome")})
    ref = f"manifest:{record.get('name') or path}"
    for key, event_type, description in FS_TIMES:
        ts = parse_time(source.get(key))
        if ts is None:
            continue
        row = dict.fromkeys((name for name, _, _ in EVENT_COLUMNS))
        row.update(ts=ts, ts_desc=key, host=host, source=FS_PARSER[0], event_type=event_type,
                   path=path, message=f"{path} {description}", attributes=attributes,
                   bundle_id=bundle_id, member_path=path, member_sha256=member_sha256,
                   record_ref=ref, parser=FS_PARSER[0], parser_version=FS_PARSER[1])
        yield tuple(row.values())


def _artifact_row(bundle_id: str, host: str | None, record: dict[str, Any],
                  account: MemberAccount | None) -> tuple[Any, ...]:
    source = record.get("source", {})
    return (
        bundle_id, host, record.get("name"), source.get("path"), record.get("sha256"),
        record.get("size"), record.get("outcome"), record.get("reason") or None,
        list(record.get("artifacts") or []), source.get("kind"), source.get("mode"),
        source.get("uid"), source.get("gid"), source.get("inode"),
        parse_time(source.get("mtime")), parse_time(source.get("atime")),
        parse_time(source.get("ctime")), parse_time(source.get("birthtime")),
        account.parser if account else None, account.seen if account else None,
        account.loaded if account else None, account.rejected if account else None,
    )


def ingest_case(
    case: Case,
    key: SigningKey,
    *,
    pinned: Sequence[PublicKey] = (),
    force: bool = False,
    workers: int | None = None,
    timeout: Callable[[int], float] = default_timeout,
    progress: Callable[[int, int], None] | None = None,
) -> IngestReport:
    started = time.monotonic()
    ledger = case.writer(key)  # finishes interrupted collections before the case is verified
    warm_up()  # the parser workers' fork server starts while the case is verified
    report = IngestReport()
    verification = check_case(case.root, pinned)
    if not verification.ok:
        if not force:
            raise IngestRefused(verification.problems)
        report.forced = True
        report.problems = [str(p) for p in verification.problems]
    sealed = sealed_bundles(case)
    db_path = case.root / DATABASE_NAME
    scratch = Path(tempfile.mkdtemp(prefix=".ingest-", dir=case.root))
    try:
        with WorkerPool(workers, timeout) as pool, CaseDatabase(db_path) as db:
            done = db.ingested_bundles()
            in_order = db.count("events") == 0  # true while events holds rows in time order
            for bundle_id, (_index, fields) in sealed.items():
                if bundle_id in done:
                    report.skipped.append(bundle_id)
                    continue
                manifest_sha256 = (fields.get("subject") or {}).get("manifest_sha256")
                in_order = _ingest_bundle(case, db, pool, bundle_id, manifest_sha256, scratch,
                                          report, progress, ordered=in_order)
            if report.bundles:
                if in_order:
                    db.checkpoint()
                else:
                    db.sort_events()
        report.database = str(db_path)
        report.database_sha256 = file_sha256(db_path)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    report.seconds = time.monotonic() - started
    if report.bundles:
        parsers = sorted({(a.parser, REGISTRY[a.parser].VERSION) for a in report.accounts
                          if a.parser in REGISTRY})
        entry = ledger.append(
            key,
            "ingested",
            role="analyst",
            subject={"bundle_ids": report.bundles},
            details={
                "parsers": {name: version for name, version in parsers}
                | {FS_PARSER[0]: FS_PARSER[1]},
                "rows": {"events": report.events_added, "ingest_errors": report.errors_added,
                         "artifacts": report.artifacts_added},
                "database": {"file": DATABASE_NAME, "sha256": report.database_sha256},
                "forced": report.forced,
                "verification_problems": report.problems[:50],
            },
        )
        report.ledger_index = entry.index
    return report


def _ingest_bundle(case: Case, db: CaseDatabase, pool: WorkerPool, bundle_id: str,
                   manifest_sha256: str | None, scratch: Path, report: IngestReport,
                   progress: Callable[[int, int], None] | None, *, ordered: bool) -> bool:
    """Load one bundle; returns True if ``events`` is still in time order afterwards
    (``ordered``: it was before, and this bundle's rows may go in in order)."""
    bundle_path = case.bundles_dir / f"{bundle_id}.stb"
    with BundleFile(bundle_path) as bundle:
        manifest = read_unverified_manifest(bundle)
        present = {m.name for m in bundle.members}
    host = manifest.collection.host
    members = [m for m in manifest.members if m.get("name") in present]
    out = scratch / bundle_id
    out.mkdir()
    tasks = [
        MemberTask(i, str(bundle_path), bundle_id, m["name"], m["sha256"],
                   m["source"].get("path", m["name"]), m["size"], m["source"].get("mtime"),
                   host, tuple(m.get("artifacts") or ()), str(out))
        for i, m in enumerate(members)
    ]
    results: dict[int, MemberResult] = {}
    event_files: list[Path] = []
    error_files: list[Path] = []
    config_files: list[Path] = []
    failures: list[tuple[Any, ...]] = []
    for n, result in enumerate(pool.run(tasks), 1):
        task = tasks[result.task_id]
        results[result.task_id] = result
        if result.events_file:
            event_files.append(Path(result.events_file))
        if result.errors_file:
            error_files.append(Path(result.errors_file))
        if result.config_file:
            config_files.append(Path(result.config_file))
        if result.failure:
            failures.append((bundle_id, task.source_path, task.member_sha256, "member",
                             f"parser failed: {result.failure}", result.parser))
        if progress:
            progress(n, len(tasks))
    fs_rows = [row for m in members for row in _fs_rows(bundle_id, host, m, m["sha256"])]
    fs_rows += [row for e in manifest.entries for row in
                _fs_rows(bundle_id, host, e, None)]
    if fs_rows:
        fs_file = out / "manifest_fs.parquet"
        write_table(fs_file, EVENT_COLUMNS, fs_rows)
        event_files.append(fs_file)
    if failures:
        fail_file = out / "failures.parquet"
        write_table(fail_file, INGEST_ERROR_COLUMNS, failures)
        error_files.append(fail_file)
    staged = {i: r for i, r in sorted(results.items()) if r.staged_file}
    # One transaction per bundle: a crash mid-load leaves the bundle wholly absent, so the next
    # ingest loads it again instead of adding its rows twice.
    with db.transaction():
        before = db.count("events"), db.count("ingest_errors")
        selects = []
        settled = _Settled()
        if staged:
            members_file = out / "evtx_members.parquet"
            write_table(members_file, evtx_sql.MEMBER_COLUMNS, [
                (Path(r.staged_file).as_posix(), i, tasks[i].host, r.parser,
                 tasks[i].bundle_id, tasks[i].source_path, tasks[i].member_sha256,
                 r.parser_version) for i, r in staged.items()])
            db.create_temp_table(_EVTX_ROWS, evtx_sql.staged_sql(
                parquet_source([Path(r.staged_file) for r in staged.values()], filename=True),
                parquet_source([members_file])))
            settled = _settle_staged(db, tasks, staged, out)
            selects.append(evtx_sql.events_sql(_EVTX_ROWS))
        if settled.events_file:
            event_files.append(settled.events_file)
        if settled.errors_file:
            error_files.append(settled.errors_file)
        db.insert_events(event_files, selects, ordered=ordered)
        if staged:
            db.drop_table(_EVTX_ROWS)
        db.load_parquet("ingest_errors", error_files)
        db.load_parquet("config_entries", config_files)
        accounts = {t.task_id: _account(t, results[t.task_id], settled.counts.get(t.task_id))
                    for t in tasks if t.task_id in results}
        by_name = {t.member_name: accounts.get(t.task_id) for t in tasks}
        artifact_rows = [_artifact_row(bundle_id, host, m, by_name.get(m["name"]))
                         for m in members]
        artifact_rows += [_artifact_row(bundle_id, host, e, None)
                          for e in manifest.entries]
        art_file = out / "artifacts.parquet"
        write_table(art_file, ARTIFACT_COLUMNS, artifact_rows)
        artifacts = db.load_parquet("artifacts", [art_file])
        events = db.count("events") - before[0]
        errors = db.count("ingest_errors") - before[1]
        db.execute(
            "INSERT INTO ingests VALUES (?, ?, now(), ?, ?, ?)",
            [bundle_id, manifest_sha256, report.forced, events, errors],
        )
    report.bundles.append(bundle_id)
    report.events_added += events
    report.errors_added += errors
    report.artifacts_added += artifacts
    report.fs_events += len(fs_rows)
    report.accounts.extend(accounts[i] for i in sorted(accounts))
    return ordered


@dataclass
class _Settled:
    """What became of a bundle's staged EVTX records beyond the SQL's own events rows."""

    # task id -> (rejected by the SQL, loaded by Python, rejected by Python)
    counts: dict[int, tuple[int, int, int]] = field(default_factory=dict)
    events_file: Path | None = None  # Python's events
    errors_file: Path | None = None  # Python's rejections


def _settle_staged(db: CaseDatabase, tasks: Sequence[MemberTask],
                   staged: dict[int, MemberResult], out: Path) -> _Settled:
    """What the EVTX SQL (its rows in ``_EVTX_ROWS``) did not load: its rejections go to
    ``ingest_errors``; the few records it leaves to Python are read here as the worker would
    have read them, into Parquet files loaded with the bundle's other rows."""
    settled = _Settled()
    counts = settled.counts
    rejections = evtx_sql.rejections_sql(_EVTX_ROWS)
    db.execute(f"INSERT INTO ingest_errors {rejections}")  # noqa: S608 - SQL from evtx_sql
    for member, outcome, n in db.execute(evtx_sql.counts_sql(_EVTX_ROWS))[1]:
        if outcome == evtx_sql.REJECTED:
            counts[member] = (n, 0, 0)
    # Streamed, in batches, into Parquet: a crafted log can send every record here, and its
    # JSON texts must never be held in memory all at once.
    events = ParquetSink(out / "evtx_python_events.parquet", EVENTS_SCHEMA)
    errors = ParquetSink(out / "evtx_python_errors.parquet", ERRORS_SCHEMA)
    for member, record_id, data in db.stream(evtx_sql.for_python_sql(_EVTX_ROWS)):
        result = staged[member]
        event_row, error_row = item_rows(record_from_json(record_id, data), tasks[member],
                                         result.parser or "", result.parser_version or "")
        sql_rejected, loaded, rejected = counts.get(member, (0, 0, 0))
        if event_row is not None:
            events.add(event_row)
            counts[member] = sql_rejected, loaded + 1, rejected
        else:
            errors.add(error_row)
            counts[member] = sql_rejected, loaded, rejected + 1
    if events.close():
        settled.events_file = events.path
    if errors.close():
        settled.errors_file = errors.path
    return settled


def _account(task: MemberTask, result: MemberResult,
             settled: tuple[int, int, int] | None = None) -> MemberAccount:
    """seen = loaded + rejected; staged EVTX records count as loaded unless SQL rejected them
    or Python (for the few SQL leaves to it) did."""
    seen, loaded, rejected = result.seen, result.loaded, result.rejected
    if result.staged:
        sql_rejected, python_loaded, python_rejected = settled or (0, 0, 0)
        python = python_loaded + python_rejected
        loaded += result.staged - sql_rejected - python + python_loaded
        rejected += sql_rejected + python_rejected
    if result.failure:  # the failure itself is one rejected item, so nothing vanishes
        seen += 1
        rejected += 1
    return MemberAccount(task.bundle_id, task.source_path, result.parser, seen, loaded,
                         rejected, result.failure)

