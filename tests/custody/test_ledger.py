"""Tests of custody/ledger.py and ledger_check.py: format, attacks, torn tails, I/O errors.

Tamper tests start from one good ledger built by ``good_ledger`` and are named after the
attack; each asserts the error type, the entry index and a fragment of the message.
"""

from __future__ import annotations

import base64
import errno
import hashlib
import json
import logging
import os
from pathlib import Path

import pytest

from sealtrail.custody.canonical import canonical_json, pae, parse_canonical_json
from sealtrail.custody.keys import SigningKey
from sealtrail.custody.ledger import (
    ENTRY_PAYLOAD_TYPE,
    LEDGER_NAME,
    ZERO_HASH,
    Ledger,
    LedgerWriteError,
    trusted_key_record,
    utc_now_text,
)
from sealtrail.custody.ledger_check import check_ledger, verify_ledger
from sealtrail.errors import (
    CaseError,
    CustodyError,
    LedgerBroken,
    SignatureInvalid,
    UntrustedKey,
)

ALICE = SigningKey.generate("alice")
BOB = SigningKey.generate("bob")
MALLORY = SigningKey.generate("mallory")


def good_ledger(folder: Path, n: int = 10, case_id: str = "CASE-1", key: SigningKey = ALICE
                ) -> Ledger:
    """A ledger with entry 0 plus ``n`` ``noted`` entries, all by ``key``."""
    folder.mkdir(parents=True, exist_ok=True)
    ledger = Ledger.create(folder, case_id, key, role="examiner", details={"title": "t"})
    for i in range(n):
        ledger.append(key, "noted", role="examiner", subject={"item": i}, details={"n": i})
    return ledger


def problems(lines: list[bytes], pinned=()) -> list[CustodyError]:
    return check_ledger(lines, pinned).problems


def at(found: list[CustodyError], index: int) -> list[CustodyError]:
    return [p for p in found if p.where == f"ledger entry {index}"]


def has(found: list[CustodyError], index: int, kind: type, fragment: str) -> CustodyError:
    for problem in at(found, index):
        if type(problem) is kind and fragment in problem.message:
            return problem
    raise AssertionError(f"no {kind.__name__} with {fragment!r} at entry {index}: {found}")


def resign(fields: dict, key: SigningKey) -> bytes:
    body = canonical_json({k: v for k, v in fields.items() if k != "sig"})
    sig = base64.b64encode(key.sign(pae(ENTRY_PAYLOAD_TYPE, body))).decode()
    return canonical_json({**fields, "sig": sig})


# ---- happy path --------------------------------------------------------------------------


def test_create_and_200_appends_check_passes_with_canonical_chained_lines(tmp_path):
    ledger = good_ledger(tmp_path, n=200)
    lines = ledger.read_lines()
    assert len(lines) == 201
    assert ledger.size() == 201
    assert ledger.head().index == 200
    raw = (tmp_path / LEDGER_NAME).read_bytes()
    assert raw == b"".join(line + b"\n" for line in lines)
    prev = ZERO_HASH
    for i, line in enumerate(lines):
        fields = parse_canonical_json(line)  # raises if not canonical
        assert fields["index"] == i
        assert fields["prev"] == prev
        assert fields["case_id"] == "CASE-1"
        assert fields["clock"] == "system"
        prev = hashlib.sha256(line).hexdigest()
    entries = ledger.entries()
    assert entries[0].action == "case_opened"
    assert entries[0].fields["details"]["trusted_keys"] == [
        trusted_key_record(ALICE.public, "examiner")
    ]
    assert entries[5].actor_key_id == ALICE.key_id
    assert entries[5].entry_hash == hashlib.sha256(lines[5]).hexdigest()
    assert entries[5].time is not None
    assert entries[5].time.tzinfo is not None
    result = check_ledger(lines, [ALICE.public])
    assert result.ok, result.problems
    assert result.pinned_used is True
    assert result.case_id == "CASE-1"
    assert check_ledger(lines, []).pinned_used is False
    verify_ledger(lines, [ALICE.public])


