"""The built-in pack: every rule file parses and runs; bad files are failures; the files ship
in the wheel."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from sealtrail.analysis.store import CaseDatabase
from sealtrail.findings import builtin
from sealtrail.findings.builtin import (
    RuleFileError,
    load_builtin,
    parse_rule,
    rule_files,
    view_files,
)
from sealtrail.findings.engine import run_rules
from sealtrail.findings.model import EVIDENCE_COLUMNS, RuleSource

ROOT = Path(__file__).resolve().parents[2]
HEADER = """/*
id: t-1
title: a test rule
level: high
status: test
tactics: [persistence]
techniques: [T1098]
description: d
false_positives: [none]
author: sealtrail
*/
"""
SQL = "SELECT NULL AS event_uid"


@pytest.mark.parametrize("file", rule_files(), ids=lambda f: f.name)
def test_every_builtin_rule_parses_and_runs_on_an_empty_case(file, tmp_path):
    rule = parse_rule(file.read_text(), file.name)
    meta = rule.meta
    assert meta.author == "sealtrail" and meta.source == "builtin"
    assert meta.rule_id.startswith("sealtrail-") and meta.tactics and meta.techniques
    views = load_builtin().views
    with CaseDatabase(tmp_path / "analysis.duckdb") as db:
        report = run_rules(db, [RuleSource("builtin", views=views, rules=(rule,))], "r")
        outcome = report.outcomes[0]
        if rule.needs or rule.sources:
            assert outcome.outcome == "not_applicable"
            # force it to run: the SQL must bind and return the contract's columns
            db.execute(f"CREATE OR REPLACE TEMP TABLE probe AS {rule.sql}")
            names = tuple(r[0] for r in db.execute("DESCRIBE probe")[1])
            assert names == EVIDENCE_COLUMNS
        else:
            assert outcome.outcome == "no_match", outcome.reason


def test_rule_ids_are_unique_and_nothing_fails_to_load():
    source = load_builtin()
    assert source.failures == ()
    ids = [r.meta.rule_id for r in source.rules]
    assert len(ids) == len(set(ids)) == len(rule_files())


@pytest.mark.parametrize(("text", "message"), [
    ("SELECT 1", "no /* YAML */ header at the top"),
    ("/* id: [unclosed */ SELECT 1", "header is not YAML"),
    ("/* just text */ SELECT 1", "header is not a YAML mapping"),
    (HEADER.replace("level: high\n", ""), "missing level"),
    (HEADER.replace("author:", "colour: red\nauthor:"), "unknown colour"),
    (HEADER.replace("level: high", "level: severe"), "level 'severe' is not one of"),
    (HEADER.replace("tactics: [persistence]", "tactics: persistence"),
     "tactics must be a list of texts"),
    (HEADER.replace("author:", "needs: [[Security]]\nauthor:") + SQL,
     "needs: ['Security'] is not"),
    (HEADER, "no SQL after the header"),
])
def test_bad_rule_file_is_refused_with_why(text, message):
    with pytest.raises(RuleFileError) as info:
        parse_rule(text, "x.sql")
    assert str(info.value).startswith(message)


def test_bad_file_in_the_pack_is_a_failure_and_the_rest_load(tmp_path):
    (tmp_path / "a.sql").write_text(HEADER + SQL)
    (tmp_path / "b.sql").write_text("SELECT 1")
    (tmp_path / "c.sql").write_text(HEADER + SQL)  # the same id again
    source = load_builtin(sorted(tmp_path.iterdir()), views=[])
    assert [r.meta.rule_id for r in source.rules] == ["t-1"]
    assert [(f.rule_id, f.reason) for f in source.failures] == [
        ("file:b.sql", "b.sql: no /* YAML */ header at the top"),
        ("t-1", "c.sql: id t-1 used twice")]


def test_pack_sha256_changes_with_any_rule_byte(tmp_path):
    (tmp_path / "a.sql").write_text(HEADER + SQL)
    before = builtin.pack_sha256([tmp_path / "a.sql"])
    (tmp_path / "a.sql").write_text(HEADER + SQL + " ")
    assert builtin.pack_sha256([tmp_path / "a.sql"]) != before


def test_rule_files_ship_in_the_wheel_and_load_from_it(tmp_path):
    # built from a copy with the installed setuptools (no network, no build/ in the checkout)
    src = tmp_path / "src"
    shutil.copytree(ROOT / "sealtrail", src / "sealtrail",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    subprocess.run([sys.executable, "-c", "from setuptools import build_meta as b; "
                    f"b.build_wheel({str(tmp_path)!r})"], cwd=src, check=True,
                   capture_output=True)
    wheel = next(tmp_path.glob("sealtrail-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    shipped = sorted(n.rsplit("/", 1)[-1] for n in names
                     if n.rsplit("/", 1)[0] == "sealtrail/findings/rules" and n.endswith(".sql"))
    assert shipped == sorted(f.name for f in rule_files())
    assert sorted(n for n in names if n.startswith("sealtrail/findings/rules/views/")) == \
        sorted(f"sealtrail/findings/rules/views/{f.name}" for f in view_files())
    # imported from the wheel itself (a zip on sys.path): importlib.resources finds the files
    probe = ("import sealtrail.findings.builtin as b; s = b.load_builtin(); "
             "print(b.__file__); print(len(s.rules)); print(len(s.views))")
    out = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True,
                         text=True, env={"PYTHONPATH": str(wheel), "PATH": "/usr/bin:/bin"},
                         cwd=tmp_path).stdout.splitlines()
    assert out[0].startswith(str(wheel)) and int(out[1]) == len(rule_files())
    assert int(out[2]) == len(view_files()) > 0


def test_docs_rules_md_has_a_row_for_every_rule_with_its_level():
    text = (ROOT / "docs" / "rules.md").read_text()
    rows = {line.split(" | ")[0].strip("| `"): line for line in text.splitlines()
            if line.startswith("| `sealtrail-")}
    rules = {r.meta.rule_id: r.meta for r in load_builtin().rules}
    assert rows.keys() == rules.keys()
    for rule_id, meta in rules.items():
        assert f"| {meta.title} | {meta.level} |" in rows[rule_id]
