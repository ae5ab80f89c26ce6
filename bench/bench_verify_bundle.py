"""Verifying one sealed bundle: this tree against the previous release and ``openssl dgst``.

Issue 9 replaced ``zipfile`` in the bundle reader by a hand-written reader of the exact record
layout (``custody/zip_layout.py``). ``bench_collect.py`` times verification too, but over only
``--runs`` (>= 3) runs of ~0.3 s in the same session as the collections; this script measures
just that, more often and with the previous release side by side.

The bundle: ``bench_collect.py``'s data set (``--size-gb``, default 0.3: 712 files; built or
reused under ``bench/out/data/``), collected once with this tree (``data/**``) into a fresh
case (not timed). Then, interleaved (``--runs``, default 7; the order of the sides rotates
every run), each in a fresh process:

- new: ``check_single_bundle(bundle, [examiner public key])`` of this tree, timed inside the
  process;
- old: the same function of the previous release (``--old-python``, default
  ``/work/wt-old/.venv/bin/python``; the child runs in a scratch folder and reports which
  ``sealtrail`` it imported);
- before (only with ``--before-python``): the same with a third tree, e.g. the commit before
  a change (its Python may be a wrapper script in ``TREE/.venv/bin/`` that sets
  ``PYTHONPATH=TREE`` and runs another venv's Python);
- reference: ``openssl dgst -sha256 BUNDLE``, wall clock.

Each run is done with a warm page cache (``sync`` first) and, as root, once more with the page
cache dropped before every side (``--warm-only`` skips that). Printed: median seconds and MB/s
(bundle file bytes), ratios sealtrail/openssl (MB/s over MB/s, as ``bench_collect.py``) and
new/old (seconds). Scratch in ``bench/out/``, deleted unless ``--keep`` (which keeps the data
set too).

Usage::

    python bench/bench_verify_bundle.py
    python bench/bench_verify_bundle.py --runs 11 --warm-only
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

from bench_collect import MB, drop_caches, ensure_dataset
from machine import load_averages  # bench/machine.py (bench/ is on sys.path)
from machine import machine_line as machine_facts

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
OLD_PYTHON = "/work/wt-old/.venv/bin/python"

CHILD = r"""
import json, sys, time
from pathlib import Path
import sealtrail
from sealtrail.custody.keys import load_public_key
from sealtrail.custody.verify import check_single_bundle
bundle, public_file = Path(sys.argv[1]), sys.argv[2]
public = load_public_key(public_file)
started = time.perf_counter()
report = check_single_bundle(bundle, [public])
seconds = time.perf_counter() - started
print(json.dumps({"seconds": seconds, "ok": report.ok, "checked": report.checked,
                  "problems": [str(p) for p in report.problems][:3],
                  "sealtrail": sealtrail.__file__}))
"""


def machine_line() -> str:
    ssl = subprocess.run(["openssl", "version"], capture_output=True, text=True).stdout.strip()
    return machine_facts(ssl)


def seal_bundle(root: Path, scratch: Path) -> tuple[Path, Path]:
    """Collect ``root``'s data/** into a fresh case; (bundle, examiner public key file)."""
    from sealtrail.acquisition.session import requested_fields, run_collection
    from sealtrail.collectors.plan import plan_collection
    from sealtrail.collectors.source import DirectorySource
    from sealtrail.custody.case import Case
    from sealtrail.custody.keys import SigningKey, write_key_pair

    key = SigningKey.generate("bench")
    _, public_file = write_key_pair(key, scratch / "keys")
    case = Case.init(scratch / "case", title="bench", examiner="bench", key=key)
    source = DirectorySource(root)
    plan = plan_collection(source, path_globs=["data/**"], os_name="linux")
    result = run_collection(case, key, source, plan, source_label=str(root),
                            requested=requested_fields([], ["data/**"], "linux", None))
    return Path(result.bundle_path), public_file