def test_append_returns_the_entry_as_written(tmp_path):
    ledger = good_ledger(tmp_path, n=2)
    entry = ledger.append(ALICE, "evidence_moved", role="custodian",
                          custody={"to": "locker 4"}, expect_size=3)
    assert entry.index == 3
    assert entry.line == ledger.read_lines()[3]
    assert entry.fields["actor"] == {"name": "alice", "key_id": ALICE.key_id, "role": "custodian"}
    assert entry.fields["custody"] == {"to": "locker 4"}


def test_utc_now_text_has_microseconds_and_z():
    text = utc_now_text()
    assert len(text) == 27
    assert text.endswith("Z")
    assert text[19] == "."


def test_create_refuses_an_existing_ledger(tmp_path):
    good_ledger(tmp_path, n=1)
    before = (tmp_path / LEDGER_NAME).read_bytes()
    with pytest.raises(CaseError, match="already exists"):
        Ledger.create(tmp_path, "CASE-2", ALICE, role="examiner", details={})
    assert (tmp_path / LEDGER_NAME).read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ledger.jsonl", "ledger.lock"]


def test_empty_ledger_is_a_problem():
    (problem,) = problems([])
    assert isinstance(problem, LedgerBroken)
    assert "ledger is empty" in problem.message
    with pytest.raises(LedgerBroken, match="ledger is empty"):
        verify_ledger([], [])


# ---- attacks on the history ----------------------------------------------------------------


def test_deleted_ledger_entry_is_reported_at_its_index(tmp_path):
    lines = good_ledger(tmp_path).read_lines()
    del lines[4]
    found = problems(lines, [ALICE.public])
    gap = has(found, 4, LedgerBroken, "index is out of sequence")
    assert (gap.expected, gap.observed) == (4, 5)
    chain = has(found, 4, LedgerBroken, "chain broken")
    assert chain.expected == hashlib.sha256(lines[3]).hexdigest()
    assert {p.where for p in found} == {"ledger entry 4"}
    with pytest.raises(LedgerBroken, match="ledger entry 4: index is out of sequence"):
        verify_ledger(lines, [ALICE.public])


def test_edited_ledger_entry_breaks_its_signature_and_the_next_prev(tmp_path):
    lines = good_ledger(tmp_path).read_lines()
    fields = parse_canonical_json(lines[5])
    fields["details"]["n"] = 999
    lines[5] = canonical_json(fields)
    found = problems(lines, [ALICE.public])
    sig = has(found, 5, SignatureInvalid, f"signature by key {ALICE.key_id} does not verify")
    assert sig.observed == "invalid signature"
    chain = has(found, 6, LedgerBroken, "chain broken: prev is not the hash of the previous")
    assert chain.expected == hashlib.sha256(lines[5]).hexdigest()
    assert {p.where for p in found} == {"ledger entry 5", "ledger entry 6"}


def test_swapped_ledger_entries_are_reported_at_both_indices(tmp_path):
    lines = good_ledger(tmp_path).read_lines()
    lines[3], lines[4] = lines[4], lines[3]
    found = problems(lines, [ALICE.public])
    first = has(found, 3, LedgerBroken, "index is out of sequence")
    second = has(found, 4, LedgerBroken, "index is out of sequence")
    assert (first.expected, first.observed, second.expected, second.observed) == (3, 4, 4, 3)
    has(found, 3, LedgerBroken, "chain broken")
    has(found, 4, LedgerBroken, "chain broken")
    has(found, 5, LedgerBroken, "chain broken")
    assert not at(found, 6)


def test_entry_inserted_from_another_case_is_reported(tmp_path):
    lines = good_ledger(tmp_path / "a").read_lines()
    other = good_ledger(tmp_path / "b", case_id="CASE-OTHER").read_lines()
    lines.insert(4, other[4])
    found = problems(lines, [ALICE.public])
    foreign = has(found, 4, LedgerBroken, "entry belongs to another case")
    assert (foreign.expected, foreign.observed) == ("CASE-1", "CASE-OTHER")
    has(found, 4, LedgerBroken, "chain broken")
    has(found, 5, LedgerBroken, "index is out of sequence")
    has(found, 5, LedgerBroken, "chain broken")
    assert not at(found, 6)


