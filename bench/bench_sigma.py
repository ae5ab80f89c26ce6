"""Sigma rules over an EVTX case: conversion rate, failures by reason, run rate with routing.

What is measured, in one process:

- conversion: ``sigma_source`` over SigmaHQ's ``rules/`` (default set: status test or stable,
  level medium or higher); rules/s = (converted + failed) / seconds; failures grouped by
  reason (first 60 characters).
- data: the EVTX benchmark set of bench_ingest_evtx.py (``--size`` MB of clean upstream logs),
  collected and ingested into a case (not timed); ``event_uid`` is added if the schema does not
  have it yet (the engine's column, pending on this branch).
- run: the views created (``--materialise``: the per-logsource views as temp tables, the
  Sigma columns of each logsource's rows computed once; that time is counted), then every
  converted rule whose ``needs`` (channel, event id) pairs or
  ``sources`` have rows in the case is run (the others are skipped: not applicable, as the
  engine does); events/s = events in the case / seconds for all rules. Reference in the same
  run: one full scan ``SELECT count(*) FROM events`` and one ``count(*)`` over the view's
  ``attributes`` JSON (the per-row cost a rule pays at least once).
- peak RSS of the process (``getrusage``), MB = 10^6 bytes.

Usage::

    python bench/bench_sigma.py --size 50
"""

from __future__ import annotations

import argparse
import hashlib
import resource
import shutil
import sys
import time
from collections import Counter
from pathlib import Path

from bench_ingest_evtx import OUT, UPSTREAM, collect_case, ensure_dataset, machine_line

SIGMA = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "sigma" / "rules"
LEVELS = {"medium", "high", "critical"}
STATUSES = {"test", "stable"}


def convert(rules: Path):
    from sealtrail.findings.sigma import sigma_source

    started = time.perf_counter()
    source = sigma_source([rules], levels=LEVELS, statuses=STATUSES)
    seconds = time.perf_counter() - started
    total = len(source.rules) + len(source.failures)
    print(f"conversion: {len(source.rules)} converted, {len(source.failures)} failed, "
          f"{seconds:.1f} s, {total / seconds:.0f} rules/s")
    for reason, n in Counter(f.reason[:60] for f in source.failures).most_common(12):
        print(f"  {n:5d}  {reason}")
    return source


def ingest(size_mb: int) -> Path:
    """The ingested case of the ``size_mb`` data set, kept in ``bench/out/sigma/<size>MB/``
    and reused while its ``ingested`` marker is there (collection and ingest are not timed)."""
    from sealtrail.analysis.ingest import ingest_case
    from sealtrail.custody.case import Case
    from sealtrail.custody.keys import load_private_key

    scratch = OUT / "sigma" / f"{size_mb}MB"
    done = scratch / "ingested"
    if done.exists():
        print(f"case: reusing {scratch}")
        return scratch / "case-template" / "analysis.duckdb"
    root, files, size = ensure_dataset(UPSTREAM, size_mb)
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    case_root, key_file = collect_case(root, scratch)
    key = load_private_key(key_file)
    started = time.perf_counter()
    ingest_case(Case.load(case_root), key, pinned=[key.public], workers=2)
    print(f"ingested in {time.perf_counter() - started:.0f} s (not timed)", flush=True)
    done.touch()
    return case_root / "analysis.duckdb"


def replicate(db: Path, copies: int) -> Path:
    """A copy of ``db`` whose events are its events ``copies`` times over (copy k > 0 with
    ``record_ref`` + ``#k`` and ``event_uid`` = md5(event_uid + ``#k``), so every row stays
    distinct); kept beside it and reused. Not timed; DuckDB's default memory limit."""
    import duckdb

    if copies <= 1:
        return db
    out = db.parent.parent / f"x{copies}" / "analysis.duckdb"
    if out.exists():
        print(f"replica: reusing {out}")
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    shutil.copyfile(db, tmp)
    con = duckdb.connect(str(tmp))
    for k in range(1, copies):
        con.execute("INSERT INTO events SELECT * REPLACE (record_ref || ? AS record_ref, "
                    "md5(event_uid || ?) AS event_uid) FROM events WHERE record_ref NOT LIKE "
                    "'%#%'", [f"#{k}", f"#{k}"])
    con.execute("CHECKPOINT")
    con.close()
    tmp.rename(out)
    return out


