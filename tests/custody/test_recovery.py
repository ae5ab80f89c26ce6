"""Tests of custody/recovery.py: the next writer finishes a collection a crash interrupted.

Each case starts from one good collection whose ``bundle_sealed`` entry is then removed: the
state a SIGKILL between the bundle's rename to ``.stb`` and that append leaves
(tests/acquisition/test_crash_recovery.py kills real commands at every step).
"""

from __future__ import annotations

import logging
from pathlib import Path

from sealtrail.custody.canonical import parse_canonical_json
from sealtrail.custody.case import Case
from sealtrail.custody.recovery import collection_running
from sealtrail.custody.verify import check_case
from sealtrail.errors import MemberUnexpected
from tests.conftest import Keyring, collect
from tests.custody.tamper import flip_byte


def interrupted_after_seal(tmp_path: Path, keyring: Keyring, host: Path,
                           trust_bob: bool = False) -> tuple[Case, Path, dict]:
    """A case whose last collection sealed its bundle but never recorded it."""
    case = Case.init(tmp_path / "case", title="t", examiner="Alice", key=keyring.alice.key,
                     trust=[keyring.bob.key.public] if trust_bob else [])
    result = collect(case, keyring.alice.key, host, paths=("srv/data/**",))
    lines = case.ledger_path.read_bytes().split(b"\n")[:-1]
    sealed = parse_canonical_json(lines[-1])
    assert sealed["action"] == "bundle_sealed"
    case.ledger_path.write_bytes(b"".join(line + b"\n" for line in lines[:-1]))
    return case, Path(result.bundle_path), sealed


def actions(case: Case) -> list[str | None]:
    return [e.action for e in case.ledger().entries()]


def test_sealed_unrecorded_bundle_fails_verify_until_the_next_writer_records_it(
        tmp_path, keyring, linux_host):
    case, bundle, sealed = interrupted_after_seal(tmp_path, keyring, linux_host)
    before = check_case(case.root, [keyring.alice.key.public])
    (problem,) = before.problems
    assert isinstance(problem, MemberUnexpected)
    assert problem.where == f"bundle {bundle.name}"
    assert "no ledger entry seals it" in problem.message
    assert "sealtrail ledger repair" in problem.message
    assert keyring.alice.key.key_id in problem.message

    done = case.repair(keyring.alice.key)
    (entry,) = done.collections
    assert entry.action == "bundle_sealed"
    assert entry.fields["subject"] == sealed["subject"]
    assert entry.fields["details"] == {**sealed["details"], "recovered": True}
    assert entry.fields["custody"] == sealed["custody"]
    assert check_case(case.root, [keyring.alice.key.public]).ok
    assert not case.repair(keyring.alice.key)  # nothing left to do


def test_another_key_records_nothing_and_names_the_key_needed(
        tmp_path, keyring, linux_host, caplog):
    case, bundle, _ = interrupted_after_seal(tmp_path, keyring, linux_host, trust_bob=True)
    before = actions(case)
    with caplog.at_level(logging.WARNING, logger="sealtrail.custody.recovery"):
        case.writer(keyring.bob.key).append(keyring.bob.key, "note", role="examiner")
    assert actions(case) == [*before, "note"]
    assert bundle.name.removesuffix(".stb") in caplog.text
    assert keyring.alice.key.key_id in caplog.text
    assert "ledger repair" in caplog.text
    assert bundle.exists()


def test_bundle_that_fails_its_check_is_set_aside_and_recorded_as_failed(
        tmp_path, keyring, linux_host):
    case, bundle, _ = interrupted_after_seal(tmp_path, keyring, linux_host)
    flip_byte(bundle, "customers.csv")
    damaged = bundle.read_bytes()
    (entry,) = case.repair(keyring.alice.key).collections
    assert entry.action == "collection_failed"
    assert "failed its check" in entry.fields["details"]["reason"]
    assert entry.fields["details"]["recovered"] is True
    kept = bundle.with_name(entry.fields["details"]["partial_file"])
    assert kept.name.endswith(".stb.unsealed")
    assert kept.read_bytes() == damaged
    assert not bundle.exists()
    report = check_case(case.root, [keyring.alice.key.public])
    assert report.ok, report.problems
    assert any("unsealed collection left in" in n for n in report.notices)


def test_partial_bundle_is_recorded_as_failed(tmp_path, keyring, linux_host):
    case, bundle, _ = interrupted_after_seal(tmp_path, keyring, linux_host)
    partial = bundle.with_name(bundle.name + ".partial")
    bundle.rename(partial)
    (entry,) = case.repair(keyring.alice.key).collections
    assert entry.action == "collection_failed"
    assert entry.fields["details"]["partial_file"] == partial.name
    assert partial.exists()
    assert check_case(case.root, [keyring.alice.key.public]).ok


def test_collection_of_a_revoked_key_is_recorded_as_failed_by_another(
        tmp_path, keyring, linux_host):
    case, bundle, _ = interrupted_after_seal(tmp_path, keyring, linux_host, trust_bob=True)
    case.writer(keyring.bob.key).append(
        keyring.bob.key, "key_revoked", role="examiner",
        details={"key_id": keyring.alice.key.key_id, "reason": "lost"})
    (entry,) = case.repair(keyring.bob.key).collections
    assert entry.action == "collection_failed"
    assert "no longer trusts" in entry.fields["details"]["reason"]
    assert not bundle.exists()
    assert check_case(case.root, [keyring.alice.key.public]).ok


def test_a_running_collection_is_left_alone(tmp_path, keyring, linux_host):
    case, bundle, _ = interrupted_after_seal(tmp_path, keyring, linux_host)
    with collection_running(case.root):
        assert not case.repair(keyring.alice.key).collections
    assert bundle.exists()
    assert case.repair(keyring.alice.key).collections