def test_entry_signed_by_an_untrusted_key_is_rejected(tmp_path):
    ledger = good_ledger(tmp_path, n=3)
    ledger.append(MALLORY, "noted", role="examiner")  # the writer does not judge trust
    ledger.append(ALICE, "noted", role="examiner")
    found = problems(ledger.read_lines(), [])
    problem = has(found, 4, UntrustedKey, f"signed by key {MALLORY.key_id} which is not trusted")
    assert problem.observed == MALLORY.key_id
    assert problem.expected == [ALICE.key_id]
    assert {p.where for p in found} == {"ledger entry 4"}


def test_history_resigned_by_attacker_key_is_rejected_with_pinned_keys(tmp_path):
    lines = good_ledger(tmp_path / "a").read_lines()
    forged = good_ledger(tmp_path / "b", key=MALLORY).read_lines()
    assert len(forged) == len(lines)
    assert check_ledger(forged, []).ok  # on its own (trust on first use) it looks fine
    found = problems(forged, [ALICE.public])
    opened = has(found, 0, UntrustedKey, "case was opened by key")
    assert "which is not among the trusted keys" in opened.message
    assert opened.observed == MALLORY.key_id
    assert opened.expected == [ALICE.key_id]
    for i in range(1, len(forged)):
        has(found, i, UntrustedKey, f"signed by key {MALLORY.key_id}")


def test_entry_zero_signed_by_an_undeclared_key_is_rejected_without_pins(tmp_path):
    lines = good_ledger(tmp_path, n=1).read_lines()
    fields = parse_canonical_json(lines[0])
    lines[0] = resign({**fields, "actor": {**fields["actor"], "key_id": MALLORY.key_id}}, MALLORY)
    found = problems(lines, [])
    has(found, 0, UntrustedKey, "not among its declared trusted keys")


def test_pinned_key_not_declared_by_the_case_grants_nothing(tmp_path):
    """Pins constrain, they do not grant: bob is pinned but the case never declared him."""
    ledger = good_ledger(tmp_path, n=2)
    ledger.append(BOB, "noted", role="reviewer")
    result = check_ledger(ledger.read_lines(), [ALICE.public, BOB.public])
    has(result.problems, 3, UntrustedKey, "not trusted at entry 3")
    assert BOB.key_id not in result.keys
    has(problems(ledger.read_lines(), [ALICE.public]), 3, UntrustedKey, "not trusted")


def test_entry_zero_signed_by_a_pinned_key_it_does_not_declare_is_rejected(tmp_path):
    """Alice (pinned) opens a case declaring only bob: the opener is not one of its keys."""
    lines = good_ledger(tmp_path, n=0).read_lines()
    fields = parse_canonical_json(lines[0])
    details = {**fields["details"], "trusted_keys": [trusted_key_record(BOB.public, "examiner")]}
    lines = [resign({**fields, "details": details}, ALICE)]
    for i, key in ((1, ALICE), (2, BOB)):
        lines.append(resign({**fields, "index": i, "action": "noted", "details": {},
                             "actor": {"key_id": key.key_id, "name": key.name, "role": "examiner"},
                             "prev": hashlib.sha256(lines[-1]).hexdigest()}, key))
    assert check_ledger(lines, []).problems  # no anchor without pins either
    result = check_ledger(lines, [ALICE.public])
    problem = has(result.problems, 0, UntrustedKey, "not among its declared trusted keys")
    assert problem.observed == ALICE.key_id
    assert problem.expected == [BOB.key_id]
    has(result.problems, 1, UntrustedKey, "not trusted at entry 1")
    assert not result.keys  # entry 0 was not believed: no key is trusted anywhere


def _checkpoint_entry(ledger: Ledger, size: int, root: bytes, key: SigningKey = ALICE) -> None:
    ledger.append(key, "checkpoint_signed", role="examiner", details={
        "size": size, "root": base64.b64encode(root).decode(), "file": "x.checkpoint"})


def _root(lines: list[bytes], size: int) -> bytes:
    from sealtrail.custody.merkle import MerkleTree, leaf_hash
    return MerkleTree(leaf_hash(line) for line in lines).root(size)


