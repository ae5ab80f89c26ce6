"""Verification of a case folder or of a single bundle. Reads only; never modifies anything.

Order of checks for a case (``check_case``); every failure is collected, none stops the rest
unless a later check cannot run without it:
1. The case folder and ``case.json`` can be read (else stop: nothing to verify against).
2. The ledger file: bytes after the last newline are the last entry when they are a complete
   entry continuing the ledger, signed by a key it declares (``ledger_check.split_ledger``,
   the rule every reader and writer applies: a notice that its newline is missing); otherwise
   they are an unacknowledged, torn append (a notice, not a problem: the next writer cuts it
   and keeps the bytes). A ``ledger_repaired`` entry (a writer moved an invalid last line
   aside) is a notice.
3. The ledger entries (``ledger_check``): canonical form, indices, case id, the hash chain, and
   each entry's signature by a key trusted at that index. Trust starts from the keys pinned
   with ``--trust`` (or, without them, from the keys the case declares: trust on first use,
   reported as a notice), extended by ``key_trusted`` and cut by ``key_revoked`` entries.
4. ``case.json`` agrees with ledger entry 0 (case id, title, examiner, origin: the origin
   that checkpoints must name is the signed one).
5. Checkpoints (those stored in ``checkpoints/`` and those given with ``--checkpoint``): each
   is well formed and its signatures verify (``checkpoint.open_note``, against every key the
   ledger trusted at some index); at least one good signature is by a key trusted at index
   ``size`` of the ledger (trusted from an index <= size, not revoked before size: a checkpoint
   of size N is judged as entry N would be); it names this case's origin; and the ledger
   extends it: the Merkle root of the ledger's first ``size`` entries equals its root. A
   ledger shorter than a checkpoint was truncated; a different root means rewritten or forked
   history. Two checkpoints of one size with different roots are proof of equivocation. A
   ``checkpoint_signed`` entry whose ``details.file`` is not in ``checkpoints/`` is a notice
   (the entry's own size and root were checked in step 3).
6. Bundles: every ``bundle_sealed`` entry's ``subject.bundle_id`` is a plain file name
   (``[A-Za-z0-9][A-Za-z0-9._-]{0,127}``) and its bundle is present and passes ``check_bundle``
   (exactly its ZIP records, the manifest last, one spelling per name, safe names, totals,
   the manifest signature by the key that signed that ``bundle_sealed`` entry if the ledger
   trusts that key at that index, the member set, every member's size and SHA-256), and its
   manifest SHA-256 equals the one in the ledger. A sealed bundle the ledger does not record
   is a problem (its message says how the next writer recovers it when its collection was
   interrupted); an unsealed ``.partial`` or ``.unsealed`` file and a started collection with
   no outcome are notices.
One set of keys decides steps 3, 5 and 6: the keys the ledger declares (entry 0 and
``key_trusted``, cut by ``key_revoked``). Keys pinned with ``--trust`` only decide whether
entry 0 is believed; they grant nothing by themselves.
Exit status (CLI): 0 when there is no problem, 1 otherwise.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sealtrail.custody.bundle_format import BUNDLE_SUFFIX, PARTIAL_SUFFIX, check_bundle_id
from sealtrail.custody.bundle_reader import check_bundle
from sealtrail.custody.canonical import NotCanonicalError, parse_json
from sealtrail.custody.case import Case
from sealtrail.custody.checkpoint import Checkpoint, parse_and_verify_checkpoint
from sealtrail.custody.keys import PublicKey
from sealtrail.custody.ledger import CHECKPOINT_SIGNED, LEDGER_REPAIRED
from sealtrail.custody.ledger_check import LedgerCheck, check_ledger, split_ledger
from sealtrail.custody.merkle import MerkleTree, leaf_hash
from sealtrail.custody.recovery import UNSEALED_SUFFIX, bundle_history
from sealtrail.errors import (
    CaseError,
    CheckpointInvalid,
    CustodyError,
    HashMismatch,
    InconsistentLedger,
    LedgerBroken,
    ManifestInvalid,
    MemberMissing,
    MemberUnexpected,
)


@dataclass
class VerificationReport:
    """What a verification found. ``ok`` only when there are no problems."""

    target: str
    problems: list[CustodyError] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    checked: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json_obj(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "target": self.target,
            "problems": [problem_json(p) for p in self.problems],
            "notices": list(self.notices),
            "checked": dict(self.checked),
        }

    def raise_first(self) -> None:
        if self.problems:
            raise self.problems[0]


def problem_json(problem: CustodyError) -> dict[str, Any]:
    out: dict[str, Any] = {
        "kind": type(problem).__name__,
        "where": problem.where,
        "message": problem.message,
        "text": str(problem),
    }
    if problem.expected is not None or problem.observed is not None:
        out["expected"] = None if problem.expected is None else str(problem.expected)
        out["observed"] = None if problem.observed is None else str(problem.observed)
    return out


def read_ledger_lines(path: Path) -> tuple[list[bytes], bytes]:
    """The entries' lines (without newlines) and the torn tail (b"" when there is none).

    An unterminated last line that is a complete entry continuing the ledger counts as an
    entry (``ledger_check.split_ledger``; docs/ledger-format.md section 7).
    """
    split = split_ledger(path.read_bytes())
    return split.lines, split.torn


def _parsed(lines: Sequence[bytes]) -> list[dict[str, Any] | None]:
    out: list[dict[str, Any] | None] = []
    for line in lines:
        try:
            value = parse_json(line)
        except NotCanonicalError:
            value = None
        out.append(value if isinstance(value, dict) else None)
    return out


def check_case(
    root: Path,
    pinned: Sequence[PublicKey] = (),
    checkpoint_files: Sequence[Path] = (),
) -> VerificationReport:
    """Run the checks in the module docstring's order and collect every problem."""
    report = VerificationReport(str(root))
    try:
        case = Case.load(root)
    except CaseError as exc:
        report.problems.append(CustodyError(str(root), str(exc)))
        return report
    if not case.ledger_path.exists():
        report.problems.append(LedgerBroken(str(case.ledger_path), "ledger file is missing"))
        return report
    split = split_ledger(case.ledger_path.read_bytes())
    lines = split.lines
    if split.torn:
        report.notices.append(
            f"ledger ends with {len(split.torn)} bytes of a torn, unacknowledged append "
            f"({split.tail_problem}; cut and kept aside by the next writer)"
        )
    if split.unterminated:
        report.notices.append(
            f"ledger entry {len(lines) - 1} lacks its final newline; it is a complete entry "
            "and counts as one (the next writer restores the newline)"
        )
    ledger = check_ledger(lines, pinned)
    report.problems.extend(ledger.problems)
    if not ledger.pinned_used:
        report.notices.append(
            "no --trust key given: trusted the keys the case declares itself (trust on first "
            "use); pin the examiner's public key with --trust to detect a rewritten case"
        )
    entries = _parsed(lines)
    report.checked["ledger_entries"] = len(lines)
    for i, fields in enumerate(entries):
        if fields and fields.get("action") == LEDGER_REPAIRED:
            details = fields.get("details") or {}
            report.notices.append(
                f"ledger entry {i}: a writer moved an invalid last line aside to "
                f"{details.get('file')!r} ({details.get('reason')})")
    _check_case_file(case, entries, report)
    _check_checkpoints(case, lines, ledger, checkpoint_files, report)
    _check_bundles(case, entries, ledger, report)
    return report


