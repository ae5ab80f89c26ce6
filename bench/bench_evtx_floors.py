"""How close can any EVTX ingest get to the bare ``evtx`` rate? Floors, measured in one run.

The issue's target is an ingest rate of at least 0.5 of the bare ``evtx`` package iterating the
same files. This script measures, over the same files (the 250 MB data set of
bench_ingest_evtx.py), one pass each, interleaved, median of ``--runs``, each in a fresh process:

A. reference: ``PyEvtxParser(path, number_of_threads=1).records_json()`` driven with
   ``next()`` (the record dicts are produced, nothing is read from them);
B. A + ``orjson.loads`` of every record's JSON: the least a parser must add to read any field
   (orjson is the fastest JSON decoder for Python here);
C. B + sealtrail's per-record work (`evtx_windows._to_event`: fields, event type, message,
   attributes), no storage;
D. the other design, extraction in DuckDB: A keeping only (record id, JSON text), written to
   Parquet without compression; then, timed separately, DuckDB (2 threads) reading those
   files and extracting 15 fields per record with one multi-path ``json_extract_string`` (one
   parse per record) into a table;
   F (timed the same way, after D's extraction): sealtrail's own SELECT (``evtx_sql``, every
   events column, rule, message and outcome) over those files into a table, unsorted;
E. an idealized end-to-end ingest, timed as one wall-clock span in a fresh process: two worker
   processes (files split by size) each run A keeping (record id, TimeCreated, JSON text) and
   write them as uncompressed Arrow IPC files, while the main process SHA-256s every file (the
   least a verification must do); then DuckDB (2 threads) builds the events table in one
   statement: the D extraction (TimeCreated cast to a timestamp), the EventData kept as the
   attributes JSON, ordered by time, and a CHECKPOINT. It leaves out everything sealtrail
   does beyond that (event types, messages, user choice, rejections, python-evtx fallback,
   provenance columns, ledger entry), so it is a ceiling for any ingest built on ``evtx``
   and DuckDB here.

Each is printed as records/s and as a ratio to A. A, B and C run on one core; the ingest runs
its parsers in two worker processes, so the best an ingest built on step X could reach (before
any database load, sort or verification) is 2 x the ratio of X.

Usage: python bench/bench_evtx_floors.py [--runs 3] [--size-mb 250]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench_ingest_evtx import UPSTREAM, ensure_dataset, machine_line

# The 15 fields D and E extract, as DuckDB's multi-path list; pasted before both child scripts.
PATHS_SOURCE = r"""
paths = ['$.Event.System.TimeCreated."#attributes".SystemTime', '$.Event.System.EventID',
         '$.Event.System.Channel', '$.Event.System.Computer',
         '$.Event.System.Provider."#attributes".Name', '$.Event.EventData.TargetUserName',
         '$.Event.EventData.TargetUserSid', '$.Event.EventData.SubjectUserName',
         '$.Event.EventData.IpAddress', '$.Event.EventData.IpPort',
         '$.Event.EventData.LogonType', '$.Event.EventData.CommandLine',
         '$.Event.EventData.Image', '$.Event.EventData.ParentImage',
         '$.Event.EventData.ServiceName']
listing = "[" + ",".join("'" + p.replace("'", "''") + "'" for p in paths) + "]"
"""

CHILD = r"""
import glob, json, sys, time
from evtx import PyEvtxParser
import orjson
mode, folder, scratch = sys.argv[1], sys.argv[2], sys.argv[3]
files = sorted(glob.glob(folder + "/**/*.evtx", recursive=True))
if mode == "C":
    from sealtrail.analysis.parsers.evtx_windows import _to_event
if mode == "D":
    import pyarrow as pa, pyarrow.parquet as pq