def engine_run(db: Path, source, *, table_views: bool) -> None:
    """``run_rules`` as ``analyze`` runs it, over a fresh copy of ``db`` (no findings yet);
    ``table_views`` False: without the shared views of small partitions as tables."""
    from sealtrail.analysis.store import CaseDatabase
    from sealtrail.findings import engine
    from sealtrail.findings.engine import run_rules

    if not table_views:
        engine.TABLE_VIEWS_UP_TO = -1

    work = db.parent / "engine-run.duckdb"
    shutil.copyfile(db, work)
    with CaseDatabase(work) as case_db:
        events = int(case_db.execute("SELECT count(*) FROM events")[1][0][0])
        started = time.perf_counter()
        case_db.execute("SELECT count(*) FROM events")
        scan = time.perf_counter() - started
        started = time.perf_counter()
        case_db.execute("SELECT count(json_extract_string(attributes, '$.EventData.Image')) "
                        "FROM events")
        json_scan = time.perf_counter() - started
        started = time.perf_counter()
        report = run_rules(case_db, [source], "bench")
        seconds = time.perf_counter() - started
        counts = report.counts()
        evidence = case_db.execute("SELECT finding_id, event_uid FROM finding_evidence "
                                   "ORDER BY ALL")[1]
    work.unlink()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6
    ran = counts["matched"] + counts["no_match"]
    digest = hashlib.sha256(repr(evidence).encode()).hexdigest()[:16]
    slow = sorted(report.outcomes, key=lambda o: -(o.seconds or 0))[:3]
    print(f"engine (run_rules): events {events:,}; outcomes {counts}; findings "
          f"{report.findings:,}; evidence rows {len(evidence):,} (sha256 {digest})")
    print(f"engine: {seconds:.2f} s, {events / seconds:,.0f} events/s, {ran / seconds:.0f} "
          f"rules/s (rules run); full scan count(*) {scan * 1000:.1f} ms, json scan "
          f"{json_scan * 1000:.1f} ms; peak RSS {peak:.0f} MB")
    compiled = {f.rule_id for f in source.failures}
    for reason, n in Counter(o.reason[:100] for o in report.outcomes if o.outcome == "failed"
                             and o.rule_id not in compiled).most_common(5):
        print(f"  failed in the run: {n} x {reason}")
    print("slowest: " + "; ".join(f"{o.title[:50]} {o.seconds:.2f} s" for o in slow))


def applicable(con, rule, pairs: set, sources: set) -> bool:
    if rule.sources:
        return bool(rule.sources & sources)
    if rule.needs:
        return any((ch is None or ch == c) and (eid is None or eid == e)
                   for ch, eid in rule.needs for c, e in pairs)
    return True


def run(db: Path, source, *, materialise: bool) -> None:
    import duckdb

    con = duckdb.connect(str(db))
    names = {r[0] for r in con.execute("DESCRIBE events").fetchall()}
    if "event_uid" not in names:
        con.execute("ALTER TABLE events ADD COLUMN event_uid VARCHAR")
        con.execute("UPDATE events SET event_uid = md5(concat_ws('|', bundle_id, member_path, "
                    "record_ref, CAST(ts AS VARCHAR), event_type))")
    started = time.perf_counter()
    for name, select in source.views.items():
        kind = "TABLE" if materialise and name != "sigma_events" else "VIEW"
        con.execute(f"CREATE OR REPLACE TEMP {kind} {name} AS {select}")
    prepare = time.perf_counter() - started
    events = con.execute("SELECT count(*) FROM events").fetchone()[0]
    started = time.perf_counter()
    con.execute("SELECT count(*) FROM events").fetchone()
    scan = time.perf_counter() - started
    started = time.perf_counter()
    con.execute("SELECT count(json_extract_string(attributes, '$.EventData.Image')) "
                "FROM events").fetchone()
    json_scan = time.perf_counter() - started
    pairs = set(con.execute("SELECT DISTINCT channel, event_id FROM events").fetchall())
    sources = {r[0] for r in con.execute("SELECT DISTINCT source FROM events").fetchall()}
    todo = [r for r in source.rules if applicable(con, r, pairs, sources)]
    started = time.perf_counter()
    hits = errors = 0
    for rule in todo:
        try:
            hits += con.execute(f"SELECT count(*) FROM ({rule.sql})").fetchone()[0]
        except duckdb.Error as exc:
            errors += 1
            print(f"  SQL error in {rule.meta.title} ({rule.meta.author}): {exc}"[:200])
    seconds = time.perf_counter() - started + prepare
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6
    print(f"views: {len(source.views)}, "
          f"{'logsource views materialised as tables' if materialise else 'as views'}, "
          f"{prepare:.2f} s")
    print(f"events: {events}; rules run: {len(todo)} of {len(source.rules)} (rest not "
          f"applicable), {errors} SQL errors, {hits} evidence rows")
    print(f"rules: {seconds:.2f} s, {events / seconds:,.0f} events/s, "
          f"{len(todo) / seconds:.0f} rules/s; full scan count(*) {scan * 1000:.1f} ms, "
          f"json scan {json_scan * 1000:.1f} ms; peak RSS {peak:.0f} MB")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=50, help="EVTX data set, MB")
    parser.add_argument("--rules", type=Path, default=SIGMA)
    parser.add_argument("--materialise", action="store_true",
                        help="create the per-logsource views as temp tables (time included)")
    parser.add_argument("--copies", type=int, default=1,
                        help="replicate the ingested events this many times (distinct "
                             "event_uid and record_ref) into a kept copy of the case database")
    parser.add_argument("--engine", action="store_true",
                        help="run the rules through findings.engine.run_rules, as analyze does")
    parser.add_argument("--no-table-views", action="store_true",
                        help="with --engine: views stay views in every partition (as before)")
    args = parser.parse_args()
    print(machine_line())
    source = convert(args.rules)
    db = replicate(ingest(args.size), args.copies)
    if args.engine:
        engine_run(db, source, table_views=not args.no_table_views)
    else:
        run(db, source, materialise=args.materialise)
    return 0


if __name__ == "__main__":
    sys.exit(main())
