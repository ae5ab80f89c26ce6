"""analyze on the ingested web01 case: the findings its ground truth names, the same ids on
every run, a ledger entry per run, marks that survive, and refusal of unverified evidence."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from sealtrail.analysis.ingest import IngestRefused, ingest_case
from sealtrail.analysis.store import CaseDatabase
from sealtrail.custody.case import Case
from sealtrail.errors import AnalysisError, UsageError
from sealtrail.findings.analyze import analyze_case, mark_finding
from sealtrail.findings.listing import list_findings, show_finding, why_empty
from tests.conftest import collect
from tests.custody.tamper import flip_byte
from tests.shared_data import upstream_path

TRUTH = Path(__file__).resolve().parents[2] / "fixtures" / "hosts" / "web01.truth.json"
KEY = ("rule_id", "host", "user_name", "src_ip", "group_key")


def produced(case: Case) -> list[dict]:
    with CaseDatabase(case.root / "analysis.duckdb", read_only=True) as db:
        return list_findings(db)


def test_web01_gets_exactly_the_findings_of_its_ground_truth(ingested, keyring):
    report = analyze_case(ingested, keyring.alice.key, pinned=[keyring.alice.key.public])
    expected = json.loads(TRUTH.read_text())["findings"]
    attack = {tuple(f[k] for k in KEY) for f in expected["attack"] + expected["weaknesses"]}
    noise = {tuple(f[k] for k in KEY) for f in expected["noise"]}
    got = {tuple(f[k] for k in KEY) for f in produced(ingested)}
    assert attack - got == set(), "missing findings"
    assert got - attack - noise == set(), "findings the ground truth does not name"
    assert report.run.counts()["failed"] == 0
    # every evidence row leads to an event of a sealed member, with its SHA-256
    with CaseDatabase(ingested.root / "analysis.duckdb", read_only=True) as db:
        for finding in list_findings(db):
            rows = show_finding(db, finding["finding_id"])["evidence"]
            assert len(rows) == finding["evidence_count"] > 0
            assert all(r["member_sha256"] and r["record_ref"] and r["bundle_id"] for r in rows)


def test_rerun_gives_the_same_ids_and_a_new_ledger_entry_and_keeps_marks(ingested, keyring):
    first = analyze_case(ingested, keyring.alice.key)
    before = {f["finding_id"]: f for f in produced(ingested)}
    target = next(i for i, f in before.items() if f["src_ip"] == "203.0.113.200")
    index = mark_finding(ingested, keyring.alice.key, target, "false_positive", "noise")
    second = analyze_case(ingested, keyring.alice.key)
    after = {f["finding_id"]: f for f in produced(ingested)}
    assert after.keys() == before.keys()
    assert after[target]["mark"] == "false_positive" and after[target]["mark_note"] == "noise"
    assert second.run.run_id != first.run.run_id
    entries = ingested.ledger().entries()
    assert [e.action for e in entries[-3:]] == ["analyzed", "finding_marked", "analyzed"]
    assert entries[index].fields["subject"] == {"finding_id": target}
    details = entries[-1].fields["details"]
    assert entries[-1].fields["subject"] == {"run_id": second.run.run_id}
    assert details["rule_sets"] == second.rule_sets and len(details["rule_sets"]["builtin"]) == 64
    assert details["findings"] == len(after) and details["outcomes"] == second.run.counts()
    assert details["database"]["sha256"] == second.database_sha256
    assert details["forced"] is False


def test_analyze_refuses_a_case_that_fails_verification(ingested, keyring):
    bundle = next(ingested.bundles_dir.glob("*.stb"))
    flip_byte(bundle, "data/var/log/auth.log")
    with pytest.raises(IngestRefused, match="refusing to analyze evidence that fails"):
        analyze_case(ingested, keyring.alice.key)
    report = analyze_case(ingested, keyring.alice.key, force=True)
    assert report.forced
    assert ingested.ledger().entries()[-1].fields["details"]["forced"] is True


def test_analyze_needs_the_database_and_the_sigma_module(web01_case, keyring, monkeypatch):
    with pytest.raises(AnalysisError, match="run 'sealtrail ingest' first"):
        analyze_case(web01_case, keyring.alice.key)
    with pytest.raises(UsageError, match="severe: not one of"):
        analyze_case(web01_case, keyring.alice.key, levels=("severe",))


def test_mark_refuses_an_unknown_finding_and_an_empty_note(ingested, keyring):
    analyze_case(ingested, keyring.alice.key)
    with pytest.raises(UsageError, match="no finding F-0000000000000000"):
        mark_finding(ingested, keyring.alice.key, "F-0000000000000000", "confirmed", "x")
    some = produced(ingested)[0]["finding_id"]
    with pytest.raises(UsageError, match="needs a --note"):
        mark_finding(ingested, keyring.alice.key, some, "confirmed", " ")


def test_empty_result_says_why(tmp_path):
    with CaseDatabase(tmp_path / "analysis.duckdb") as db:
        assert why_empty(db) == ("no events in the case database: ingest the case's bundles "
                                 "first")


WINDOWS_LOGS = ("smb-password-guessing-security.evtx", "security.evtx",
                "metasploit-psexec-native-target-system.evtx", "new-user-security.evtx")


def test_windows_rules_fire_on_upstream_security_and_system_logs(tmp_path, keyring):
    host = tmp_path / "host"
    for name in WINDOWS_LOGS:
        (host / "logs").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(upstream_path(f"evtx/{name}"), host / "logs" / name)
    case = Case.init(tmp_path / "case", title="w", examiner="Alice", key=keyring.alice.key)
    collect(case, keyring.alice.key, host, paths=("logs/**",))
    ingest_case(case, keyring.alice.key, workers=1)
    report = analyze_case(case, keyring.alice.key)
    outcomes = {o.rule_id: o.outcome for o in report.run.outcomes}
    got = {(f["rule_id"], f["src_ip"]) for f in produced(case)}
    # an SMB password guessing run, Metasploit's getsystem service, cleared logs, a new user
    assert ("sealtrail-windows-brute-force", "192.168.198.149") in got
    assert outcomes["sealtrail-windows-suspicious-service"] == "matched"
    assert outcomes["sealtrail-windows-log-cleared"] == "matched"
    assert outcomes["sealtrail-account-created"] == "matched"
    # Linux rules have no data here and say so
    assert outcomes["sealtrail-ssh-brute-force"] == "not_applicable"
