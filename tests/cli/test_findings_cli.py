"""sealtrail analyze and sealtrail findings: exit codes, summary lines, the empty cases."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from sealtrail.cli.main import cli


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


SSHD_RULE = """title: SSH password failures (test rule)
id: 7a1c2d9e-5b0f-4d3e-9c21-000000000001
status: test
level: medium
author: sealtrail tests
tags:
    - attack.credential-access
    - attack.t1110
logsource:
    product: linux
    service: sshd
detection:
    keywords:
        - 'Failed password'
    condition: keywords
"""


def test_analyze_runs_sigma_rules_beside_the_built_in_pack(ingested, keyring, run, tmp_path):
    rules = tmp_path / "sigma"
    rules.mkdir()
    (rules / "sshd_failed.yml").write_text(SSHD_RULE)
    (rules / "broken.yml").write_text("title: [unclosed\n")
    result = run("analyze", ingested.root, "--sigma", rules, "--key", keyring.alice.private,
                 "--trust", keyring.alice.public)
    assert result.exit_code == 0, result.output
    findings = json.loads(run("findings", ingested.root, "--format", "json").output)
    sigma = [f for f in findings if f["rule_source"].startswith("sigma:")]
    assert {f["title"] for f in sigma} == {"SSH password failures (test rule)"}
    # one finding per (host, account, address); the brute force in auth.log is most of them
    from_attacker = [f["evidence_count"] for f in sigma if f["src_ip"] == "203.0.113.45"]
    assert sum(from_attacker) >= 200
    assert all("T1110" in f["techniques"] for f in sigma)
    failed = [line for line in result.output.splitlines() if line.split()[:1] == ["failed"]]
    assert failed and int(failed[0].split()[1]) >= 1  # broken.yml, reported, the rest ran


def test_analyze_json_is_the_same_run_as_the_ledger_records(ingested, keyring, run):
    result = run("analyze", ingested.root, "--json", "--key", keyring.alice.private,
                 "--trust", keyring.alice.public)
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["forced"] is False
    assert sum(report["outcomes"].values()) == len(report["rules"])
    assert all(r["outcome"] in ("matched", "no_match", "not_applicable", "failed")
               for r in report["rules"])
    entry = json.loads((ingested.root / "ledger.jsonl").read_text().splitlines()[
        report["ledger_entry"]])
    assert entry["action"] == "analyzed"
    assert entry["subject"]["run_id"] == report["run_id"]
    assert entry["details"]["outcomes"] == report["outcomes"]
    listed = json.loads(run("findings", ingested.root, "--format", "json").output)
    assert [f["finding_id"] for f in report["findings"]] == [f["finding_id"] for f in listed]
    # the same rules over the same case: the same findings and ids, a new ledger entry
    again = json.loads(run("analyze", ingested.root, "--json", "--key", keyring.alice.private,
                           "--trust", keyring.alice.public).output)
    assert [f["finding_id"] for f in again["findings"]] == [
        f["finding_id"] for f in report["findings"]]
    assert again["ledger_entry"] > report["ledger_entry"]
