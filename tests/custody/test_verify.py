"""Verifying a whole case: ledger attacks, checkpoints, bundles against their ledger entries."""

from __future__ import annotations

import base64
import hashlib
import shutil

import pytest

from sealtrail.custody.canonical import canonical_json, pae, parse_canonical_json
from sealtrail.custody.case import Case
from sealtrail.custody.ledger import ENTRY_PAYLOAD_TYPE, trusted_key_record
from sealtrail.custody.log_proofs import issue_checkpoint, prove_extends
from sealtrail.custody.verify import check_case
from sealtrail.errors import CheckpointInvalid, InconsistentLedger, LedgerBroken
from tests.conftest import collect


def lines_of(case: Case) -> list[bytes]:
    return case.ledger_path.read_bytes().splitlines()


def write_lines(case: Case, lines: list[bytes]) -> None:
    case.ledger_path.write_bytes(b"".join(line + b"\n" for line in lines))


def resign(fields: dict, key) -> bytes:
    body = canonical_json({k: v for k, v in fields.items() if k != "sig"})
    sig = base64.b64encode(key.sign(pae(ENTRY_PAYLOAD_TYPE, body))).decode()
    return canonical_json({**fields, "sig": sig})


def kinds(report) -> list[str]:
    return [type(p).__name__ for p in report.problems]


@pytest.fixture
def busy_case(sealed_case):
    """The sealed case with a few more custody entries after it."""
    ledger = sealed_case.case.ledger()
    for action in ("transferred", "received", "stored", "examined"):
        ledger.append(sealed_case.keyring.alice.key, action, role="examiner",
                      custody={"note": action})
    return sealed_case


def test_intact_case_verifies_with_pinned_key(busy_case):
    report = check_case(busy_case.case.root, [busy_case.keyring.alice.key.public])
    assert report.ok, [str(p) for p in report.problems]
    assert report.checked["ledger_entries"] == 7
    assert report.checked["bundles"] == 1
    assert not report.notices


def test_without_pinned_keys_the_report_says_trust_on_first_use(busy_case):
    report = check_case(busy_case.case.root)
    assert report.ok
    assert any("trust on first use" in n for n in report.notices)


def test_case_forged_with_attacker_key_fails_against_pinned_key(tmp_path, keyring, linux_host):
    forged = Case.init(tmp_path / "forged", title="web01 breach", examiner="Alice",
                       key=keyring.mallory.key)
    collect(forged, keyring.mallory.key, linux_host)
    report = check_case(forged.root, [keyring.alice.key.public])
    assert "UntrustedKey" in kinds(report)
    assert report.problems[0].where == "ledger entry 0"


def test_deleted_ledger_entry_is_reported_at_its_index(busy_case):
    lines = lines_of(busy_case.case)
    del lines[4]
    write_lines(busy_case.case, lines)
    report = check_case(busy_case.case.root, [busy_case.keyring.alice.key.public])
    assert not report.ok
    assert report.problems[0].where == "ledger entry 4"
    assert isinstance(report.problems[0], LedgerBroken)


def test_edited_ledger_entry_is_reported_at_its_index(busy_case):
    lines = lines_of(busy_case.case)
    lines[3] = lines[3].replace(b'"transferred"', b'"disposed"')
    write_lines(busy_case.case, lines)
    report = check_case(busy_case.case.root, [busy_case.keyring.alice.key.public])
    wheres = {(type(p).__name__, p.where) for p in report.problems}
    assert ("SignatureInvalid", "ledger entry 3") in wheres
    assert ("LedgerBroken", "ledger entry 4") in wheres  # its prev no longer matches


def test_two_swapped_ledger_entries_are_reported_at_their_indices(busy_case):
    lines = lines_of(busy_case.case)
    lines[3], lines[4] = lines[4], lines[3]
    write_lines(busy_case.case, lines)
    report = check_case(busy_case.case.root, [busy_case.keyring.alice.key.public])
    wheres = {p.where for p in report.problems}
    assert {"ledger entry 3", "ledger entry 4"} <= wheres


def test_sealed_bundle_deleted_is_reported(busy_case):
    busy_case.bundle.unlink()
    report = check_case(busy_case.case.root, [busy_case.keyring.alice.key.public])
    assert kinds(report) == ["MemberMissing"]
    assert "sealed at ledger entry 2" in str(report.problems[0])