def _check_case_file(
    case: Case, entries: Sequence[dict[str, Any] | None], report: VerificationReport
) -> None:
    first = entries[0] if entries else None
    if not first:
        return
    details = first.get("details") or {}
    pairs = {
        "case_id": (first.get("case_id"), case.case_id),
        "title": (details.get("title"), case.title),
        "examiner": (details.get("examiner"), case.examiner),
        "origin": (details.get("origin"), case.origin),
    }
    for name, (signed, stated) in pairs.items():
        if signed != stated:
            report.problems.append(
                CustodyError(
                    f"{case.root}/case.json", f"{name} differs from ledger entry 0",
                    expected=signed, observed=stated,
                )
            )


def checkpoint_for_ledger(text: bytes, ledger: LedgerCheck, *, where: str) -> Checkpoint:
    """Verify a signed checkpoint against the ledger's key history and parse it (step 5).

    The note's signatures are checked against every key the ledger trusted at some index
    (so a bad signature by any of them rejects the note); then at least one good signature
    must be by a key trusted at index ``size``: a key added after the checkpoint's last entry,
    or revoked before it, does not count.

    Raises:
        CheckpointInvalid: the note is malformed, a signature fails, or no good signature is
            by a key trusted at index ``size``.
    """
    candidates = [key.public for key in ledger.keys.values()]
    checkpoint, signers = parse_and_verify_checkpoint(text, candidates, where=where)
    size = checkpoint.size
    if any(ledger.is_trusted(key.key_id, size) for key in signers):
        return checkpoint
    states = []
    for key in signers:
        state = ledger.keys[key.key_id]
        if state.revoked_at is not None and size > state.revoked_at:
            states.append(f"{key.key_id} revoked at entry {state.revoked_at}")
        else:
            states.append(f"{key.key_id} trusted only from entry {state.trusted_from}")
    raise CheckpointInvalid(
        where, f"no signature by a key trusted at entry {size}, the checkpoint's size (signed "
        f"by {', '.join(states)})",
        expected=sorted(k for k in ledger.keys if ledger.is_trusted(k, size)),
        observed=sorted(key.key_id for key in signers))


