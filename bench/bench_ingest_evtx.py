"""EVTX ingest rate (events/s into DuckDB) against the bare ``evtx`` package, same files, same run.

What is measured:

- data set: copies of the clean upstream EVTX logs (``CLEAN`` below: no record either parser
  rejects) under ``bench/out/evtx-data/<size>MB/evtx/``, repeated until the folder holds at
  least ``--sizes`` MB each (default 250 and 1000). Built once and reused while it matches.
- sealtrail: the folder is collected once per size into a case (``plan_collection(source,
  path_globs=["evtx/**"], os_name="windows")`` + ``run_collection``, not timed); every run
  copies that case and runs ``ingest_case(case, key, workers=2)`` in a fresh Python process,
  timed inside it end to end (verify, parse in 2 worker processes, Parquet, DuckDB load, sort,
  checkpoint, database SHA-256, ledger entry). events/s = rows loaded from the EVTX members
  (parser ``winevtx``; the file-system time rows from the manifest are not counted) / seconds.
  Phases printed: verify (``check_case``), parse (until the last member's result), load (every
  ``CaseDatabase`` load; since the EVTX SQL also ``create_temp_table``, where the staged EVTX
  records are read in SQL, and ``insert_events``, which sorts the rows on the way into an empty
  table) and sort (``sort_events``, or the ``checkpoint`` that replaces it when the rows went
  in in time order).
  Peak RSS: ``getrusage(RUSAGE_SELF)`` (the main process) and ``RUSAGE_CHILDREN`` (the
  largest worker) at the end of that process, so the figures are per run.
- references, each in a fresh process over the same files: ``PyEvtxParser(path)
  .records_json()`` driven to exhaustion with ``next()`` (``RuntimeError`` caught), with the
  default threads and with ``number_of_threads=1``. records/s = records / seconds.

Runs are interleaved (reference default, reference 1 thread, ingest) and the medians are
printed; ``--runs`` (default 3) for the smaller sizes, ``--runs-large`` (default 1) for sizes of
1,000 MB and more. MB = 10^6 bytes. Scratch goes to ``bench/out/``; the data sets are deleted
at the end unless ``--keep``.

Usage::

    python bench/bench_ingest_evtx.py                  # 250 MB x3, 1 GB x1
    python bench/bench_ingest_evtx.py --sizes 50 --runs 3 --keep   # quick
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from machine import cpu_model  # bench/machine.py (bench/ is on sys.path)

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
UPSTREAM = HERE.parent.parent / "shared" / "fixtures" / "upstream" / "evtx"
CLEAN = ("System.evtx", "security.evtx", "smb-password-guessing-security.evtx",
         "Security_with_size_t.evtx", "issue_43.evtx", "password-spray.evtx")
MB = 1_000_000
MiB = 1 << 20
DATA_VERSION = 1


def machine_line() -> str:
    from importlib.metadata import version

    import duckdb

    cpu = cpu_model()
    return (f"machine: {os.cpu_count()} CPUs ({cpu}), Python {sys.version.split()[0]}, "
            f"evtx {version('evtx')}, DuckDB {duckdb.__version__}, pyarrow {version('pyarrow')}, "
            f"orjson {version('orjson')}, {os.uname().sysname} {os.uname().release}")


def ensure_dataset(upstream: Path, size_mb: int) -> tuple[Path, int, int]:
    """``ROOT`` with ``ROOT/evtx/*.evtx`` of at least ``size_mb`` MB; (ROOT, files, bytes)."""
    root = OUT / "evtx-data" / f"{size_mb}MB"
    sources = [upstream / name for name in CLEAN]
    sizes = [p.stat().st_size for p in sources]
    layout: list[tuple[str, Path, int]] = []
    total = 0
    while total < size_mb * MB:
        i = len(layout)
        src, size = sources[i % len(sources)], sizes[i % len(sources)]
        layout.append((f"evtx/{i // len(sources):04d}/{src.name}", src, size))
        total += size
    wanted = {"version": DATA_VERSION, "files": [[rel, src.name, size]
                                                 for rel, src, size in layout]}
    manifest = root / "manifest.json"
    if manifest.exists() and json.loads(manifest.read_text()) == wanted and all(
            (root / rel).is_file() and (root / rel).stat().st_size == size
            for rel, _, size in layout):
        print(f"data set: reusing {root}")
        return root, len(layout), total
    print(f"data set: building {root} ({len(layout)} files, {total / MB:.0f} MB)", flush=True)
    shutil.rmtree(root, ignore_errors=True)
    for rel, src, _ in layout:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, root / rel)
    manifest.write_text(json.dumps(wanted))
    os.sync()
    return root, len(layout), total


def collect_case(root: Path, scratch: Path) -> tuple[Path, Path]:
    """Collect ``root/evtx/**`` into a new case (not timed); returns (case root, key file)."""
    from sealtrail.acquisition.session import requested_fields, run_collection
    from sealtrail.collectors.plan import plan_collection
    from sealtrail.collectors.source import DirectorySource
    from sealtrail.custody.case import Case
    from sealtrail.custody.keys import SigningKey, write_key_pair

    key = SigningKey.generate("bench")
    key_file, _ = write_key_pair(key, scratch / "keys")
    case_root = scratch / "case-template"
    case = Case.init(case_root, title="bench evtx", examiner="bench", key=key)
    source = DirectorySource(root)
    plan = plan_collection(source, path_globs=["evtx/**"], os_name="windows")
    result = run_collection(case, key, source, plan, source_label=str(root),
                            requested=requested_fields([], ["evtx/**"], "windows", None))
    print(f"collected: {result.members} members, {result.bytes / MB:.1f} MB into "
          f"{Path(result.bundle_path).name}", flush=True)
    return case_root, key_file


# ---------------------------------------------------------------------------------------------
# children (fresh processes): one JSON line on stdout


def child_ingest(case_root: str, key_file: str) -> None:
    from sealtrail.analysis import ingest as ingest_module
    from sealtrail.analysis.store import CaseDatabase
    from sealtrail.custody.case import Case
    from sealtrail.custody.keys import load_private_key

    phases: dict[str, float] = {"verify": 0.0, "load": 0.0, "sort": 0.0}
    rss_after: dict[str, int] = {}  # main process peak RSS (KiB) at the end of each phase

    def peak() -> int:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    def timed(phase: str, func):  # noqa: ANN001, ANN202 - a thin wrapper, bench only
        def wrapper(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            if phase == "load" and "parse" not in rss_after:
                rss_after["parse"] = peak()
            started = time.perf_counter()
            try:
                return func(*args, **kwargs)
            finally:
                phases[phase] += time.perf_counter() - started
                rss_after[phase] = peak()
        return wrapper

    ingest_module.check_case = timed("verify", ingest_module.check_case)
    CaseDatabase.load_parquet = timed("load", CaseDatabase.load_parquet)
    for name in ("create_temp_table", "insert_events"):  # the EVTX SQL, the ordered insert
        if hasattr(CaseDatabase, name):
            setattr(CaseDatabase, name, timed("load", getattr(CaseDatabase, name)))
    CaseDatabase.sort_events = timed("sort", CaseDatabase.sort_events)
    if hasattr(CaseDatabase, "checkpoint"):  # instead of the sort when rows went in in order
        CaseDatabase.checkpoint = timed("sort", CaseDatabase.checkpoint)
    last_progress = [0.0]

    def progress(_done: int, _total: int) -> None:
        last_progress[0] = time.perf_counter()

    key = load_private_key(key_file)
    case = Case.load(Path(case_root))
    started = time.perf_counter()
    report = ingest_module.ingest_case(case, key, workers=2, progress=progress)
    seconds = time.perf_counter() - started
    evtx_loaded = sum(a.loaded for a in report.accounts if a.parser == "winevtx")
    evtx_rejected = sum(a.rejected for a in report.accounts if a.parser == "winevtx")
    print(json.dumps({
        "seconds": seconds,
        "parse_seconds": last_progress[0] - started - phases["verify"],
        "phases": phases,
        "evtx_loaded": evtx_loaded,
        "evtx_rejected": evtx_rejected,
        "events_added": report.events_added,
        "members": len(report.accounts),
        "failures": [a.failure for a in report.accounts if a.failure][:3],
        "db_bytes": Path(report.database).stat().st_size,
        "rss_self_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "rss_children_kib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
        "rss_after_kib": rss_after,
    }))


def child_reference(root: str, threads: str) -> None:
    from evtx import PyEvtxParser

    files = sorted(str(p) for p in Path(root, "evtx").rglob("*.evtx"))
    n = errors = 0
    started = time.perf_counter()
    for path in files:
        parser = (PyEvtxParser(path) if threads == "default"
                  else PyEvtxParser(path, number_of_threads=int(threads)))
        records = parser.records_json()
        while True:
            try:
                next(records)
            except StopIteration:
                break
            except RuntimeError:
                errors += 1
                continue
            n += 1
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "records": n, "errors": errors,
                      "rss_self_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))


def _child(args: list[str]) -> dict[str, object]:
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), *args],
                          check=False, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"child {args[0]} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------------------------


def bench_size(upstream: Path, size_mb: int, runs: int) -> dict[str, object]:
    root, n_files, n_bytes = ensure_dataset(upstream, size_mb)
    scratch = OUT / f"evtx-run-{os.getpid()}-{size_mb}"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    try:
        template, key_file = collect_case(root, scratch)
        ref_default: list[float] = []
        ref_one: list[float] = []
        ing: list[dict[str, object]] = []
        records = 0
        for run in range(runs):
            os.sync()
            r_def = _child(["--child-reference", str(root), "default"])
            r_one = _child(["--child-reference", str(root), "1"])
            records = int(r_def["records"])
            ref_default.append(float(r_def["seconds"]))
            ref_one.append(float(r_one["seconds"]))
            case_root = scratch / f"case-{run}"
            shutil.copytree(template, case_root)
            os.sync()
            result = _child(["--child-ingest", str(case_root), str(key_file)])
            if result["failures"]:
                raise SystemExit(f"ingest failures: {result['failures']}")
            ing.append(result)
            shutil.rmtree(case_root)
            phases = result["phases"]
            print(f"  run {run + 1}: evtx default {ref_default[-1]:.2f} s, evtx 1 thread "
                  f"{ref_one[-1]:.2f} s ({records:,} records, {r_def['errors']} errors); "
                  f"ingest {float(result['seconds']):.2f} s ({int(result['evtx_loaded']):,} EVTX "
                  f"rows, {result['evtx_rejected']} rejected; verify {phases['verify']:.1f}, "
                  f"parse {float(result['parse_seconds']):.1f}, load {phases['load']:.1f}, "
                  f"sort/checkpoint {phases['sort']:.1f} s); peak RSS main "
                  f"{int(result['rss_self_kib']) / 1024:.0f} MiB, worker "
                  f"{int(result['rss_children_kib']) / 1024:.0f} MiB", flush=True)
            print("         main peak RSS after " + ", ".join(
                f"{k} {v / 1024:.0f}" for k, v in result["rss_after_kib"].items()) + " MiB",
                flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    loaded = int(ing[-1]["evtx_loaded"])
    return {
        "size_mb": size_mb, "files": n_files, "bytes": n_bytes, "runs": runs,
        "records": records, "loaded": loaded,
        "ref_default": statistics.median(ref_default), "ref_one": statistics.median(ref_one),
        "ingest": statistics.median(float(r["seconds"]) for r in ing),
        "parse": statistics.median(float(r["parse_seconds"]) for r in ing),
        "rss_self": max(int(r["rss_self_kib"]) for r in ing) / 1024,
        "rss_children": max(int(r["rss_children_kib"]) for r in ing) / 1024,
        "db_mb": int(ing[-1]["db_bytes"]) / MB,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="250,1000", help="MB of EVTX per data set")
    parser.add_argument("--runs", type=int, default=3, help="runs per size below 1,000 MB")
    parser.add_argument("--runs-large", type=int, default=1, help="runs per size >= 1,000 MB")
    parser.add_argument("--upstream", type=Path, default=UPSTREAM)
    parser.add_argument("--keep", action="store_true", help="keep the data sets")
    parser.add_argument("--child-ingest", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--child-reference", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_ingest:
        child_ingest(*args.child_ingest)
        return 0
    if args.child_reference:
        child_reference(*args.child_reference)
        return 0

    print(machine_line())
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    print(f"files: {', '.join(CLEAN)} from {args.upstream}")
    results = []
    sizes = [int(s) for s in args.sizes.split(",")]
    try:
        for size in sizes:
            runs = args.runs_large if size >= 1000 else args.runs
            print(f"\n{size} MB: {runs} run(s), interleaved", flush=True)
            results.append(bench_size(args.upstream, size, runs))
    finally:
        if not args.keep:
            shutil.rmtree(OUT / "evtx-data", ignore_errors=True)
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")
    print("\n(median)        records    evtx default   evtx 1 thread   sealtrail ingest"
          "     ratio vs     ratio vs    peak RSS MiB")
    print("  size      loaded/read      records/s       records/s           events/s"
          "      default     1 thread   main / worker")
    for r in results:
        rate = r["loaded"] / r["ingest"]
        ref_d = r["records"] / r["ref_default"]
        ref_1 = r["records"] / r["ref_one"]
        print(f"  {r['bytes'] / MB:5.0f} MB {r['loaded']:>9,}/{r['records']:<9,} {ref_d:10,.0f}"
              f"      {ref_1:10,.0f}         {rate:10,.0f}       {rate / ref_d:6.3f}"
              f"       {rate / ref_1:6.3f}      {r['rss_self']:.0f} / {r['rss_children']:.0f}"
              f"   ({r['runs']} run{'s' if r['runs'] > 1 else ''})")
    for r in results:
        rate_parse = r["loaded"] / r["parse"]
        print(f"  {r['bytes'] / MB:.0f} MB: ingest {r['ingest']:.2f} s, of which parse (verify"
              f" done until the last member's result) ~{r['parse']:.2f} s = {rate_parse:,.0f}"
              f" events/s on 2 workers; database {r['db_mb']:.0f} MB")
    print("  target: ratio vs evtx default >= 0.5; peak RSS flat as input grows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