records = 0
t = time.perf_counter()
for i, path in enumerate(files):
    it = PyEvtxParser(path, number_of_threads=1).records_json()
    ids, texts = [], []
    while True:
        try:
            r = next(it)
        except StopIteration:
            break
        except RuntimeError:
            continue
        records += 1
        if mode == "B":
            orjson.loads(r["data"])
        elif mode == "C":
            _to_event(orjson.loads(r["data"]), r["event_record_id"], "evtx")
        elif mode == "D":
            ids.append(r["event_record_id"]); texts.append(r["data"])
    if mode == "D":
        table = pa.table({"record_id": pa.array(ids, pa.int64()),
                          "data": pa.array(texts, pa.string())})
        pq.write_table(table, f"{scratch}/{i}.parquet", compression="none")
seconds = time.perf_counter() - t
extra = None
if mode == "D":
    import duckdb
    con = duckdb.connect(f"{scratch}/db.duckdb")
    con.execute("SET threads = 2")
    t = time.perf_counter()
    con.execute(f"CREATE TABLE x AS SELECT record_id, json_extract_string(data, {listing}) AS v "
                f"FROM read_parquet('{scratch}/*.parquet')")
    extra = time.perf_counter() - t
    # F: the same files through sealtrail's compiled SQL (parsers/evtx_sql.py), every events
    # column and the outcome, into a table (no sort)
    from sealtrail.analysis.parsers.evtx_sql import PROVENANCE, select_sql
    con.execute("SET TimeZone = 'UTC'")
    staged = f"read_parquet('{scratch}/*.parquet')"
    sql = select_sql(f"(SELECT 0 AS member, record_id, data FROM {staged})",
                     {name: "'x'" for name in PROVENANCE})
    t = time.perf_counter()
    con.execute(f"CREATE TABLE f AS {sql}")
    full = time.perf_counter() - t
    not_ok = con.execute("SELECT count(*) FROM f WHERE outcome <> 'ok'").fetchone()[0]
print(json.dumps({"records": records, "seconds": seconds, "duckdb_seconds": extra,
                  "sql_seconds": full if mode == "D" else None,
                  "sql_not_ok": not_ok if mode == "D" else None}))
"""

WORKER_E = r"""
import sys
from evtx import PyEvtxParser
import pyarrow as pa, pyarrow.ipc as ipc
out, files = sys.argv[1], sys.argv[2:]
schema = pa.schema([("record_id", pa.int64()), ("data", pa.string())])
records = 0
with ipc.new_file(out, schema) as writer:
    for path in files:  # one batch per file: the texts never pile up
        ids, texts = [], []
        it = PyEvtxParser(path, number_of_threads=1).records_json()
        while True:
            try:
                r = next(it)
            except StopIteration:
                break
            except RuntimeError:
                continue
            ids.append(r["event_record_id"]); texts.append(r["data"])
        writer.write_batch(pa.record_batch([pa.array(ids, pa.int64()),
                                            pa.array(texts, pa.string())], schema=schema))
        records += len(ids)
print(records)
"""

PIPELINE_E = r"""
import glob, hashlib, json, os, subprocess, sys, time
folder, scratch, worker = sys.argv[1], sys.argv[2], sys.argv[3]
t = time.perf_counter()
files = sorted(glob.glob(folder + "/**/*.evtx", recursive=True))
halves, sizes = ([], []), [0, 0]
for path in sorted(files, key=os.path.getsize, reverse=True):
    k = 0 if sizes[0] <= sizes[1] else 1
    halves[k].append(path); sizes[k] += os.path.getsize(path)
procs = [subprocess.Popen([sys.executable, "-c", worker, f"{scratch}/{k}.arrow", *halves[k]],
                          stdout=subprocess.PIPE, text=True) for k in (0, 1)]
for path in files:  # verification floor: every byte hashed once, beside the workers
    with open(path, "rb") as f:
        hashlib.file_digest(f, "sha256")
records = sum(int(p.communicate()[0]) for p in procs)
t_parse = time.perf_counter() - t
import duckdb
import pyarrow as pa, pyarrow.ipc as ipc
tables = [ipc.open_file(pa.memory_map(f"{scratch}/{k}.arrow")).read_all() for k in (0, 1)]
staged = pa.concat_tables(tables)
con = duckdb.connect(f"{scratch}/db.duckdb")
con.execute("SET threads = 2")
con.register("staged", staged)
cols = ", ".join(f"v[{i + 1}] AS c{i}" for i in range(1, len(paths)))
con.execute(f"CREATE TABLE events AS SELECT TRY_CAST(v[1] AS TIMESTAMPTZ) AS ts, record_id, "
            f"{cols}, json_extract(data, '$.Event.EventData') AS attributes "
            f"FROM (SELECT record_id, data, "
            f"json_extract_string(data, {listing}) AS v FROM staged) ORDER BY ts, record_id")