def _check_checkpoints(
    case: Case,
    lines: Sequence[bytes],
    ledger: LedgerCheck,
    given: Sequence[Path],
    report: VerificationReport,
) -> None:
    folder = case.checkpoints_dir
    stored = sorted(folder.glob("*.checkpoint")) if folder.is_dir() else []
    names = {path.name for path in stored}
    for entry in ledger.entries:
        details = entry.fields.get("details")
        if entry.fields.get("action") == CHECKPOINT_SIGNED and isinstance(details, dict):
            name = details.get("file")
            if isinstance(name, str) and name not in names:
                report.notices.append(
                    f"ledger entry {entry.index}: the checkpoint file it records ({name!r}) is "
                    "not in checkpoints/ (its size and root are in the entry, and were checked)")
    files = [*stored, *given]
    if not files:
        return
    tree = MerkleTree([leaf_hash(line) for line in lines])
    seen: dict[int, dict[bytes, str]] = defaultdict(dict)
    for path in files:
        where = f"checkpoint {path}"
        try:
            checkpoint = checkpoint_for_ledger(path.read_bytes(), ledger, where=where)
        except OSError as exc:
            report.problems.append(CheckpointInvalid(where, f"cannot read: {exc.strerror}"))
            continue
        except CheckpointInvalid as exc:
            report.problems.append(exc)
            continue
        report.checked["checkpoints"] = report.checked.get("checkpoints", 0) + 1
        seen[checkpoint.size].setdefault(checkpoint.root, str(path))
        problem = consistency_problem(case, checkpoint, tree, len(lines), where)
        if problem:
            report.problems.append(problem)
    for size, roots in sorted(seen.items()):
        if len(roots) > 1:
            report.problems.append(
                InconsistentLedger(
                    f"checkpoints of size {size}",
                    "two signed checkpoints of one size with different roots (equivocation): "
                    + ", ".join(sorted(roots.values())),
                )
            )


def consistency_problem(
    case: Case, checkpoint: Checkpoint, tree: MerkleTree, size: int, where: str
) -> CustodyError | None:
    """Why the ledger (of ``size`` entries) does not extend ``checkpoint``, or None."""
    if checkpoint.origin != case.origin:
        return CheckpointInvalid(
            where, "checkpoint is for another log", expected=case.origin,
            observed=checkpoint.origin,
        )
    if checkpoint.size > size:
        return InconsistentLedger(
            where,
            f"ledger has {size} entries but the checkpoint commits to {checkpoint.size}: "
            "entries after the checkpoint were removed (truncated or rolled back)",
            expected=checkpoint.size,
            observed=size,
        )
    root = tree.root(checkpoint.size)
    if root != checkpoint.root:
        return InconsistentLedger(
            where,
            f"the ledger's first {checkpoint.size} entries are not the ones the checkpoint "
            "signed: history was rewritten or forked",
            expected=checkpoint.root.hex(),
            observed=root.hex(),
        )
    return None


def sealed_bundles(case: Case) -> dict[str, tuple[int, dict[str, Any]]]:
    """The bundles the case's ledger records as sealed, in ledger order."""
    lines, _tail = read_ledger_lines(case.ledger_path)
    sealed, _, _ = bundle_history(_parsed(lines))
    return dict(sorted(sealed.items(), key=lambda kv: kv[1][0]))


