"""sealtrail analyze and sealtrail findings: exit codes, summary lines, the empty cases."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from sealtrail.cli.main import cli
from sealtrail.findings import analyze as analyze_module
from sealtrail.findings.model import RuleFailure, RuleSource


@pytest.fixture
def run():
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(cli, [str(a) for a in args])

    return invoke


def test_analyze_prints_outcomes_and_findings_by_level(ingested, keyring, run):
    result = run("analyze", ingested.root, "--key", keyring.alice.private,
                 "--trust", keyring.alice.public)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("analysis ") and "rules over" in lines[0]
    assert [line.split()[0] for line in lines[1:5]] == ["matched", "no_match",
                                                        "not_applicable", "failed"]
    assert "critical (2)" in lines
    assert any("SSH logon succeeded from an address that was brute forcing" in line
               for line in lines)
    listed = run("findings", ingested.root, "--format", "json")
    findings = json.loads(listed.output)
    assert listed.exit_code == 0 and len(findings) == int(lines[5].split()[0])
    first = findings[0]["finding_id"]
    shown = run("findings", "show", ingested.root, first)
    assert shown.exit_code == 0 and f"finding_id      {first}" in shown.output
    assert "sha256 " in shown.output and "line:" in shown.output
    marked = run("findings", "mark", ingested.root, first, "--confirmed", "--note", "seen",
                 "--key", keyring.alice.private)
    assert marked.exit_code == 0 and marked.output.startswith(f"marked {first} confirmed")
    assert "[confirmed]" in run("findings", ingested.root).output


def test_findings_before_analyze_says_why(ingested, run):
    result = run("findings", ingested.root)
    assert result.exit_code == 0
    assert result.output == "no findings: no analysis has run yet: run 'sealtrail analyze CASE'\n"


def test_analyze_with_sigma_before_the_sigma_module_exists_is_a_usage_error(
        ingested, keyring, run):
    result = run("analyze", ingested.root, "--sigma", "rules/", "--key", keyring.alice.private)
    assert result.exit_code == 2
    assert "Error: --sigma needs sealtrail.findings.sigma" in result.output


def test_analyze_exits_3_when_no_rule_could_run(ingested, keyring, run, monkeypatch):
    broken = RuleSource("builtin", failures=(RuleFailure("file:x.sql", "x.sql", "builtin",
                                                         "x.sql: no /* YAML */ header"),))
    monkeypatch.setattr(analyze_module.builtin, "load_builtin", lambda: broken)
    result = run("analyze", ingested.root, "--key", keyring.alice.private)
    assert result.exit_code == 3
    assert "    file:x.sql: x.sql: no /* YAML */ header" in result.output
    assert "no findings: no rule could run in the last analysis" in result.output
    assert result.output.rstrip().endswith(
        "Error: no rule could run (1 rules: 0 matched, 0 no_match, 0 not_applicable, 1 failed)")


def test_findings_show_of_an_unknown_id_is_a_usage_error(ingested, keyring, run):
    run("analyze", ingested.root, "--key", keyring.alice.private)
    result = run("findings", "show", ingested.root, "F-nope")
    assert result.exit_code == 2 and "Error: no finding F-nope" in result.output
