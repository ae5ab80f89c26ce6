"""Query results written batch by batch: the same text as written whole, bounded memory."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sealtrail.analysis.output import write_csv, write_json, write_jsonl, write_table

ROOT = Path(__file__).resolve().parents[2]
NAMES = ["n", "text"]
ROWS = [(1, "a"), (22, "long text\nwith a newline"), (333, None)]


def written(writer, batches) -> str:
    out = io.StringIO()
    writer(NAMES, iter(batches), out)
    return out.getvalue()


@pytest.mark.parametrize("rows", [[], ROWS[:1], ROWS])
def test_json_in_batches_is_the_text_of_the_whole(rows):
    whole = json.dumps([dict(zip(NAMES, r, strict=True)) for r in rows], indent=1) + "\n"
    assert written(write_json, [rows[:1], rows[1:]]) == whole
    assert written(write_jsonl, [rows[:1], rows[1:]]) == "".join(
        json.dumps(dict(zip(NAMES, r, strict=True))) + "\n" for r in rows)


def test_csv_in_batches():
    assert written(write_csv, [ROWS[:1], ROWS[1:]]) == (
        'n,text\n1,a\n22,"long text\nwith a newline"\n333,\n')


def test_table_widths_come_from_the_first_batch():
    text = written(write_table, [[(1, "a")], [(22, "wider than the first")]])
    assert text == ("n  text\n"
                    "-  ----\n"
                    "1  a\n"
                    "22  wider than the first\n"
                    "(2 rows)\n")
    assert written(write_table, []) == "n  text\n-  ----\n(0 rows)\n"


def peak_rss_mib(*args: object) -> float:
    """Peak memory of ``sealtrail ARGS`` run in a child process (its own VmHWM)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.run([sys.executable, "-m", "tests.analysis.peak_rss_child",
                            *map(str, args)], capture_output=True, text=True, env=env,
                           cwd=ROOT, timeout=120, check=False)
    assert child.returncode == 0, child.stderr
    last = child.stderr.strip().splitlines()[-1]
    assert last.startswith("peak_rss_kib ")
    return int(last.split()[1]) / 1024


ROWS_FOR_MEMORY = 3_000_000
# measured on 3M rows: ~125 MiB streamed (any format); fetched whole, 607 MiB (csv) and
# 1,173 MiB (table)
MEMORY_BOUND_MIB = 250


@pytest.mark.parametrize("fmt", ["csv", "table"])
def test_a_large_result_streams_in_bounded_memory(ingested, tmp_path, fmt):
    out = tmp_path / f"big.{fmt}"
    peak = peak_rss_mib("query", ingested.root, f"SELECT * FROM range({ROWS_FOR_MEMORY})",
                        "--format", fmt, "--out", out)
    assert out.stat().st_size > 0
    assert peak < MEMORY_BOUND_MIB
