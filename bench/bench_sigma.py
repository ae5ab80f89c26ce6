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
    from sealtrail.analysis.ingest import ingest_case
    from sealtrail.custody.case import Case
    from sealtrail.custody.keys import load_private_key

    root, files, size = ensure_dataset(UPSTREAM, size_mb)
    scratch = OUT / "sigma"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    case_root, key_file = collect_case(root, scratch)
    key = load_private_key(key_file)
    ingest_case(Case.load(case_root), key, pinned=[key.public], workers=2)
    return case_root / "analysis.duckdb"


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
    args = parser.parse_args()
    print(machine_line())
    source = convert(args.rules)
    run(ingest(args.size), source, materialise=args.materialise)
    return 0


if __name__ == "__main__":
    sys.exit(main())
