"""Do two versions of sealtrail ingest the EVTX benchmark set into the same database rows?

The EVTX data set of bench_ingest_evtx.py (``--size`` MB, built or reused) is collected into a
case once; a copy of that case is then ingested by the sealtrail of this checkout and one by
the sealtrail of ``--base`` (a git revision, extracted with ``git archive``), each in a fresh
process. The script prints, for ``events``, ``ingest_errors`` and ``artifacts``, the rows of one
database missing from the other (EXCEPT ALL over every column, JSON text compared as text), and
whether each ``events`` table is stored in time order, and the blocks of each database file
(``PRAGMA database_size``: used and free).

Usage: python bench/compare_ingest_evtx.py --base 750a2d0 [--size 250]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench_ingest_evtx import OUT, UPSTREAM, collect_case, ensure_dataset

HERE = Path(__file__).resolve().parent
TABLES = ("events", "ingest_errors", "artifacts")

INGEST = r"""
import json, sys
from pathlib import Path
import sealtrail
from sealtrail.analysis.ingest import ingest_case
from sealtrail.custody.case import Case
from sealtrail.custody.keys import load_private_key
report = ingest_case(Case.load(Path(sys.argv[1])), load_private_key(sys.argv[2]), workers=2)
print(json.dumps({"events": report.events_added, "errors": report.errors_added,
                  "code": str(Path(sealtrail.__file__).parent.parent)}))
"""


def ingest(code: Path, case: Path, key: Path) -> dict:
    # run from the case's folder: ``python -c`` puts the working directory first on sys.path,
    # which would import the sealtrail of a checkout it was started in
    env = dict(os.environ, PYTHONPATH=str(code))
    out = subprocess.run([sys.executable, "-c", INGEST, str(case), str(key)], env=env,
                         cwd=case, check=True, capture_output=True, text=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if Path(result["code"]).resolve() != code.resolve():
        raise SystemExit(f"imported the sealtrail of {result['code']}, not of {code}")
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="git revision to compare with")
    parser.add_argument("--size", type=int, default=250)
    args = parser.parse_args()
    import duckdb

    root, _, _ = ensure_dataset(UPSTREAM, args.size)
    scratch = Path(tempfile.mkdtemp(dir=OUT))
    try:
        base = scratch / "base"
        base.mkdir()
        archive = subprocess.run(["git", "-C", str(HERE.parent), "archive", args.base,
                                  "sealtrail"], check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(base)], input=archive, check=True)
        template, key = collect_case(root, scratch)
        dbs = {}
        for label, code in (("base", base), ("this", HERE.parent)):
            case = scratch / f"case-{label}"
            shutil.copytree(template, case)
            print(f"{label} ({args.base if label == 'base' else 'checkout'}):",
                  ingest(code, case, key))
            dbs[label] = case / "analysis.duckdb"
        con = duckdb.connect()
        for label, path in dbs.items():
            con.execute(f"ATTACH '{path}' AS {label} (READ_ONLY)")
        for table in TABLES:
            cols = ", ".join(f'"{r[0]}"' for r in con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_catalog = "
                "'base' AND table_name = ? ORDER BY ordinal_position", [table]).fetchall())
            counts = [con.execute(f"SELECT count(*) FROM {a}.{table}").fetchone()[0]
                      for a in ("base", "this")]
            missing = [con.execute(f"SELECT count(*) FROM (SELECT {cols} FROM {a}.{table} "
                                   f"EXCEPT ALL SELECT {cols} FROM {b}.{table})").fetchone()[0]
                       for a, b in (("base", "this"), ("this", "base"))]
            print(f"  {table}: {counts[0]:,} rows (base), {counts[1]:,} (this); rows of base "
                  f"not in this: {missing[0]:,}, of this not in base: {missing[1]:,}")
        for label in dbs:
            ts = [r[0] for r in con.execute(f"SELECT ts FROM {label}.events").fetchall()]
            size = con.execute(f"SELECT total_blocks, used_blocks, free_blocks FROM "
                               f"pragma_database_size() WHERE database_name = '{label}'"
                               ).fetchone()
            print(f"  {label}: events stored in time order: {ts == sorted(ts)}; database "
                  f"blocks total {size[0]}, used {size[1]}, free {size[2]}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