def test_recorded_checkpoint_matching_its_prefix_passes(tmp_path):
    ledger = good_ledger(tmp_path, n=3)
    _checkpoint_entry(ledger, 4, _root(ledger.read_lines(), 4))
    _checkpoint_entry(ledger, 2, _root(ledger.read_lines(), 2))
    assert check_ledger(ledger.read_lines(), [ALICE.public]).ok


def test_recorded_checkpoint_larger_than_its_own_index_is_reported(tmp_path):
    ledger = good_ledger(tmp_path, n=3)
    lines = ledger.read_lines()
    _checkpoint_entry(ledger, 5, _root(lines, 4))  # entry 4 claims 5 entries
    found = problems(ledger.read_lines(), [ALICE.public])
    problem = has(found, 4, LedgerBroken, "checkpoint of 5 entries, more than the 4 entries")
    assert problem.observed == 5


def test_recorded_checkpoint_of_rewritten_history_is_reported(tmp_path):
    """The ledger was re-signed after a checkpoint was recorded: the recorded root is stale."""
    ledger = good_ledger(tmp_path, n=3)
    stale = _root(ledger.read_lines(), 3)
    lines = ledger.read_lines()
    fields = parse_canonical_json(lines[2])
    lines[2] = resign({**fields, "details": {"n": 99}}, ALICE)
    # re-chain the rest so only the recorded root can tell
    for i in range(3, len(lines)):
        f = parse_canonical_json(lines[i])
        lines[i] = resign({**f, "prev": hashlib.sha256(lines[i - 1]).hexdigest()}, ALICE)
    f = {**parse_canonical_json(lines[-1])}
    record = {**f, "index": len(lines), "prev": hashlib.sha256(lines[-1]).hexdigest(),
              "action": "checkpoint_signed",
              "details": {"size": 3, "root": base64.b64encode(stale).decode(), "file": "c"}}
    lines.append(resign(record, ALICE))
    found = problems(lines, [ALICE.public])
    problem = has(found, len(lines) - 1, LedgerBroken, "not the Merkle root of the ledger's "
                  "first 3 entries")
    assert problem.observed == stale.hex()
    assert problem.expected == _root(lines, 3).hex()
    assert len(found) == 1, found


@pytest.mark.parametrize("details", [
    {"size": 1, "root": "AAAA", "file": "f"},
    {"size": -1, "root": base64.b64encode(bytes(32)).decode(), "file": "f"},
    {"size": "1", "root": base64.b64encode(bytes(32)).decode(), "file": "f"},
    {"size": 1, "root": base64.b64encode(bytes(32)).decode()},
    {"size": 1, "root": base64.b64encode(bytes(32)).decode(), "file": "f", "extra": 1},
    {"size": 1, "root": base64.b64encode(bytes(32)).decode()[:-2] + "B=", "file": "f"},
])
def test_malformed_recorded_checkpoint_is_reported(tmp_path, details):
    ledger = good_ledger(tmp_path, n=1)
    ledger.append(ALICE, "checkpoint_signed", role="examiner", details=details)
    has(problems(ledger.read_lines(), [ALICE.public]), 2, LedgerBroken,
        "checkpoint_signed details are malformed")


def test_key_trusted_then_entries_by_the_new_key_pass(tmp_path):
    ledger = good_ledger(tmp_path, n=2)
    ledger.append(BOB, "noted", role="examiner")  # 3: before bob is trusted
    ledger.append(ALICE, "key_trusted", role="examiner",
                  details={"key": {"name": "bob", "public_key": BOB.public.b64,
                                   "key_id": BOB.key_id}, "role": "reviewer"})  # 4
    for _ in range(3):
        ledger.append(BOB, "reviewed", role="reviewer")  # 5..7
    result = check_ledger(ledger.read_lines(), [ALICE.public])
    (early,) = result.problems
    assert isinstance(early, UntrustedKey)
    assert early.where == "ledger entry 3"
    assert result.is_trusted(BOB.key_id, 5)
    assert not result.is_trusted(BOB.key_id, 4)
    assert result.keys[BOB.key_id].role == "reviewer"


