"""What starting parser workers from the fork server costs, against forking them (issue 9).

Workers (``analysis.sandbox.WorkerPool``, the image worker) now come from multiprocessing's fork
server (``sealtrail/worker_start.py``) so that they never hold a copy of the signing key. The
server is a fresh interpreter that imports ``worker_start.PRELOAD``: a cost a CLI command pays
once, cold. Measured in fresh interpreters, interleaved (``--runs``, the order of the two sides
alternating), medians:

(a) pool: in a fresh ``python`` that has imported ``sealtrail.analysis.ingest`` (as ``sealtrail
    ingest`` has), the time of ``with WorkerPool(2) as pool: list(pool.run(tasks))`` with two
    real ``MemberTask``s (the two crontabs of the small case's bundle, 228 and 251 bytes, both
    parsed by the crontab parser): start, two tasks, stop. The fork server is not warmed up
    before (worst case). Also the child's whole wall time (interpreter start to exit, as seen
    by the parent). Reference: the same with ``worker_context`` patched to return
    ``multiprocessing.get_context("fork")`` (the previous behaviour).
(b) ingest: ``sealtrail ingest CASE --key K`` end to end (the installed ``sealtrail`` script)
    on a fresh copy of a small case (``keys generate``, ``case init``, ``collect`` of
    ``fixtures/hosts/web01``: 30 members, 0.5 MB), against a wrapper script that patches
    ``worker_context`` (in ``sealtrail.worker_start``, so ``warm_up`` starts no server, and in
    ``sealtrail.analysis.sandbox``) to the fork context, then calls
    ``sealtrail.cli.main.main()``.

Printed: medians, the ratio new/reference and the extra seconds. Scratch in ``bench/out/``,
deleted unless ``--keep``.

Usage::

    python bench/bench_worker_start.py
    python bench/bench_worker_start.py --runs 9
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from machine import load_averages, machine_line  # bench/machine.py (bench/ is on sys.path)
from small_case import build_small_case

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
SEALTRAIL = str(Path(sys.executable).with_name("sealtrail"))
TASK_SOURCES = ("/var/spool/cron/crontabs/deploy", "/etc/cron.d/app-backup")

FORK_PATCH = r"""
import multiprocessing
import sealtrail.analysis.sandbox
import sealtrail.worker_start

_FORK = multiprocessing.get_context("fork")
sealtrail.worker_start.worker_context = lambda: _FORK  # warm_up() then starts no fork server
sealtrail.analysis.sandbox.worker_context = lambda: _FORK
"""

POOL_CHILD = r"""
import json, sys, time
mode, bundle_path, out_dir, sources = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
import sealtrail.analysis.ingest  # what `sealtrail ingest` has imported when it starts workers
from sealtrail.analysis import sandbox
from sealtrail.analysis.worker import MemberTask
from sealtrail.custody.bundle_reader import BundleFile
from sealtrail.custody.extract import read_unverified_manifest
if mode == "fork":
    exec(FORK_PATCH)
with BundleFile(bundle_path) as bundle:
    manifest = read_unverified_manifest(bundle)
members = {m["source"]["path"]: m for m in manifest["members"]}
tasks = [MemberTask(i, bundle_path, "bench", members[s]["name"], members[s]["sha256"], s,
                    members[s]["size"], members[s]["source"].get("mtime"), "web01", (), out_dir)
         for i, s in enumerate(sources)]
started = time.perf_counter()
with sandbox.WorkerPool(2) as pool:
    results = list(pool.run(tasks))
seconds = time.perf_counter() - started
bad = [r for r in results if r.failure or r.parser is None]
if len(results) != len(tasks) or bad:
    raise SystemExit(f"unexpected results: {results}")
print(json.dumps({"pool": seconds, "method": sandbox.worker_context().get_start_method(),
                  "loaded": sum(r.loaded for r in results)}))
"""

INGEST_WRAPPER = FORK_PATCH + r"""
import sys
from sealtrail.cli.main import main

