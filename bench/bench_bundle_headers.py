"""Where a cold-cache bundle verification spends its time: local headers read first or inline.

Issue 9: ``check_single_bundle`` of the hand-written reader was 1.29x the ``zipfile`` one with
the page cache dropped (docs/benchmarks.md). This script times, with this tree's reader, the
two ways of reading a bundle's local headers, each in a fresh process with the page cache
dropped before it (as root; else warm, and it says so), interleaved (``--runs``, default 7):

- headers first: open (end records and central directory), then every member's local header
  checked in file order (``BundleFile.check_layout``: as ``read_layout`` did when opening
  before the fix), then every member's bytes read and hashed (SHA-256, 1 MiB reads);
- headers inline: open, then each member's local header checked just before its bytes are
  read and hashed (``iter_raw``: what the reader does since the fix, and what ``zipfile`` did).

Printed: medians of the open, the header reads (with their count), the hashing pass and the
total. The bundle is ``bench_collect.py``'s data set (``--size-gb``, default 0.3), collected
once into a fresh case (not timed); scratch in ``bench/out/``, deleted unless ``--keep``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

from bench_collect import MB, drop_caches, ensure_dataset
from bench_verify_bundle import machine_line, seal_bundle
from machine import load_averages  # bench/machine.py (bench/ is on sys.path)

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"

CHILD = r"""
import hashlib, json, sys, time
from sealtrail.custody import bundle_reader
calls = 0
check_local = bundle_reader.check_local
def counted(*args):
    global calls
    calls += 1
    return check_local(*args)
bundle_reader.check_local = counted
first = sys.argv[2] == "first"
t0 = time.perf_counter()
bundle = bundle_reader.BundleFile(sys.argv[1])
t1 = time.perf_counter()
if first:
    bundle.check_layout()
t2 = time.perf_counter()
for member in bundle.members:
    digest = hashlib.sha256()
    for chunk in bundle.iter_raw(member):
        digest.update(chunk)
t3 = time.perf_counter()
print(json.dumps({"open": t1 - t0, "headers": t2 - t1, "hash": t3 - t2, "total": t3 - t0,
                  "header_reads": calls, "members": len(bundle.members)}))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-gb", type=float, default=0.3)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the data set and scratch")
    args = parser.parse_args()
    print(machine_line())
    print(f"load average at start: {load_averages()}")
    root, _, _ = ensure_dataset(int(args.size_gb * 1e9))
    scratch = OUT / f"bundle-headers-{os.getpid()}"
    scratch.mkdir(parents=True)
    try:
        bundle, _ = seal_bundle(root, scratch)
        cold = drop_caches(True)
        print(f"bundle: {bundle.stat().st_size / MB:.1f} MB; {args.runs} runs a side, "
              f"interleaved; page cache: {'dropped before each run' if cold else 'warm'}")
        sides = ["first", "inline"]
        results: dict[str, list[dict]] = {side: [] for side in sides}
        for run in range(args.runs):
            for side in sides if run % 2 == 0 else sides[::-1]:
                drop_caches(cold)
                proc = subprocess.run([sys.executable, "-c", CHILD, str(bundle), side],
                                      capture_output=True, text=True, check=True)
                results[side].append(json.loads(proc.stdout))
            print(f"  run {run + 1}: " + ", ".join(
                f"headers {side} {results[side][-1]['total']:.3f} s" for side in sides),
                flush=True)
        print()
        print("median seconds       open   header reads (count)   hash pass    total")
        for side in sides:
            med = {key: statistics.median(r[key] for r in results[side])
                   for key in ("open", "headers", "hash", "total")}
            reads = results[side][-1]["header_reads"]
            headers = f"{med['headers']:.3f} ({reads})" if side == "first" else f"inline ({reads})"
            print(f"  headers {side:7} {med['open']:7.3f}   {headers:>20} {med['hash']:11.3f} "
                  f"{med['total']:8.3f}")
        print(f"load average at end: {load_averages()}")
    finally:
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
