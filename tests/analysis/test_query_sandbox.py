"""``query`` and ``timeline``: SQL a user types reads the case database and nothing else.

Each attack is a statement that, on a plain read-only DuckDB connection, wrote a host file,
read one (the examiner's private key among them), attached another database, reached for an
extension or undid a setting. Each must be refused with one ``Error: query refused:`` line and
exit 2, and leave every file as it was.
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from sealtrail.analysis.store import CaseDatabase
from sealtrail.cli.main import cli

MARKER = "SECRET-MARKER-7f3a"
DOCS = Path(__file__).resolve().parents[2] / "docs"


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every file and folder under ``root``, with the bytes of each file."""
    return {str(p.relative_to(root)): None if p.is_dir() else p.read_bytes()
            for p in sorted(root.rglob("*"))}


@pytest.fixture
def host(tmp_path, ingested, keyring):
    """The host's files an attacker's SQL goes for: a secret in every format DuckDB reads, a
    private key written by sealtrail, and another DuckDB database."""
    files = tmp_path / "host"
    files.mkdir()
    (files / "secret.txt").write_text(MARKER + "\n")
    (files / "secret.csv").write_text(f"secret\n{MARKER}\n")
    (files / "secret.json").write_text(json.dumps({"secret": MARKER}) + "\n")
    pq.write_table(pa.table({"secret": [MARKER]}), files / "secret.parquet")
    with CaseDatabase(files / "other.duckdb") as other:
        other.execute(f"CREATE TABLE s AS SELECT '{MARKER}' AS secret")
    return {"case": ingested.root, "files": files, "key": keyring.alice.private,
            "seed": base64.b64encode(keyring.alice.key.seed).decode(),
            "ledger": ingested.root / "ledger.jsonl"}


ATTACKS = {
    # writes
    "copy_over_the_ledger": "COPY (SELECT 'forged') TO '{ledger}' (FORMAT csv, HEADER false)",
    "copy_to_a_new_file": "COPY events TO '{files}/new.csv'",
    "export_database": "EXPORT DATABASE '{files}/exported'",
    "attach_read_write_creates_a_database": "ATTACH '{files}/new.duckdb' AS n (READ_WRITE)",
    "create_table": "CREATE TABLE planted (x INTEGER)",
    "insert": "INSERT INTO events (host) VALUES ('planted')",
    # reads
    "attach_another_database_read_only": "ATTACH '{files}/other.duckdb' AS o (READ_ONLY)",
    "read_text_of_the_private_key": "SELECT * FROM read_text('{key}')",
    "read_text": "SELECT content FROM read_text('{files}/secret.txt')",
    "read_blob": "SELECT content FROM read_blob('{files}/secret.txt')",
    "read_csv": "SELECT * FROM read_csv('{files}/secret.csv')",
    "read_parquet": "SELECT * FROM read_parquet('{files}/secret.parquet')",
    "read_json": "SELECT * FROM read_json('{files}/secret.json')",
    "replacement_scan_of_a_file_name": "SELECT * FROM '{files}/secret.csv'",
    "glob": "SELECT * FROM glob('{files}/*')",
    # extensions
    "install": "INSTALL httpfs",
    "load": "LOAD httpfs",
    # settings
    "set_external_access_back_on": "SET enable_external_access = true",
    "unlock_the_configuration": "SET lock_configuration = false",
    "reset_the_lock": "RESET lock_configuration",
    "pragma": "PRAGMA enable_external_access = true",
    "move_the_temp_directory": "SET temp_directory = '{files}'",
    "unlock_then_read": "SET lock_configuration = false; "
                        "SELECT content FROM read_text('{files}/secret.txt')",
}




@pytest.mark.parametrize("attack", list(ATTACKS))
def test_query_refuses(host, tmp_path, attack):
    sql = ATTACKS[attack].format(**host)
    before = snapshot(tmp_path)
    result = run("query", host["case"], sql)
    assert result.exit_code == 2, result.output
    assert re.fullmatch(r"Error: query refused: .+ \(query and timeline only read the case "
                        r"database\)\n", result.output), result.output
    assert MARKER not in result.output and host["seed"] not in result.output
    assert snapshot(tmp_path) == before


def test_refused_sql_with_out_leaves_no_file(host, tmp_path):
    out = tmp_path / "result.csv"
    result = run("query", host["case"], "SELECT * FROM read_text('{key}')".format(**host),
                 "--format", "csv", "--out", out)
    assert result.exit_code == 2 and result.output.startswith("Error: query refused:")
    assert not out.exists()


def test_sql_still_reads_the_case_database(host):
    """Temporary tables live in memory (or the private scratch folder) and are allowed."""
    sql = ("CREATE TEMP TABLE t AS SELECT count(*) AS n FROM events; "
           "SELECT n > 0 AS any FROM t")
    result = run("query", host["case"], sql, "--format", "jsonl")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"any": True}


def documented_queries() -> list[str]:
    """Every statement of the SQL blocks in docs/schema.md, and README's query example."""
    text = (DOCS / "schema.md").read_text()
    blocks = re.findall(r"```sql\n(.*?)```", text, re.S)
    statements = [s.strip() for b in blocks for s in b.split(";") if s.strip()]
    readme = (DOCS.parent / "README.md").read_text()
    statements += re.findall(r'sealtrail query case1 "([^"]+)"', readme)
    return statements


def test_documented_queries_run_in_the_sandbox(host):
    queries = documented_queries()
    assert len(queries) >= 4
    for sql in queries:
        result = run("query", host["case"], "--", sql)  # "--": the SQL may open with a comment
        assert result.exit_code == 0, (sql, result.output)


@pytest.mark.parametrize(("command", "fmt"), [
    ("query", "table"), ("query", "csv"), ("query", "parquet"),
    ("timeline", "jsonl"), ("timeline", "json"), ("timeline", "parquet"),
])
def test_out_refuses_an_existing_file(host, tmp_path, command, fmt):
    out = tmp_path / "existing"
    out.write_bytes(b"keep me")
    args = ["SELECT 1"] if command == "query" else []
    result = run(command, host["case"], *args, "--format", fmt, "--out", out)
    assert result.exit_code == 2
    assert result.output == f"Error: {out} already exists\n"
    assert out.read_bytes() == b"keep me"


def test_out_refuses_a_symlink_even_to_nowhere(host, tmp_path):
    out = tmp_path / "link"
    out.symlink_to(tmp_path / "target")
    result = run("query", host["case"], "SELECT 1", "--out", out)
    assert result.exit_code == 2 and result.output == f"Error: {out} already exists\n"
    assert not (tmp_path / "target").exists()


def test_timeline_parquet_honours_filters(host, tmp_path):
    out = tmp_path / "t.parquet"
    result = run("timeline", host["case"], "--type", "file_modified", "--format", "parquet",
                 "--out", out)
    assert result.exit_code == 0, result.output
    types = set(pq.read_table(out).column("event_type").to_pylist())
    assert types == {"file_modified"}