sys.argv[0] = "sealtrail"
main()
"""


def run_pool(mode: str, bundle: Path, out_dir: Path) -> tuple[float, float, str]:
    """(pool seconds inside the child, whole child seconds, start method) for one run."""
    out_dir.mkdir()
    code = f"FORK_PATCH = {FORK_PATCH!r}\n" + POOL_CHILD
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code, mode, str(bundle), str(out_dir),
                           *TASK_SOURCES], capture_output=True, text=True, check=False)
    whole = time.perf_counter() - started
    if proc.returncode:
        raise SystemExit(f"pool child failed:\n{proc.stdout}{proc.stderr}")
    shutil.rmtree(out_dir)
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    return report["pool"], whole, report["method"]


def run_ingest(command: list[str], case: Path, key: Path, copy: Path) -> float:
    shutil.copytree(case, copy, symlinks=True)
    started = time.perf_counter()
    proc = subprocess.run([*command, "ingest", str(copy), "--key", str(key)],
                          capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if proc.returncode:
        raise SystemExit(f"ingest failed:\n{proc.stdout}{proc.stderr}")
    shutil.rmtree(copy)
    return seconds


def row(label: str, new: list[float], ref: list[float]) -> str:
    n, r = statistics.median(new), statistics.median(ref)
    return f"  {label:<38}{n:9.3f}  {r:9.3f}  {n / r:7.2f}  {n - r:+8.3f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="runs of each side (>= 3)")
    parser.add_argument("--keep", action="store_true", help="keep scratch files")
    args = parser.parse_args()
    if args.runs < 3:
        parser.error("--runs must be at least 3")

    print(machine_line())
    print(f"load average at start: {load_averages()}")
    scratch = OUT / f"worker-start-{os.getpid()}"
    try:
        case, key = build_small_case(scratch / "small", SEALTRAIL)
        bundle = next((case / "bundles").glob("*.stb"))
        wrapper = scratch / "sealtrail_fork.py"
        wrapper.write_text(INGEST_WRAPPER)
        print(f"small case: {case} (bundle {bundle.stat().st_size / 1e6:.2f} MB); "
              f"{args.runs} runs a side, interleaved, order alternating")

        pool_new: list[float] = []
        pool_ref: list[float] = []
        whole_new: list[float] = []
        whole_ref: list[float] = []
        for run in range(args.runs):
            order = ("forkserver", "fork") if run % 2 == 0 else ("fork", "forkserver")
            for mode in order:
                pool, whole, method = run_pool(mode, bundle, scratch / f"pool-{run}-{mode}")
                if method != mode:
                    raise SystemExit(f"asked for {mode}, workers came from {method}")
                (pool_new if mode == "forkserver" else pool_ref).append(pool)
                (whole_new if mode == "forkserver" else whole_ref).append(whole)
            print(f"  pool run {run + 1}: fork server {pool_new[-1]:.3f} s "
                  f"(process {whole_new[-1]:.3f} s), fork {pool_ref[-1]:.3f} s "
                  f"(process {whole_ref[-1]:.3f} s)", flush=True)

        ingest_new: list[float] = []
        ingest_ref: list[float] = []
        sides = {"new": [SEALTRAIL], "ref": [sys.executable, str(wrapper)]}
        for run in range(args.runs):
            order = ("new", "ref") if run % 2 == 0 else ("ref", "new")
            for side in order:
                seconds = run_ingest(sides[side], case, key, scratch / f"ingest-{run}-{side}")
                (ingest_new if side == "new" else ingest_ref).append(seconds)
            print(f"  ingest run {run + 1}: fork server {ingest_new[-1]:.3f} s, "
                  f"fork {ingest_ref[-1]:.3f} s", flush=True)

        print()
        print("median seconds                          fork server       fork    ratio     extra")
        print("                                              (new)      (ref)  new/ref   seconds")
        print(row("(a) WorkerPool(2) start+2 tasks+stop", pool_new, pool_ref))
        print(row("    whole python process", whole_new, whole_ref))
        print(row("(b) sealtrail ingest (small case)", ingest_new, ingest_ref))
        print(f"load average at end: {load_averages()}")
    finally:
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
