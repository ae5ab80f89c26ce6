"""Ingest: verification first, every member accounted for, provenance, ledger entry."""

from __future__ import annotations

import os
import time

import pytest

from sealtrail.analysis import ingest as ingest_module
from sealtrail.analysis.ingest import IngestRefused, ingest_case
from sealtrail.analysis.parsers import registry
from sealtrail.analysis.records import Event, Rejection
from sealtrail.analysis.store import CaseDatabase
from sealtrail.custody.case import Case
from sealtrail.custody.verify import check_case
from tests.custody.tamper import flip_byte


def db_of(case):
    return CaseDatabase(case.root / "analysis.duckdb", read_only=True)


def test_ingest_accounts_for_every_member_and_records_a_ledger_entry(ingested, keyring):
    with db_of(ingested) as db:
        _, rows = db.execute(
            "SELECT count(*), count(*) FILTER (WHERE member_name IS NOT NULL) FROM artifacts")
        total, members = rows[0]
        assert members >= 30 and total >= members
        _, rows = db.execute(
            "SELECT records_seen, records_loaded, records_rejected FROM artifacts "
            "WHERE parser IS NOT NULL")
        assert all(seen == loaded + rejected for seen, loaded, rejected in rows)
        # every event points back to a member of a sealed bundle, with its SHA-256
        _, rows = db.execute(
            "SELECT count(*) FROM events e LEFT JOIN artifacts a "
            "ON e.bundle_id = a.bundle_id AND e.member_path = a.member_path "
            "WHERE a.member_path IS NULL OR (e.member_sha256 IS NOT NULL "
            "AND e.member_sha256 <> a.sha256)")
        assert rows[0][0] == 0
        _, rows = db.execute("SELECT min(ts), count(*) FROM events")
        assert rows[0][0].tzinfo is not None and rows[0][1] > 0
    entry = ingested.ledger().entries()[-1]
    assert entry.action == "ingested"
    details = entry.fields["details"]
    assert details["database"]["sha256"] and details["rows"]["events"] > 0
    assert "manifest_fs" in details["parsers"]
    assert check_case(ingested.root, [keyring.alice.key.public]).ok


def test_second_ingest_skips_bundles_already_in_the_database(ingested, keyring):
    with db_of(ingested) as db:
        before = db.count("events")
    report = ingest_case(ingested, keyring.alice.key, workers=1)
    assert report.bundles == [] and len(report.skipped) == 1
    with db_of(ingested) as db:
        assert db.count("events") == before


def _uids(case) -> list[tuple]:
    with db_of(case) as db:
        return db.execute("SELECT event_uid, bundle_id, member_path, record_ref, ts, ts_desc, "
                          "event_type, message FROM events ORDER BY event_uid")[1]


def test_event_uid_is_unique_and_the_same_in_every_rebuild(ingested, keyring):
    first = _uids(ingested)
    assert len({row[0] for row in first}) == len(first) > 0
    assert all(row[0] and len(row[0]) == 32 for row in first)
    # file-system times share one manifest: reference; their ids still differ
    manifest_refs = [row for row in first if row[3].startswith("manifest:")]
    assert len({row[3] for row in manifest_refs}) < len(manifest_refs)
    (ingested.root / "analysis.duckdb").unlink()
    ingest_case(ingested, keyring.alice.key, workers=1)
    assert _uids(ingested) == first


def test_database_without_event_uid_gets_it_as_an_ingest_would(ingested):
    expected = _uids(ingested)
    with CaseDatabase(ingested.root / "analysis.duckdb") as db:
        db.execute("ALTER TABLE events DROP COLUMN event_uid")
    with CaseDatabase(ingested.root / "analysis.duckdb"):
        pass
    assert _uids(ingested) == expected


def test_ingest_refuses_evidence_that_fails_verification(web01_case, keyring):
    bundle = next(web01_case.bundles_dir.glob("*.stb"))
    name = flip_byte(bundle, "var/log/auth.log")
    with pytest.raises(IngestRefused) as caught:
        ingest_case(web01_case, keyring.alice.key, workers=1)
    assert f"member {name}: SHA-256 differs" in str(caught.value)
    assert not (web01_case.root / "analysis.duckdb").exists()
    assert web01_case.ledger().entries()[-1].action == "bundle_sealed"