def test_key_trusted_by_an_untrusted_signer_has_no_effect(tmp_path):
    ledger = good_ledger(tmp_path, n=1)
    ledger.append(MALLORY, "key_trusted", role="examiner",
                  details={"key": {"name": "mallory", "public_key": MALLORY.public.b64,
                                   "key_id": MALLORY.key_id}, "role": "examiner"})  # 2
    ledger.append(MALLORY, "noted", role="examiner")  # 3
    found = problems(ledger.read_lines(), [ALICE.public])
    has(found, 2, UntrustedKey, "not trusted at entry 2")
    has(found, 3, UntrustedKey, "not trusted at entry 3")


def test_key_revoked_then_entries_by_it_fail_at_the_right_index(tmp_path):
    ledger = good_ledger(tmp_path, n=1)
    ledger.append(ALICE, "key_trusted", role="examiner",
                  details={"key": {"name": "bob", "public_key": BOB.public.b64,
                                   "key_id": BOB.key_id}, "role": "examiner"})  # 2
    ledger.append(BOB, "noted", role="examiner")  # 3 ok
    ledger.append(ALICE, "key_revoked", role="examiner",
                  details={"key_id": BOB.key_id, "reason": "laptop lost"})  # 4
    ledger.append(ALICE, "noted", role="examiner")  # 5 ok
    ledger.append(BOB, "noted", role="examiner")  # 6 rejected
    ledger.append(ALICE, "key_trusted", role="examiner",
                  details={"key": {"name": "bob", "public_key": BOB.public.b64,
                                   "key_id": BOB.key_id}, "role": "examiner"})  # 7
    ledger.append(BOB, "noted", role="examiner")  # 8 still rejected
    result = check_ledger(ledger.read_lines(), [ALICE.public])
    revoked = has(result.problems, 6, UntrustedKey,
                  f"signed by key {BOB.key_id} revoked at entry 4")
    assert revoked.observed == BOB.key_id
    has(result.problems, 7, UntrustedKey, "cannot be trusted again")
    has(result.problems, 8, UntrustedKey, "revoked at entry 4")
    assert {p.where for p in result.problems} == {
        "ledger entry 6", "ledger entry 7", "ledger entry 8"}
    assert result.revocations == {BOB.key_id: 4}


def test_non_canonical_line_with_spaces_is_reported(tmp_path):
    lines = good_ledger(tmp_path).read_lines()
    lines[2] = json.dumps(json.loads(lines[2]), sort_keys=True).encode()  # ", " and ": "
    found = problems(lines, [ALICE.public])
    has(found, 2, LedgerBroken, "not in canonical JSON form")
    has(found, 3, LedgerBroken, "chain broken")  # the line bytes are what is chained
    assert {p.where for p in found} == {"ledger entry 2", "ledger entry 3"}


def test_garbage_line_in_the_middle_is_reported_and_the_rest_still_checked(tmp_path):
    ledger = good_ledger(tmp_path, n=12)
    ledger.append(MALLORY, "noted", role="examiner")  # 13: a later problem must still show
    lines = ledger.read_lines()
    lines[6] = b"\x00garbage{not json"
    result = check_ledger(lines, [ALICE.public])
    found = result.problems
    garbage = has(found, 6, LedgerBroken, "line is not valid JSON")
    assert "garbage" in garbage.observed
    has(found, 7, LedgerBroken, "chain broken")
    has(found, 13, UntrustedKey, "not trusted")
    assert {p.where for p in found} == {"ledger entry 6", "ledger entry 7", "ledger entry 13"}
    assert result.entries[6].fields == {}
    assert [p.where for p in found] == sorted(
        (p.where for p in found), key=lambda w: int(w.rsplit(" ", 1)[1]))


def test_entry_with_missing_and_extra_keys_is_reported(tmp_path):
    lines = good_ledger(tmp_path, n=3).read_lines()
    fields = parse_canonical_json(lines[2])
    del fields["clock"]
    fields["extra"] = 1
    fields["time"] = "2024-01-01T00:00:00+00:00"
    lines[2] = resign(fields, ALICE)
    found = problems(lines, [ALICE.public])
    keys = has(found, 2, LedgerBroken, "exactly the entry keys")
    assert "extra" in keys.observed
    assert "clock" in keys.expected
    has(found, 2, LedgerBroken, "field 'time' is malformed")


