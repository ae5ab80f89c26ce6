"""``sealtrail ingest``, ``query``, ``timeline``, ``export``: the case database."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import click

from sealtrail.analysis.exporters import FORMATS, export
from sealtrail.analysis.ingest import ingest_case
from sealtrail.analysis.output import PARQUET_BATCH, TEXT_WRITERS, write_parquet
from sealtrail.analysis.store import DATABASE_NAME, CaseDatabase
from sealtrail.analysis.timeline import SUMMARY_COLUMNS, TimelineFilter, parse_when
from sealtrail.analysis.yara_scan import scan_case
from sealtrail.cli.options import case_argument, key_option, load_signing_key, load_trusted
from sealtrail.cli.progress import ProgressLine
from sealtrail.custody.case import Case
from sealtrail.errors import UsageError
from sealtrail.terminal import printable

OUTPUT_FORMATS = ("table", "csv", "json", "jsonl", "parquet")


@click.command("ingest")
@case_argument
@key_option()
@click.option("--trust", "trust_paths", multiple=True, type=click.Path(path_type=Path),
              help="Public key to pin when verifying before the ingest (repeatable).")
@click.option("--force", is_flag=True,
              help="Ingest even if verification fails (the ledger records it).")
@click.option("--workers", type=click.IntRange(1, 64), help="Parser processes (default: CPUs).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def ingest(case_dir: Path, key_path: Path, trust_paths: tuple[Path, ...], force: bool,
           workers: int | None, as_json: bool) -> None:
    """Verify the case, then parse every bundle into CASE/analysis.duckdb.

    Bundles already ingested are skipped. The ingest is a signed ledger entry.

    Example: sealtrail ingest case1 --key alice.key --trust alice.pub
    """
    case = Case.load(case_dir)
    progress = ProgressLine(0, 0)
    report = ingest_case(
        case, load_signing_key(key_path), pinned=load_trusted(trust_paths), force=force,
        workers=workers,
        progress=(lambda done, total: progress.members(done, total)) if progress.enabled
        else None,
    )
    progress.done()
    if as_json:
        click.echo(json.dumps(report.to_json_obj(), sort_keys=True))
        return
    if report.forced:
        click.echo(f"warning: ingested DESPITE {len(report.problems)} verification problems "
                   "(recorded in the ledger)", err=True)
    if not report.bundles:
        click.echo(f"nothing to ingest: {len(report.skipped)} bundles already in the database")
        return
    click.echo(f"ingested {len(report.bundles)} bundles into {printable(report.database)} "
               f"in {report.seconds:.2f} s (ledger entry {report.ledger_index})")
    click.echo(f"{'member':<48} {'parser':<14} {'seen':>9} {'loaded':>9} {'rejected':>9}")
    for a in report.accounts:
        if a.parser or a.failure:
            path = printable(a.member_path)
            name = path if len(path) <= 48 else "\u2026" + path[-47:]
            click.echo(f"{name:<48} {a.parser or '-':<14} {a.seen:>9} {a.loaded:>9} "
                       f"{a.rejected:>9}" + (f"  {printable(a.failure)}" if a.failure else ""))
    unparsed = sum(1 for a in report.accounts if not a.parser and not a.failure)
    click.echo(f"events +{report.events_added:,} (file-system times {report.fs_events:,}), "
               f"ingest_errors +{report.errors_added:,}, artifacts +{report.artifacts_added:,}; "
               f"{unparsed} members with no parser (file times only)")
    click.echo(f"database sha256 {report.database_sha256}")


def _database(case_dir: Path, *, sandboxed: bool = False) -> CaseDatabase:
    Case.load(case_dir)
    return CaseDatabase(case_dir / DATABASE_NAME, read_only=True, sandboxed=sandboxed)


def refuse_existing(out: Path) -> None:
    """Output files are created, never overwritten (a symlink counts as existing)."""
    if out.exists() or out.is_symlink():
        raise UsageError(f"{out} already exists")


@contextmanager
def _created(out: Path, *, binary: bool = False) -> Iterator[IO]:
    """``out`` opened as a new file (``x`` mode: refused if it appeared meanwhile too), and
    removed again if writing it fails, so a refused or failed query leaves nothing behind."""
    try:
        handle = (open(out, "xb") if binary
                  else open(out, "x", encoding="utf-8", newline=""))
    except FileExistsError:
        raise UsageError(f"{out} already exists") from None
    try:
        with handle:
            yield handle
    except BaseException:
        out.unlink(missing_ok=True)
        raise


def _emit(db: CaseDatabase, sql: str, params: list, fmt: str, out: Path | None) -> None:
    """Run ``sql`` and write its rows batch by batch, to ``out`` or standard output."""
    if out is not None:
        refuse_existing(out)
    if fmt == "parquet":
        if out is None:
            raise UsageError("--format parquet needs --out FILE")
        schema, batches = db.arrow_batches(sql, params, batch=PARQUET_BATCH)
        with _created(out, binary=True) as handle:
            rows = write_parquet(schema, batches, handle)
    else:
        names, batches = db.batches(sql, params)
        if out is None:
            TEXT_WRITERS[fmt](names, batches, sys.stdout)
            return
        with _created(out) as handle:
            rows = TEXT_WRITERS[fmt](names, batches, handle)
    click.echo(f"wrote {rows} rows to {printable(out)}", err=True)


format_option = click.option("--format", "fmt", type=click.Choice(OUTPUT_FORMATS),
                             default="table", show_default=True, help="Output format.")
out_option = click.option("--out", "out", type=click.Path(path_type=Path),
                          help="Write to this file instead of standard output.")


@click.command("query")
@case_argument
@click.argument("sql")
@format_option
@out_option
def query(case_dir: Path, sql: str, fmt: str, out: Path | None) -> None:
    """Run read-only SQL on the case database (tables: events, artifacts, ingest_errors,
    yara_matches, ingests; after analyze: findings, finding_evidence, rule_outcomes,
    analysis_runs; see docs/schema.md). The SQL reads nothing else: no host file,
    extension or setting (refused, exit 2). --out creates a new file.

    Example: sealtrail query case1 "SELECT src_ip, count(*) FROM events
    WHERE event_type='logon_failure' GROUP BY 1 ORDER BY 2 DESC"
    """
    with _database(case_dir, sandboxed=True) as db:
        _emit(db, sql, [], fmt, out)


@click.command("timeline")
@case_argument
@click.option("--start", help="From this time (ISO 8601; no zone means UTC).")
@click.option("--end", help="Up to (not including) this time.")
@click.option("--host", "hosts", multiple=True, help="Only this host (repeatable).")
@click.option("--user", "users", multiple=True, help="Only events about this account.")
@click.option("--ip", "ips", multiple=True, help="Only events with this source/destination.")
@click.option("--type", "types", multiple=True, help="Only this event type (repeatable).")
@click.option("--limit", type=click.IntRange(1), help="At most this many rows.")
@click.option("--all-columns", is_flag=True, help="Every column, not the summary.")
@format_option
@out_option
def timeline(case_dir: Path, start: str | None, end: str | None, hosts: tuple[str, ...],
             users: tuple[str, ...], ips: tuple[str, ...], types: tuple[str, ...],
             limit: int | None, all_columns: bool, fmt: str, out: Path | None) -> None:
    """The merged timeline, oldest first.

    Example: sealtrail timeline case1 --start 2026-03-10T01:00Z --ip 203.0.113.45
    """
    flt = TimelineFilter(parse_when(start) if start else None, parse_when(end) if end else None,
                         hosts, users, ips, types, limit)
    sql, params = flt.sql(None if all_columns or fmt != "table" else SUMMARY_COLUMNS)
    with _database(case_dir, sandboxed=True) as db:
        _emit(db, sql, params, fmt, out)


@click.command("export")
@case_argument
@click.option("--format", "fmt", type=click.Choice(FORMATS), required=True,
              help="timesketch (JSONL), l2tcsv (plaso), bodyfile (TSK), parquet (folder).")
@click.option("--out", "out", type=click.Path(path_type=Path), required=True,
              help="File to create (a folder for parquet).")
def export_command(case_dir: Path, fmt: str, out: Path) -> None:
    """Export the timeline for Timesketch, plaso tools, mactime, or Spark/Trino.

    Example: sealtrail export case1 --format parquet --out /data/case1-parquet
    """
    if fmt != "parquet":
        refuse_existing(out)
    with _database(case_dir) as db:
        rows = export(db, fmt, out)
    click.echo(f"exported {rows:,} rows to {printable(out)} ({fmt})")


@click.command("scan")
@case_argument
@click.option("--rules", "rules_path", required=True, type=click.Path(path_type=Path),
              help="A YARA rules file, or a folder of .yar/.yara files.")
@key_option()
@click.option("--trust", "trust_paths", multiple=True, type=click.Path(path_type=Path),
              help="Public key to pin when verifying before the scan (repeatable).")
@click.option("--force", is_flag=True, help="Scan even if verification fails (recorded).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def scan(case_dir: Path, rules_path: Path, key_path: Path, trust_paths: tuple[Path, ...],
         force: bool, as_json: bool) -> None:
    """Run YARA rules over every bundle member (and decompressed content of .gz/.bz2/.xz).

    Matches go to the yara_matches table and to the timeline; the scan is a ledger entry.

    Example: sealtrail scan case1 --rules rules/ --key alice.key
    """
    case = Case.load(case_dir)
    progress = ProgressLine(0, 0)
    report = scan_case(case, load_signing_key(key_path), rules_path,
                       pinned=tuple(load_trusted(trust_paths)), force=force,
                       progress=progress.members if progress.enabled else None)
    progress.done()
    summary = {"bundles": report.bundles, "skipped": report.skipped, "members": report.members,
               "matches": report.matches, "errors": report.errors,
               "rules_sha256": report.rules.sha256 if report.rules else None,
               "ledger_entry": report.ledger_index}
    if as_json:
        click.echo(json.dumps(summary, sort_keys=True))
        return
    if not report.bundles:
        click.echo(f"nothing to scan: {len(report.skipped)} bundles already scanned with these "
                   "rules")
        return
    click.echo(f"scanned {report.members} members of {len(report.bundles)} bundles: "
               f"{report.matches} matches, {report.errors} errors "
               f"(ledger entry {report.ledger_index})")
