"""The built-in rule pack over bench_query's ``events`` table (default 10M rows).

Uses the database ``bench/bench_query.py`` builds and caches (``bench/out/query/<events>/``;
built here if absent): ~50 Linux and Windows hosts over 30 days with planted brute-force
sequences. Runs ``findings.engine.run_rules`` with the built-in pack (``load_builtin``) on it,
as ``sealtrail analyze`` does after verification, ``--runs`` times (a run replaces the findings
of the one before); prints the median wall time, events/s, the slowest rules, the outcome
counts and the peak RSS of the process. Reference in the same run: one full scan of
``events`` (``count(*) WHERE message IS NOT NULL``), the floor of anything that reads every row.

Usage::

    python bench/bench_findings.py              # 10M events
    python bench/bench_findings.py --events 1000000
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from pathlib import Path

import bench_query  # bench/ is on sys.path when this file runs
from machine import cpu_model

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sealtrail.analysis.store import CaseDatabase  # noqa: E402
from sealtrail.findings.builtin import load_builtin  # noqa: E402
from sealtrail.findings.engine import run_rules  # noqa: E402


def database(events: int, workers: int) -> Path:
    folder = bench_query.OUT / str(events)
    db_path, meta_path = folder / "events.duckdb", folder / "meta.json"
    if db_path.exists() and meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if (meta.get("events"), meta.get("seed"), meta.get("version")) == (
                events, bench_query.SEED, bench_query.DATA_VERSION):
            return db_path
    folder.mkdir(parents=True, exist_ok=True)
    print(f"building {events:,} events in {db_path} (bench_query) ...", flush=True)
    meta = bench_query.build(db_path, events, workers)
    meta_path.write_text(json.dumps(meta, indent=1))
    return db_path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2, help="generator processes")
    args = ap.parse_args(argv)
    db_path = database(args.events, args.workers)
    print(cpu_model())
    source = load_builtin()
    with CaseDatabase(db_path) as db:
        t0 = time.perf_counter()
        db.execute("SELECT count(*) FROM events WHERE message IS NOT NULL")
        scan = time.perf_counter() - t0
        times, report = [], None
        for n in range(args.runs):
            t0 = time.perf_counter()
            report = run_rules(db, [source], f"bench-{n}")
            times.append(time.perf_counter() - t0)
    assert report is not None
    wall = statistics.median(times)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{report.events:,} events, {len(source.rules)} rules: {wall:.2f} s median of "
          f"{args.runs} ({report.events / wall:,.0f} events/s); full scan {scan:.2f} s; "
          f"peak RSS {rss:,.0f} MB")
    print(f"outcomes {report.counts()}, findings {report.findings}")
    for o in sorted(report.outcomes, key=lambda o: -(o.seconds or 0))[:6]:
        print(f"  {o.seconds or 0:6.2f} s  {o.rule_id:<45} {o.outcome:<14} {o.rows_matched}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