# ---- the file on disk: torn tails, damage, stale writers, I/O errors ----------------------------


def test_torn_last_line_at_every_byte_offset_is_cut_and_saved_by_the_next_writer(
        tmp_path, caplog):
    folder = tmp_path / "case"
    ledger = good_ledger(folder, n=4)
    path = folder / LEDGER_NAME
    full = path.read_bytes()
    lines = ledger.read_lines()
    last = lines[-1] + b"\n"
    kept = full[: len(full) - len(last)]
    caplog.set_level(logging.WARNING, logger="sealtrail.custody.ledger")
    for k in range(2, len(last) + 1):  # k == 1 (only the newline missing): see the next test
        for torn in folder.glob("ledger.torn-*.bin"):
            torn.unlink()
        path.write_bytes(full[: len(full) - k])
        reopened = Ledger.open(path)
        assert path.read_bytes() == full[: len(full) - k], k  # opening never writes
        assert reopened.read_lines() == lines[:-1], k
        assert check_ledger(reopened.read_lines(), [ALICE.public]).ok, k
        entry = reopened.append(ALICE, "noted", role="examiner", expect_size=len(lines) - 1)
        assert entry.index == len(lines) - 1
        assert path.read_bytes() == kept + entry.line + b"\n", k
        if k == len(last):  # cut exactly at a newline: nothing torn
            assert reopened.recovered_tail is None
            assert not list(folder.glob("ledger.torn-*.bin"))
        else:
            expected_tail = last[: len(last) - k]
            assert reopened.recovered_tail == expected_tail, k
            (saved,) = folder.glob("ledger.torn-*.bin")
            assert saved == reopened.torn_path
            assert saved.read_bytes() == expected_tail
        assert check_ledger(reopened.read_lines(), [ALICE.public]).ok, k
    assert "cut a torn tail" in caplog.text


def test_acknowledged_last_entry_missing_only_its_newline_is_kept_and_restored(tmp_path):
    """``truncate -s -1 ledger.jsonl``: the entry is complete and validly signed, so readers
    count it and the next writer writes its newline instead of moving it aside."""
    ledger = good_ledger(tmp_path, n=4)
    path = tmp_path / LEDGER_NAME
    full = path.read_bytes()
    lines = ledger.read_lines()
    path.write_bytes(full[:-1])
    reopened = Ledger.open(path)
    assert reopened.read_lines() == lines
    assert reopened.size() == len(lines)
    assert path.read_bytes() == full[:-1]  # reading never writes
    entry = reopened.append(ALICE, "noted", role="examiner", expect_size=len(lines))
    assert entry.index == len(lines)
    assert path.read_bytes() == full + entry.line + b"\n"
    assert reopened.recovered_tail is None
    assert not list(tmp_path.glob("ledger.torn-*.bin"))
    assert check_ledger(reopened.read_lines(), [ALICE.public]).ok


@pytest.mark.parametrize("damage", ["bad signature", "does not chain", "signed by mallory"])
def test_unterminated_tail_that_is_not_a_valid_next_entry_is_cut(tmp_path, damage):
    ledger = good_ledger(tmp_path, n=3)
    path = tmp_path / LEDGER_NAME
    lines = ledger.read_lines()
    fields = parse_canonical_json(lines[-1])
    fields["index"] += 1
    fields["prev"] = hashlib.sha256(lines[-1]).hexdigest()
    if damage == "does not chain":
        fields["prev"] = "0" * 64
    tail = resign(fields, MALLORY if damage == "signed by mallory" else ALICE)
    if damage == "bad signature":
        tail = tail.replace(b'"n":2', b'"n":7')
    with open(path, "ab") as handle:
        handle.write(tail)
    assert Ledger.open(path).read_lines() == lines
    entry = Ledger.open(path).append(ALICE, "noted", role="examiner")
    assert entry.index == len(lines)
    (saved,) = tmp_path.glob("ledger.torn-*.bin")
    assert saved.read_bytes() == tail