def test_bundle_swapped_for_another_signed_bundle_is_caught_by_the_ledger(
        tmp_path, busy_case, linux_host):
    """A second, genuinely signed bundle renamed over the first: manifest digest differs."""
    second = collect(busy_case.case, busy_case.keyring.alice.key, linux_host)
    first_id = busy_case.result.bundle_id
    import json
    import zipfile

    from tests.custody.tamper import edit_manifest

    shutil.copy(second.bundle_path, busy_case.bundle)
    edit_manifest(busy_case.bundle, lambda m: m.update(bundle_id=first_id),
                  resign_with=busy_case.keyring.alice.key)
    with zipfile.ZipFile(busy_case.bundle) as zf:
        assert json.loads(zf.read("manifest.dsse.json"))["payloadType"]
    report = check_case(busy_case.case.root, [busy_case.keyring.alice.key.public])
    assert kinds(report) == ["HashMismatch"]
    assert "differs from the one sealed at ledger entry 2" in str(report.problems[0])


def test_bundle_not_recorded_in_the_ledger_is_reported(busy_case):
    shutil.copy(busy_case.bundle, busy_case.case.bundles_dir / "planted.stb")
    report = check_case(busy_case.case.root, [busy_case.keyring.alice.key.public])
    assert kinds(report) == ["MemberUnexpected"]


def test_ledger_truncated_after_a_checkpoint(tmp_path, busy_case):
    issued = issue_checkpoint(busy_case.case, busy_case.keyring.alice.key)
    counsel = tmp_path / "counsel.checkpoint"
    counsel.write_bytes(issued.text)
    lines = lines_of(busy_case.case)
    write_lines(busy_case.case, lines[:5])
    shutil.rmtree(busy_case.case.checkpoints_dir)
    busy_case.case.checkpoints_dir.mkdir()
    report = check_case(busy_case.case.root, [busy_case.keyring.alice.key.public], [counsel])
    assert kinds(report) == ["InconsistentLedger"]
    problem = report.problems[0]
    assert problem.expected == 7
    assert problem.observed == 5
    assert "truncated or rolled back" in str(problem)


def test_forked_ledger_is_reported_against_the_checkpoint(tmp_path, busy_case):
    """The key holder truncates to before the checkpoint and appends a different history."""
    issued = issue_checkpoint(busy_case.case, busy_case.keyring.alice.key)
    counsel = tmp_path / "counsel.checkpoint"
    counsel.write_bytes(issued.text)
    lines = lines_of(busy_case.case)
    write_lines(busy_case.case, lines[:5])
    ledger = busy_case.case.ledger()
    for action in ("stored", "disposed", "note", "note"):
        ledger.append(busy_case.keyring.alice.key, action, role="examiner")
    report = check_case(busy_case.case.root, [busy_case.keyring.alice.key.public], [counsel])
    inconsistent = [p for p in report.problems if isinstance(p, InconsistentLedger)]
    assert inconsistent
    assert "rewritten or forked" in str(inconsistent[0])
    result = prove_extends(busy_case.case, issued.text, [], "checkpoint counsel")
    assert isinstance(result.problem, InconsistentLedger)


def test_ledger_that_grew_is_proven_consistent(tmp_path, busy_case):
    issued = issue_checkpoint(busy_case.case, busy_case.keyring.alice.key)
    busy_case.case.ledger().append(busy_case.keyring.alice.key, "note", role="examiner")
    result = prove_extends(busy_case.case, issued.text, [busy_case.keyring.alice.key.public],
                           "checkpoint")
    assert result.problem is None
    assert result.size == 9
    assert result.checkpoint.size == 7
    assert result.proof
    assert check_case(busy_case.case.root, [busy_case.keyring.alice.key.public]).ok


def test_rollback_to_an_older_copy_is_caught_by_a_newer_checkpoint(tmp_path, busy_case):
    old_copy = tmp_path / "old"
    shutil.copytree(busy_case.case.root, old_copy)
    busy_case.case.ledger().append(busy_case.keyring.alice.key, "disposed", role="examiner")
    newer = issue_checkpoint(busy_case.case, busy_case.keyring.alice.key)
    held = tmp_path / "held.checkpoint"
    held.write_bytes(newer.text)
    report = check_case(old_copy, [busy_case.keyring.alice.key.public], [held])
    assert kinds(report) == ["InconsistentLedger"]


def test_two_checkpoints_of_one_size_with_different_roots_are_equivocation(
        tmp_path, busy_case):
    first = issue_checkpoint(busy_case.case, busy_case.keyring.alice.key)
    lines = lines_of(busy_case.case)
    write_lines(busy_case.case, lines[: first.checkpoint.size - 1])
    busy_case.case.ledger().append(busy_case.keyring.alice.key, "note", role="examiner",
                                   details={"text": "rewritten"})
    second = issue_checkpoint(busy_case.case, busy_case.keyring.alice.key)
    assert second.checkpoint.size == first.checkpoint.size
    held = tmp_path / "first.checkpoint"
    held.write_bytes(first.text)
    report = check_case(busy_case.case.root, [busy_case.keyring.alice.key.public], [held])
    assert any("equivocation" in str(p) for p in report.problems)