def test_forced_ingest_says_so_in_the_ledger(web01_case, keyring):
    bundle = next(web01_case.bundles_dir.glob("*.stb"))
    flip_byte(bundle, "var/log/auth.log")
    report = ingest_case(web01_case, keyring.alice.key, force=True, workers=1)
    assert report.forced and report.problems
    details = web01_case.ledger().entries()[-1].fields["details"]
    assert details["forced"] is True
    assert "SHA-256 differs" in details["verification_problems"][0]


class _Crash:
    NAME, VERSION, DESCRIPTION = "crash", "1", "dies like a segfaulting native parser"

    def check(self, member, head):
        return member.file_name == "syslog"

    def parse(self, member):
        yield Event(ts=__import__("datetime").datetime.now(__import__("datetime").UTC),
                    ts_desc="x", event_type="other", message="before the crash",
                    record_ref="line:1")
        os.abort()


class _Hang:
    NAME, VERSION, DESCRIPTION = "hang", "1", "loops forever on crafted input"

    def check(self, member, head):
        return member.file_name == "kern.log"

    def parse(self, member):
        time.sleep(3600)
        yield Rejection("line:1", "never")


class _Raise:
    NAME, VERSION, DESCRIPTION = "raise", "1", "raises half way"

    def check(self, member, head):
        return member.file_name == "dpkg.log"

    def parse(self, member):
        yield Rejection("line:1", "bad line")
        raise ValueError("broken record structure")


def test_crashing_hanging_and_raising_parsers_are_contained(web01_case, keyring, monkeypatch,
                                                             forked_workers):
    monkeypatch.setattr(registry, "PARSER_CLASSES", [_Crash, _Hang, _Raise])
    monkeypatch.setattr(registry, "REGISTRY", registry.build_registry([_Crash, _Hang, _Raise]))
    monkeypatch.setattr(ingest_module, "REGISTRY", registry.REGISTRY)
    started = time.monotonic()
    report = ingest_case(web01_case, keyring.alice.key, workers=2, timeout=lambda size: 3.0)
    assert time.monotonic() - started < 60
    failures = {a.member_path: a for a in report.accounts if a.failure}
    assert "died" in failures["/var/log/syslog"].failure
    assert "timed out after 3 s" in failures["/var/log/kern.log"].failure
    raised = failures["/var/log/dpkg.log"]
    assert "ValueError: broken record structure" in raised.failure
    assert raised.seen == 2 and raised.rejected == 2 and raised.parser == "raise"
    with db_of(web01_case) as db:
        _, rows = db.execute("SELECT member_path, reason FROM ingest_errors ORDER BY 1")
        reasons = dict(rows[i] for i in range(len(rows)) if rows[i][1].startswith("parser"))
        assert set(reasons) == {"/var/log/syslog", "/var/log/kern.log", "/var/log/dpkg.log"}
        assert db.count("artifacts") > 30  # everything else went on


def test_ingest_that_fails_mid_load_leaves_nothing_half_loaded(web01_case, keyring,
                                                               monkeypatch, tmp_path):
    import shutil

    from sealtrail.analysis.store import CaseDatabase as Store

    clean = tmp_path / "clean"
    shutil.copytree(web01_case.root, clean)
    real_load = Store.load_parquet

    def fail_on_artifacts(self, table, files):
        if table == "artifacts":
            raise OSError(28, "No space left on device")
        return real_load(self, table, files)

    monkeypatch.setattr(Store, "load_parquet", fail_on_artifacts)
    with pytest.raises(OSError, match="No space left"):
        ingest_case(web01_case, keyring.alice.key, workers=1)
    with db_of(web01_case) as db:
        assert db.count("events") == 0 and db.ingested_bundles() == set()
    monkeypatch.setattr(Store, "load_parquet", real_load)
    again = ingest_case(web01_case, keyring.alice.key, workers=1)
    reference = ingest_case(Case.load(clean), keyring.alice.key, workers=1)
    assert again.events_added == reference.events_added > 0