def _check_bundles(
    case: Case,
    entries: Sequence[dict[str, Any] | None],
    ledger: LedgerCheck,
    report: VerificationReport,
) -> None:
    sealed, started, ended = bundle_history(entries)
    for bundle_id, index in started.items():
        if bundle_id not in ended:
            report.notices.append(
                f"ledger entry {index}: collection {bundle_id} started and has no recorded "
                "outcome (interrupted before it could be recorded)"
            )
    bundles = 0
    for bundle_id, (index, fields) in sorted(sealed.items(), key=lambda kv: kv[1][0]):
        where = f"bundle {bundle_id}"
        if not check_bundle_id(bundle_id):
            report.problems.append(LedgerBroken(
                f"ledger entry {index}", "bundle_sealed names a bundle id that is not a plain "
                "file name", expected="[A-Za-z0-9][A-Za-z0-9._-]{0,127}", observed=bundle_id))
            continue
        path = case.bundles_dir / f"{bundle_id}{BUNDLE_SUFFIX}"
        if not path.exists():
            report.problems.append(
                MemberMissing(where, f"sealed at ledger entry {index}, but the file is missing")
            )
            continue
        actor = fields.get("actor") or {}
        sealer = str(actor.get("key_id"))
        trusted = [ledger.keys[sealer].public] if ledger.is_trusted(sealer, index) else []
        result = check_bundle(path, trusted)
        report.problems.extend(result.problems)
        bundles += 1
        report.checked["members"] = report.checked.get("members", 0) + result.members_checked
        report.checked["bytes"] = report.checked.get("bytes", 0) + result.bytes_checked
        if result.manifest_sha256 is not None:
            digest = result.manifest_sha256
            recorded = (fields.get("subject") or {}).get("manifest_sha256")
            if digest != recorded:
                report.problems.append(
                    HashMismatch(
                        f"{where} manifest",
                        f"manifest differs from the one sealed at ledger entry {index}",
                        expected=recorded, observed=digest,
                    )
                )
            if result.manifest and result.manifest.get("case_id") != case.case_id:
                report.problems.append(
                    ManifestInvalid(
                        f"{where} manifest", "belongs to another case",
                        expected=case.case_id, observed=result.manifest.get("case_id"),
                    )
                )
    report.checked["bundles"] = bundles
    if case.bundles_dir.is_dir():
        for path in sorted(case.bundles_dir.iterdir()):
            if path.name.endswith((PARTIAL_SUFFIX, UNSEALED_SUFFIX)):
                report.notices.append(f"unsealed collection left in {path.name} (not evidence)")
            elif path.name.endswith(BUNDLE_SUFFIX):
                bundle_id = path.name.removesuffix(BUNDLE_SUFFIX)
                if bundle_id not in sealed:
                    report.problems.append(MemberUnexpected(
                        f"bundle {path.name}", "is in bundles/ but no ledger entry seals it"
                        + _recovery_hint(bundle_id, started, ended, entries, case.root)))


def _recovery_hint(bundle_id: str, started: dict[str, int], ended: set[str],
                   entries: Sequence[dict[str, Any] | None], root: Path) -> str:
    """How to recover a bundle whose collection was interrupted after it was sealed."""
    if bundle_id not in started or bundle_id in ended:
        return ""
    index = started[bundle_id]
    actor = (entries[index] or {}).get("actor") or {}
    return (f" (its collection, started at ledger entry {index}, was interrupted after the "
            f"seal: the next command that writes to the ledger with the key that started it, "
            f"{actor.get('name')} ({actor.get('key_id')}), records it, e.g. sealtrail ledger "
            f"repair {root} --key KEYFILE)")


def check_single_bundle(path: Path, trusted: Sequence[PublicKey]) -> VerificationReport:
    """Verify one bundle on its own (what legal receives): signature by a trusted key,
    member set, every member's size and SHA-256."""
    report = VerificationReport(str(path))
    result = check_bundle(path, trusted)
    report.problems.extend(result.problems)
    report.checked = {
        "bundles": 1,
        "members": result.members_checked,
        "bytes": result.bytes_checked,
    }
    if result.manifest_sha256 is not None:
        report.notices.append(
            "manifest sha256 " + result.manifest_sha256
            + " (compare with the case ledger's bundle_sealed entry)"
        )
    return report