def test_checkpoint_signed_by_untrusted_key_is_rejected(tmp_path, busy_case):
    from sealtrail.custody.checkpoint import Checkpoint, sign_checkpoint
    from sealtrail.custody.merkle import MerkleTree, leaf_hash

    lines = lines_of(busy_case.case)
    tree = MerkleTree([leaf_hash(line) for line in lines])
    forged = sign_checkpoint(Checkpoint(busy_case.case.origin, len(lines), tree.root()),
                             busy_case.keyring.mallory.key)
    path = tmp_path / "forged.checkpoint"
    path.write_bytes(forged)
    report = check_case(busy_case.case.root, [busy_case.keyring.alice.key.public], [path])
    assert kinds(report) == ["CheckpointInvalid"]


def test_case_file_edited_is_reported(busy_case):
    path = busy_case.case.root / "case.json"
    path.write_text(path.read_text().replace('"Alice"', '"Mallory"'))
    report = check_case(busy_case.case.root, [busy_case.keyring.alice.key.public])
    assert kinds(report) == ["CustodyError"]
    assert report.problems[0].expected == "Alice"
    assert report.problems[0].observed == "Mallory"


def test_torn_ledger_tail_is_a_notice_and_verify_changes_nothing(busy_case):
    data = busy_case.case.ledger_path.read_bytes()
    busy_case.case.ledger_path.write_bytes(data + b'{"v":1,"case_id":"x')
    before = busy_case.case.ledger_path.read_bytes()
    report = check_case(busy_case.case.root, [busy_case.keyring.alice.key.public])
    assert report.ok
    assert any("torn" in n for n in report.notices)
    assert busy_case.case.ledger_path.read_bytes() == before


def test_revoked_key_cannot_seal_later_bundles(tmp_path, busy_case, linux_host):
    case, alice, bob = busy_case.case, busy_case.keyring.alice.key, busy_case.keyring.bob.key
    case.trust(bob.public, alice)
    collect(case, bob, linux_host)
    assert check_case(case.root, [alice.public]).ok
    ledger = case.ledger()
    ledger.append(alice, "key_revoked", role="examiner",
                  details={"key_id": bob.key_id, "reason": "laptop stolen"})
    # Bob's key is stolen; the thief appends with it directly (bypassing the CLI's refusal).
    ledger.append(bob, "disposed", role="examiner")
    report = check_case(case.root, [alice.public])
    assert kinds(report) == ["UntrustedKey"]
    assert report.problems[0].where == f"ledger entry {len(lines_of(case)) - 1}"


def test_empty_ledger_fails(busy_case):
    busy_case.case.ledger_path.write_bytes(b"")
    report = check_case(busy_case.case.root, [busy_case.keyring.alice.key.public])
    assert not report.ok
    assert "empty" in str(report.problems[0])


def test_not_a_case_folder(tmp_path):
    report = check_case(tmp_path / "nothing")
    assert not report.ok
    assert "not a case folder" in str(report.problems[0])



# ---- one trust set: pins constrain, the ledger's key history decides -----------------------


def _checkpoint_by(case: Case, key, path, size: int | None = None):
    from sealtrail.custody.checkpoint import Checkpoint, sign_checkpoint
    from sealtrail.custody.merkle import MerkleTree, leaf_hash

    lines = lines_of(case)
    size = len(lines) if size is None else size
    tree = MerkleTree([leaf_hash(line) for line in lines])
    path.write_bytes(sign_checkpoint(Checkpoint(case.origin, size, tree.root(size)), key))
    return path


def test_checkpoint_by_a_key_revoked_before_its_size_is_rejected(tmp_path, busy_case):
    """Bob's key is stolen and revoked; the thief signs a checkpoint of the current ledger."""
    case, alice, bob = busy_case.case, busy_case.keyring.alice.key, busy_case.keyring.bob.key
    case.trust(bob.public, alice)
    ledger = case.ledger()
    revoked_at = ledger.append(alice, "key_revoked", role="examiner",
                               details={"key_id": bob.key_id, "reason": "stolen"}).index
    held = _checkpoint_by(case, bob, tmp_path / "thief.checkpoint")
    report = check_case(case.root, [alice.public], [held])
    assert kinds(report) == ["CheckpointInvalid"]
    assert f"{bob.key_id} revoked at entry {revoked_at}" in report.problems[0].message
    with pytest.raises(CheckpointInvalid, match="revoked at entry"):
        prove_extends(case, held.read_bytes(), [alice.public], "checkpoint thief")