con.execute("CHECKPOINT")
con.close()
seconds = time.perf_counter() - t
print(json.dumps({"records": records, "seconds": seconds, "duckdb_seconds": seconds - t_parse}))
"""

LABELS = {
    "A": "A  evtx records_json, 1 thread (reference)",
    "B": "B  A + orjson.loads per record",
    "C": "C  B + sealtrail _to_event per record",
    "D": "D  A + (id, JSON text) to Parquet",
    "E": "E  idealized ingest, end to end (2 workers)",
}


def run_child(mode: str, folder: Path) -> dict[str, float]:
    scratch = Path(tempfile.mkdtemp(dir=folder.parent.parent))
    command = ([sys.executable, "-c", PATHS_SOURCE + PIPELINE_E, str(folder), str(scratch),
                WORKER_E] if mode == "E" else
               [sys.executable, "-c", PATHS_SOURCE + CHILD, mode, str(folder), str(scratch)])
    try:
        out = subprocess.run(command, check=True, capture_output=True, text=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--size-mb", type=int, default=250)
    args = parser.parse_args()
    print(machine_line())
    folder, nfiles, nbytes = ensure_dataset(UPSTREAM, args.size_mb)
    print(f"data: {nfiles} files, {nbytes / 1e6:,.1f} MB in {folder}; {args.runs} runs each, "
          "interleaved, one process per run")
    results: dict[str, list[dict[str, float]]] = {m: [] for m in LABELS}
    for run in range(args.runs):
        for mode in LABELS:
            results[mode].append(run_child(mode, folder))
        line = ", ".join(f"{m} {results[m][-1]['seconds']:.2f} s" for m in LABELS)
        print(f"  run {run + 1}: {line} (of which DuckDB {results['E'][-1]['duckdb_seconds']:.2f}"
              f" s), DuckDB extraction {results['D'][-1]['duckdb_seconds']:.2f} s, "
              f"sealtrail SQL {results['D'][-1]['sql_seconds']:.2f} s")
    records = int(results["A"][0]["records"])
    ref = statistics.median(r["seconds"] for r in results["A"])
    print(f"\n{records:,} records (median of {args.runs})        seconds    records/s   ratio to A"
          "   x2 workers")
    for mode, label in LABELS.items():
        seconds = statistics.median(r["seconds"] for r in results[mode])
        ratio = ref / seconds
        if mode == "E":  # already on two workers: its ratio is the end-to-end one
            print(f"  {label:<44} {seconds:6.2f} {records / seconds:12,.0f} {ratio:12.2f}"
                  "    (end to end)")
            continue
        print(f"  {label:<44} {seconds:6.2f} {records / seconds:12,.0f} {ratio:12.2f}"
              f" {min(2 * ratio, 2):12.2f}")
    duck = statistics.median(r["duckdb_seconds"] for r in results["D"])
    dseconds = statistics.median(r["seconds"] for r in results["D"])
    print(f"  {'D  + DuckDB json_extract_string (2 threads)':<44} {duck:6.2f} "
          f"{records / duck:12,.0f} {ref / duck:12.2f}")
    full = statistics.median(r["sql_seconds"] for r in results["D"])
    print(f"  {'F  D + sealtrail evtx_sql SELECT (2 threads)':<44} {full:6.2f} "
          f"{records / full:12,.0f} {ref / full:12.2f}    "
          f"({results['D'][-1]['sql_not_ok']} records not 'ok')")
    both = dseconds / 2 + duck
    print(f"  D with its Parquet step on 2 workers, then DuckDB: {both:.2f} s, ratio "
          f"{ref / both:.2f} (before verification, loading into events and sorting)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