def run_check(python: str, tree: Path, bundle: Path, public_file: Path,
              scratch: Path) -> float:
    proc = subprocess.run([python, "-c", CHILD, str(bundle), str(public_file)],
                          capture_output=True, text=True, check=False, cwd=scratch)
    if proc.returncode:
        raise SystemExit(f"verify child failed ({python}):\n{proc.stderr[-2000:]}")
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    if not report["ok"]:
        raise SystemExit(f"verification failed ({python}): {report['problems']}")
    if not Path(report["sealtrail"]).is_relative_to(tree):
        raise SystemExit(f"{python} imported sealtrail from {report['sealtrail']}, not {tree}")
    return float(report["seconds"])


def run_openssl(bundle: Path) -> float:
    started = time.perf_counter()
    subprocess.run(["openssl", "dgst", "-sha256", str(bundle)], check=True,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-gb", type=float, default=0.3)
    parser.add_argument("--runs", type=int, default=7, help="runs of each side (>= 3)")
    parser.add_argument("--old-python", default=OLD_PYTHON,
                        help="Python of the previous release's venv ('' to leave it out)")
    parser.add_argument("--before-python", default="",
                        help="Python of a third tree's venv, e.g. the commit before a change "
                        "(side 'before'; its checkout is the venv's parent folder)")
    parser.add_argument("--warm-only", action="store_true", help="do not drop the page cache")
    parser.add_argument("--keep", action="store_true", help="keep the data set and scratch")
    args = parser.parse_args()
    if args.runs < 3:
        parser.error("--runs must be at least 3")

    print(machine_line())
    print(f"load average at start: {load_averages()}")
    root, n_files, n_bytes = ensure_dataset(int(args.size_gb * 1e9))
    scratch = OUT / f"verify-bundle-{os.getpid()}"
    scratch.mkdir(parents=True)
    try:
        bundle, public_file = seal_bundle(root, scratch)
        size = bundle.stat().st_size
        sides: dict[str, tuple[str, Path] | None] = {
            "new": (sys.executable, HERE.parent), "reference": None}
        for name, python in (("before", args.before_python), ("old", args.old_python)):
            if python:
                exe = Path(python).absolute()
                sides[name] = (str(exe), exe.parent.parent.parent)  # the venv's checkout
        names = list(sides)
        modes = ["warm"] if args.warm_only or not drop_caches(True) else ["warm", "cold"]
        print(f"bundle: {n_files} members, {size / MB:.1f} MB; {args.runs} runs a side, "
              f"interleaved, order rotating; page cache: {' and '.join(modes)}")
        times = {(mode, name): [] for mode in modes for name in names}
        for run in range(args.runs):
            for mode in modes:
                shift = run % len(names)
                for name in names[shift:] + names[:shift]:
                    drop_caches(mode == "cold")
                    side = sides[name]
                    seconds = (run_openssl(bundle) if side is None
                               else run_check(side[0], side[1], bundle, public_file, scratch))
                    times[mode, name].append(seconds)
                print(f"  run {run + 1} {mode}: " + ", ".join(
                    f"{name} {times[mode, name][-1]:.3f} s" for name in names), flush=True)
        print()
        for mode in modes:
            med = {name: statistics.median(times[mode, name]) for name in names}
            print(f"verify bundle ({size / MB:.1f} MB, {mode} cache, median)   "
                  f"seconds      MB/s   ratio sealtrail/openssl")
            print(f"  reference openssl dgst -sha256        {med['reference']:8.3f} "
                  f"{size / MB / med['reference']:9.0f}")
            for name in [n for n in ("new", "before", "old") if n in med]:
                print(f"  {f'check_single_bundle ({name})':36}{med[name]:8.3f} "
                      f"{size / MB / med[name]:9.0f}   {med['reference'] / med[name]:6.2f}")
            for name in [n for n in ("before", "old") if n in med]:
                print(f"  seconds new/{name}: {med['new'] / med[name]:.2f}")
        print(f"load average at end: {load_averages()}")
    finally:
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
