"""Query, timeline, export and scan, through the CLI on an ingested case."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from sealtrail.analysis.store import CaseDatabase
from sealtrail.cli.main import cli
from tests.shared_data import upstream_path


@pytest.fixture
def run():
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(cli, [str(a) for a in args], catch_exceptions=False)

    return invoke


def test_query_formats(ingested, run):
    sql = "SELECT event_type, count(*) AS n FROM events GROUP BY 1 ORDER BY 1"
    table = run("query", ingested.root, sql)
    assert table.exit_code == 0 and "event_type" in table.output and "rows)" in table.output
    as_json = json.loads(run("query", ingested.root, sql, "--format", "json").output)
    assert {r["event_type"] for r in as_json} >= {"file_modified"}
    rows = list(csv.reader(io.StringIO(run("query", ingested.root, sql, "--format",
                                           "csv").output)))
    assert rows[0] == ["event_type", "n"] and len(rows) == len(as_json) + 1
    lines = run("query", ingested.root, sql, "--format", "jsonl").output.splitlines()
    assert [json.loads(x) for x in lines] == as_json


def test_query_is_read_only(ingested, run):
    result = run("query", ingested.root, "DELETE FROM events")
    assert result.exit_code == 2
    assert result.output.startswith("Error: query refused:") and "read-only" in result.output


def test_bad_sql_is_one_line(ingested, run):
    result = run("query", ingested.root, "SELEC nonsense")
    assert result.exit_code == 2
    assert len(result.output.strip().splitlines()) == 1


def test_query_before_ingest_says_what_to_do(web01_case, run):
    result = run("query", web01_case.root, "SELECT 1")
    assert result.exit_code == 2
    assert "run 'sealtrail ingest' first" in result.output


def test_query_to_parquet_file(ingested, run, tmp_path):
    out = tmp_path / "q.parquet"
    result = run("query", ingested.root, "SELECT * FROM events", "--format", "parquet",
                 "--out", out)
    assert result.exit_code == 0 and out.stat().st_size > 0
    with CaseDatabase(ingested.root / "analysis.duckdb", read_only=True) as db:
        _, rows = db.execute(f"SELECT count(*) FROM read_parquet('{out}')")
        assert rows[0][0] == db.count("events")


def test_timeline_is_ordered_and_filtered(ingested, run):
    out = run("timeline", ingested.root, "--format", "jsonl", "--type", "file_modified",
              "--start", "2000-01-01", "--end", "2100-01-01T00:00:00Z")
    rows = [json.loads(x) for x in out.output.splitlines()]
    assert rows and all(r["event_type"] == "file_modified" for r in rows)
    assert [r["ts"] for r in rows] == sorted(r["ts"] for r in rows)
    none = run("timeline", ingested.root, "--format", "jsonl", "--end", "1971-01-01")
    assert none.output == ""
    bad = run("timeline", ingested.root, "--start", "yesterday")
    assert bad.exit_code == 2 and "is not a time" in bad.output


def test_exports(ingested, run, tmp_path):
    with CaseDatabase(ingested.root / "analysis.duckdb", read_only=True) as db:
        events = db.count("events")
    ts_file = tmp_path / "t.jsonl"
    assert run("export", ingested.root, "--format", "timesketch", "--out", ts_file).exit_code == 0
    docs = [json.loads(x) for x in ts_file.read_text().splitlines()]
    assert len(docs) == events
    assert {"message", "datetime", "timestamp", "timestamp_desc"} <= set(docs[0])
    l2t = tmp_path / "t.csv"
    run("export", ingested.root, "--format", "l2tcsv", "--out", l2t)
    rows = list(csv.reader(l2t.open()))
    assert len(rows[0]) == 17 and rows[0][0] == "date" and len(rows) == events + 1
    assert all(len(r) == 17 for r in rows)
    body = tmp_path / "t.body"
    run("export", ingested.root, "--format", "bodyfile", "--out", body)
    line = body.read_text().splitlines()[0].split("|")
    assert len(line) == 11 and line[3].startswith("-r")
    pq = tmp_path / "pq"
    assert run("export", ingested.root, "--format", "parquet", "--out", pq).exit_code == 0
    parts = sorted(p.relative_to(pq).parts[:2] for p in pq.rglob("*.parquet"))
    assert parts and all(a.startswith("host=") and b.startswith("day=") for a, b in parts)
    again = run("export", ingested.root, "--format", "l2tcsv", "--out", l2t)
    assert again.exit_code == 2 and "already exists" in again.output


def test_scan_finds_rule_matches_including_decompressed(ingested, keyring, run, tmp_path):
    rules = tmp_path / "rules.yar"
    rules.write_text('rule attacker_ip { strings: $a = "203.0.113.45" condition: $a }\n'
                     'rule old_rotation { strings: $a = "session opened" condition: $a }\n')
    result = run("scan", ingested.root, "--rules", rules, "--key", keyring.alice.private,
                 "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["matches"] > 0 and summary["errors"] == 0
    with CaseDatabase(ingested.root / "analysis.duckdb", read_only=True) as db:
        _, rows = db.execute("SELECT DISTINCT member_path FROM yara_matches "
                             "WHERE decompressed")
        assert any(r[0].endswith(".gz") for r in rows)
        _, rows = db.execute("SELECT count(*) FROM events WHERE event_type = 'yara_match'")
        assert rows[0][0] == summary["matches"]
    assert ingested.ledger().entries()[-1].action == "yara_scanned"
    again = run("scan", ingested.root, "--rules", rules, "--key", keyring.alice.private)
    assert "already scanned" in again.output


def test_rules_that_do_not_compile_name_file_and_line(ingested, keyring, run):
    path = upstream_path("yara/unsupported_rules.yara")
    result = run("scan", ingested.root, "--rules", path, "--key", keyring.alice.private)
    assert result.exit_code == 2
    assert result.output == (
        f'Error: rules {path} line 6: invalid field name "number_of_streams"\n')


def test_rules_needing_thor_externals_compile(ingested, keyring, run):
    path = upstream_path("yara/gen_susp_obfuscation.yar")
    result = run("scan", ingested.root, "--rules", path, "--key", keyring.alice.private)
    assert result.exit_code == 0, result.output


def test_scan_before_ingest_creates_the_database(web01_case, keyring, run, tmp_path):
    rules = tmp_path / "r.yar"
    rules.write_text('rule x { strings: $a = "root" condition: $a }\n')
    assert run("scan", web01_case.root, "--rules", rules, "--key",
               keyring.alice.private).exit_code == 0
    assert Path(web01_case.root / "analysis.duckdb").exists()