def test_checkpoint_by_a_key_trusted_only_after_its_size_is_rejected(tmp_path, busy_case):
    case, alice, bob = busy_case.case, busy_case.keyring.alice.key, busy_case.keyring.bob.key
    early = len(lines_of(case))
    trusted_at = case.trust(bob.public, alice).index
    held = _checkpoint_by(case, bob, tmp_path / "backdated.checkpoint", size=early)
    report = check_case(case.root, [alice.public], [held])
    assert kinds(report) == ["CheckpointInvalid"]
    assert f"no signature by a key trusted at entry {early}" in report.problems[0].message
    assert f"trusted only from entry {trusted_at + 1}" in report.problems[0].message


def test_checkpoint_by_a_key_revoked_after_its_size_still_verifies(tmp_path, busy_case):
    case, alice, bob = busy_case.case, busy_case.keyring.alice.key, busy_case.keyring.bob.key
    case.trust(bob.public, alice)
    held = _checkpoint_by(case, bob, tmp_path / "bob.checkpoint")
    case.ledger().append(alice, "key_revoked", role="examiner",
                         details={"key_id": bob.key_id, "reason": "left the team"})
    report = check_case(case.root, [alice.public], [held])
    assert report.ok, [str(p) for p in report.problems]
    assert report.checked["checkpoints"] == 1


def test_pinned_key_the_case_does_not_declare_cannot_sign_a_checkpoint(tmp_path, busy_case):
    case, alice, mallory = (busy_case.case, busy_case.keyring.alice.key,
                            busy_case.keyring.mallory.key)
    held = _checkpoint_by(case, mallory, tmp_path / "mallory.checkpoint")
    report = check_case(case.root, [alice.public, mallory.public], [held])
    assert kinds(report) == ["CheckpointInvalid"]
    assert "no signature by a trusted key" in report.problems[0].message


def test_case_opened_by_a_pinned_key_it_does_not_declare_fails(busy_case):
    """Entry 0 signed by alice (pinned) but declaring only bob: pins do not grant trust."""
    case, alice, bob = busy_case.case, busy_case.keyring.alice.key, busy_case.keyring.bob.key
    lines = lines_of(case)
    first = parse_canonical_json(lines[0])
    first["details"]["trusted_keys"] = [trusted_key_record(bob.public, "examiner")]
    out = [resign(first, alice)]
    for line in lines[1:]:
        fields = parse_canonical_json(line)
        fields["prev"] = hashlib.sha256(out[-1]).hexdigest()
        out.append(resign(fields, alice))
    write_lines(case, out)
    report = check_case(case.root, [alice.public])
    assert not report.ok
    assert report.problems[0].where == "ledger entry 0"
    assert "not among its declared trusted keys" in report.problems[0].message
    # Every later entry is alice's, whom the case never declared: none is trusted.
    assert {p.where for p in report.problems if type(p).__name__ == "UntrustedKey"} >= {
        f"ledger entry {i}" for i in range(len(out))}


def test_case_file_origin_edited_is_reported(busy_case):
    """Checkpoints must name the signed origin, not whatever case.json says."""
    path = busy_case.case.root / "case.json"
    path.write_text(path.read_text().replace("sealtrail.case/", "evil.example/"))
    report = check_case(busy_case.case.root, [busy_case.keyring.alice.key.public])
    assert kinds(report) == ["CustodyError"]
    assert "origin differs from ledger entry 0" in report.problems[0].message


def test_recorded_checkpoint_file_removed_is_a_notice(busy_case):
    issued = issue_checkpoint(busy_case.case, busy_case.keyring.alice.key)
    issued.path.unlink()
    report = check_case(busy_case.case.root, [busy_case.keyring.alice.key.public])
    assert report.ok, [str(p) for p in report.problems]
    assert any(f"ledger entry {issued.ledger_index}: the checkpoint file" in n
               for n in report.notices)


def test_bundle_sealed_with_a_path_for_a_bundle_id_is_reported(busy_case):
    alice = busy_case.keyring.alice.key
    lines = lines_of(busy_case.case)
    fields = {**parse_canonical_json(lines[-1]), "index": len(lines), "action": "bundle_sealed",
              "prev": hashlib.sha256(lines[-1]).hexdigest(),
              "subject": {"bundle_id": "../../elsewhere", "manifest_sha256": "0" * 64}}
    write_lines(busy_case.case, [*lines, resign(fields, alice)])
    report = check_case(busy_case.case.root, [alice.public])
    assert kinds(report) == ["LedgerBroken"]
    assert "not a plain file name" in report.problems[0].message