def test_torn_tail_left_by_another_writer_is_cut_before_appending(tmp_path):
    ledger = good_ledger(tmp_path, n=2)
    with open(tmp_path / LEDGER_NAME, "ab") as handle:
        handle.write(b'{"action":"no')  # a writer died mid-line after we opened
    entry = ledger.append(ALICE, "noted", role="examiner")
    assert entry.index == 3
    assert ledger.recovered_tail == b'{"action":"no'
    assert check_ledger(ledger.read_lines(), [ALICE.public]).ok


def test_flipped_byte_mid_file_is_not_repaired_and_is_reported(tmp_path):
    good_ledger(tmp_path, n=6)
    path = tmp_path / LEDGER_NAME
    data = bytearray(path.read_bytes())
    starts = [0] + [i + 1 for i, b in enumerate(data) if b == 0x0A][:-1]
    sig_at = data.index(b'"sig":"', starts[3]) + 12  # inside entry 3's signature
    data[sig_at] = ord("A") if data[sig_at] != ord("A") else ord("B")
    path.write_bytes(bytes(data))
    reopened = Ledger.open(path)
    assert path.read_bytes() == bytes(data)
    assert reopened.recovered_tail is None
    assert not list(tmp_path.glob("ledger.torn-*"))
    found = problems(reopened.read_lines(), [ALICE.public])
    has(found, 3, SignatureInvalid, "does not verify")
    has(found, 4, LedgerBroken, "chain broken")
    # a flip that breaks the JSON itself is not repaired either
    data[starts[2] + 1] = ord("#")
    path.write_bytes(bytes(data))
    Ledger.open(path)
    assert path.read_bytes() == bytes(data)
    has(problems(Ledger.open(path).read_lines(), [ALICE.public]), 2, LedgerBroken, "not valid JSON")


def test_stale_writer_with_expect_size_mismatch_is_refused(tmp_path):
    ledger = good_ledger(tmp_path, n=3)
    other = Ledger.open(tmp_path)
    stale = ledger.size()
    other.append(ALICE, "noted", role="examiner", expect_size=stale)
    with pytest.raises(LedgerBroken, match="size this writer expected") as info:
        ledger.append(ALICE, "noted", role="examiner", expect_size=stale)
    assert (info.value.expected, info.value.observed) == (4, 5)
    assert info.value.where == "ledger entry 5"
    assert ledger.size() == 5
    ledger.append(ALICE, "noted", role="examiner", expect_size=5)  # not poisoned


def _acknowledged_then_fail(
    tmp_path, monkeypatch, name: str, failing
) -> tuple[LedgerWriteError, list[bytes]]:
    ledger = good_ledger(tmp_path, n=3)
    acknowledged = ledger.read_lines()
    with monkeypatch.context() as patch:
        patch.setattr(os, name, failing)
        with pytest.raises(LedgerWriteError) as info:
            ledger.append(ALICE, "noted", role="examiner")
    assert info.value.where == "ledger entry 4"
    assert "not acknowledged" in info.value.message
    with pytest.raises(LedgerWriteError, match="unusable"):
        ledger.append(ALICE, "noted", role="examiner")
    return info.value, acknowledged


def test_fsync_raising_eio_makes_the_writer_unusable(tmp_path, monkeypatch):
    def fsync(fd):
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    error, acknowledged = _acknowledged_then_fail(tmp_path, monkeypatch, "fsync", fsync)
    assert "fsync failed" in error.message
    reopened = Ledger.open(tmp_path)
    lines = reopened.read_lines()
    assert lines[: len(acknowledged)] == acknowledged  # the unacknowledged one may survive
    assert check_ledger(lines, [ALICE.public]).ok
    reopened.append(ALICE, "noted", role="examiner")
    assert check_ledger(reopened.read_lines(), [ALICE.public]).ok


