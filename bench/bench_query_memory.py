"""Peak memory and time of ``sealtrail query --format csv --out F`` on a large result (issue 9).

``sealtrail query`` now runs the SQL on a sandboxed, read-only DuckDB connection and writes the
rows batch by batch. Measured here, for each ``--n`` (default 3,000,000 and 30,000,000), the
query ``SELECT * FROM range(N)`` on the database of a small ingested case (``keys generate``,
``case init``, ``collect`` of ``fixtures/hosts/web01``, ``ingest``), each side in its own child
process, interleaved (``--runs``, default 3; the order of the sides rotates every run):

- new: this tree's ``sealtrail query CASE SQL --format csv --out F`` (the installed script run
  with ``runpy`` by this venv's Python, so the child can print its own ``VmHWM`` at exit);
- old: the same command of the previous release (``--old``, default
  ``/work/wt-old/.venv/bin/sealtrail``, run by that venv's Python), on the same database
  (each child runs in a scratch folder and reports which ``sealtrail`` it imported: ``-c``
  would otherwise put the current folder, maybe another checkout, first on ``sys.path``);
- reference: a Python child that opens the same database read-only with ``duckdb`` and runs
  ``COPY (SELECT * FROM range(N)) TO 'F' (FORMAT csv)``: DuckDB writing the CSV itself.

Peak memory is each child's own ``VmHWM`` (see ``bench/machine.py``); seconds are the child's
wall time seen by the parent (interpreter start included). The output files are checked to
have the same size. Printed: medians and the ratios to the reference. Scratch in
``bench/out/``, deleted unless ``--keep``.

Usage::

    python bench/bench_query_memory.py
    python bench/bench_query_memory.py --n 3000000 --runs 5
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from machine import (  # bench/machine.py (bench/ is on sys.path)
    PEAK_RSS_SOURCE,
    load_averages,
    machine_line,
)
from small_case import build_small_case, ingested_copy

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
SEALTRAIL = str(Path(sys.executable).with_name("sealtrail"))
OLD_SEALTRAIL = "/work/wt-old/.venv/bin/sealtrail"
MARK = "BENCH-VMHWM-KIB "

CLI_CHILD = PEAK_RSS_SOURCE + r"""
import atexit, runpy, sys
def report():
    print("BENCH-SEALTRAIL", sys.modules["sealtrail"].__file__, file=sys.stderr)
    print("BENCH-VMHWM-KIB", peak_rss_kib(), file=sys.stderr, flush=True)
atexit.register(report)
script = sys.argv[1]
sys.argv = ["sealtrail", *sys.argv[2:]]
runpy.run_path(script, run_name="__main__")
"""

REFERENCE_CHILD = PEAK_RSS_SOURCE + r"""
import sys, duckdb
database, n, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
con = duckdb.connect(database, read_only=True)
con.execute(f"COPY (SELECT * FROM range({n})) TO '{out}' (FORMAT csv)")
con.close()
print("BENCH-VMHWM-KIB", peak_rss_kib(), file=sys.stderr, flush=True)
"""


def run_child(argv: list[str], out: Path, tree: Path | None) -> tuple[float, float, int]:
    """(seconds, peak MiB, output bytes) of one child; the output file is removed. ``tree``:
    the checkout whose ``sealtrail`` the child must have imported. The child runs in the
    output's folder, so that ``-c`` does not put a checkout first on its ``sys.path``."""
    started = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, cwd=out.parent)
    seconds = time.perf_counter() - started
    marks = [x for x in proc.stderr.splitlines() if x.startswith(MARK)]
    if proc.returncode or not marks or not out.exists():
        raise SystemExit(f"child failed ({proc.returncode}): {argv[:4]}\n{proc.stderr[-2000:]}")
    if tree is not None:
        imported = [x.split(" ", 1)[1] for x in proc.stderr.splitlines()
                    if x.startswith("BENCH-SEALTRAIL ")]
        if not imported or not Path(imported[-1]).is_relative_to(tree):
            raise SystemExit(f"child imported sealtrail from {imported}, not from {tree}")
    size = out.stat().st_size
    out.unlink()
    return seconds, int(marks[-1].split()[1]) / 1024, size


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, nargs="+", default=[3_000_000, 30_000_000])
    parser.add_argument("--runs", type=int, default=3, help="runs of each side (>= 3)")
    parser.add_argument("--old", default=OLD_SEALTRAIL,
                        help="the previous release's sealtrail script ('' to leave it out)")
    parser.add_argument("--keep", action="store_true", help="keep scratch files")
    args = parser.parse_args()
    if args.runs < 3:
        parser.error("--runs must be at least 3")

    from importlib.metadata import version

    print(machine_line(f"DuckDB {version('duckdb')}"))
    print(f"load average at start: {load_averages()}")
    scratch = OUT / f"query-memory-{os.getpid()}"
    try:
        case, key = build_small_case(scratch / "small", SEALTRAIL)
        case = ingested_copy(case, key, scratch / "ingested", SEALTRAIL)
        database = next(case.glob("*.duckdb"))
        # name: (python, sealtrail script, checkout it must import from; the venv's parent)
        sides: dict[str, tuple[str, str, Path]] = {
            "new": (sys.executable, SEALTRAIL, HERE.parent)}
        if args.old:
            old = Path(args.old).absolute()
            sides["old"] = (str(old.with_name("python")), str(old), old.parent.parent.parent)
        names = [*sides, "reference"]
        print(f"database: {database} ({database.stat().st_size / 1e6:.1f} MB); "
              f"{args.runs} runs a side, interleaved, order rotating; sides: {', '.join(names)}")
        tables = []
        for n in args.n:
            sql = f"SELECT * FROM range({n})"
            results: dict[str, list[tuple[float, float]]] = {name: [] for name in names}
            for run in range(args.runs):
                shift = run % len(names)
                sizes = set()
                for name in names[shift:] + names[:shift]:
                    out = scratch / f"out-{n}-{run}-{name}.csv"
                    if name == "reference":
                        argv = [sys.executable, "-c", REFERENCE_CHILD, str(database), str(n),
                                str(out)]
                        tree = None
                    else:
                        python, script, tree = sides[name]
                        argv = [python, "-c", CLI_CHILD, script, "query", str(case), sql,
                                "--format", "csv", "--out", str(out)]
                    seconds, peak, size = run_child(argv, out, tree)
                    results[name].append((seconds, peak))
                    sizes.add(size)
                if len(sizes) != 1:
                    raise SystemExit(f"outputs differ in size for N={n}: {sizes}")
                print(f"  N={n:,} run {run + 1}: " + ", ".join(
                    f"{name} {results[name][-1][0]:.2f} s {results[name][-1][1]:.0f} MiB"
                    for name in names) + f" ({sizes.pop() / 1e6:.0f} MB of CSV)", flush=True)
            tables.append((n, {name: (statistics.median(s for s, _ in v),
                                      statistics.median(p for _, p in v))
                               for name, v in results.items()}))
        print()
        print("query to CSV (median)           peak MiB   seconds   peak/ref  seconds/ref")
        for n, medians in tables:
            ref_s, ref_p = medians["reference"]
            print(f"SELECT * FROM range({n:,})")
            for name in names:
                s, p = medians[name]
                label = {"new": "sealtrail query (new)", "old": "sealtrail query (old)",
                         "reference": "reference duckdb COPY"}[name]
                print(f"  {label:<28}{p:9.0f}  {s:8.2f}  {p / ref_p:9.2f}  {s / ref_s:11.2f}")
        print(f"load average at end: {load_averages()}")
    finally:
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