def test_write_raising_enospc_makes_the_writer_unusable(tmp_path, monkeypatch):
    def write(fd, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    error, acknowledged = _acknowledged_then_fail(tmp_path, monkeypatch, "write", write)
    assert "write failed" in error.message
    reopened = Ledger.open(tmp_path)
    assert reopened.recovered_tail is None
    assert reopened.read_lines() == acknowledged
    assert check_ledger(reopened.read_lines(), [ALICE.public]).ok


def test_short_write_on_full_disk_leaves_a_torn_tail_cut_on_reopen(tmp_path, monkeypatch):
    real_write = os.write

    def write(fd, data):
        return real_write(fd, data[: len(data) // 2])

    error, acknowledged = _acknowledged_then_fail(tmp_path, monkeypatch, "write", write)
    assert "short write" in error.message
    reopened = Ledger.open(tmp_path)
    assert reopened.read_lines() == acknowledged
    assert check_ledger(reopened.read_lines(), [ALICE.public]).ok
    reopened.append(ALICE, "noted", role="examiner", expect_size=len(acknowledged))
    assert reopened.recovered_tail is not None
    assert reopened.recovered_tail.startswith(b"{")


def test_reading_garbage_lines_does_not_crash(tmp_path):
    ledger = good_ledger(tmp_path, n=2)
    with open(tmp_path / LEDGER_NAME, "ab") as handle:
        handle.write(b"[1,2]\n\xff\xfe\n")
    entries = ledger.entries()
    assert [e.fields for e in entries[3:]] == [{}, {}]
    assert entries[4].action is None
    assert entries[4].time is None
    before = (tmp_path / LEDGER_NAME).read_bytes()
    with pytest.raises(LedgerBroken, match="the line before it .* not valid signed entries"):
        ledger.append(ALICE, "noted", role="examiner")
    assert (tmp_path / LEDGER_NAME).read_bytes() == before  # only the last line is repaired
    assert not list(tmp_path.glob("ledger.damaged-*"))


@pytest.mark.parametrize("garbage", [b"\xff\xfe", b"[1,2]", b"flipped"])
def test_invalid_last_line_is_moved_aside_and_recorded_by_the_next_writer(tmp_path, garbage):
    ledger = good_ledger(tmp_path, n=3)
    path = tmp_path / LEDGER_NAME
    lines = ledger.read_lines()
    if garbage == b"flipped":  # a complete entry with one byte changed: its signature fails
        garbage = lines[-1].replace(b'"n":2', b'"n":3')
        lines = lines[:-1]
        path.write_bytes(b"".join(line + b"\n" for line in lines))
    with open(path, "ab") as handle:
        handle.write(garbage + b"\n")
    with pytest.raises(CustodyError):  # before the repair, verify reports the damage
        verify_ledger(Ledger.open(path).read_lines(), [ALICE.public])
    entry = Ledger.open(path).append(BOB, "noted", role="examiner")
    found = Ledger.open(path).entries()
    assert [e.action for e in found[len(lines):]] == ["ledger_repaired", "noted"]
    assert entry.index == len(lines) + 1
    (saved,) = tmp_path.glob("ledger.damaged-*.bin")
    assert saved.read_bytes() == garbage + b"\n"
    details = found[len(lines)].fields["details"]
    assert details == {
        "file": saved.name, "sha256": hashlib.sha256(garbage + b"\n").hexdigest(),
        "bytes": len(garbage) + 1, "index": len(lines), "reason": details["reason"]}
    assert details["reason"]
    assert found[len(lines)].actor_key_id == BOB.key_id
    result = check_ledger(Ledger.open(path).read_lines(), [ALICE.public])
    assert [p.where for p in result.problems] == [f"ledger entry {len(lines)}",
                                                  f"ledger entry {len(lines) + 1}"]  # bob


def test_last_line_signed_by_an_undeclared_key_is_kept(tmp_path):
    ledger = good_ledger(tmp_path, n=2)
    ledger.append(MALLORY, "noted", role="examiner")
    ledger.append(ALICE, "noted", role="examiner")
    assert [e.actor_key_id for e in ledger.entries()][-2:] == [MALLORY.key_id, ALICE.key_id]
    assert not list(tmp_path.glob("ledger.damaged-*"))
