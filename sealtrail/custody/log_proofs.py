"""Checkpoints of a case's ledger, and proofs that today's ledger extends one.

A checkpoint handed to someone else (counsel, a second site) is what exposes an insider who
holds the signing key and rewrites history: without one, such a rewrite is undetectable, and
the docs say so. Issuing a checkpoint stores it write-once in ``CASE/checkpoints/`` and records
the act in the ledger (that entry comes after the checkpoint, so it is not covered by it).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sealtrail.custody.case import Case
from sealtrail.custody.checkpoint import Checkpoint, sign_checkpoint
from sealtrail.custody.durable import write_new_file
from sealtrail.custody.keys import PublicKey, SigningKey
from sealtrail.custody.ledger import CHECKPOINT_SIGNED
from sealtrail.custody.ledger_check import check_ledger
from sealtrail.custody.merkle import MerkleTree, leaf_hash, verify_consistency
from sealtrail.custody.verify import checkpoint_for_ledger, consistency_problem, read_ledger_lines
from sealtrail.errors import CustodyError, UsageError


@dataclass(frozen=True, slots=True)
class IssuedCheckpoint:
    checkpoint: Checkpoint
    text: bytes
    path: Path
    ledger_index: int


def ledger_tree(case: Case) -> tuple[MerkleTree, int]:
    lines, _tail = read_ledger_lines(case.ledger_path)
    return MerkleTree([leaf_hash(line) for line in lines]), len(lines)


def issue_checkpoint(case: Case, key: SigningKey) -> IssuedCheckpoint:
    """Sign a checkpoint of the ledger as it is now; store it and record the act."""
    ledger = case.writer(key)  # settles the end first, so the tree is of its entries
    tree, size = ledger_tree(case)
    if size == 0:
        raise UsageError(f"the ledger of {case.root} is empty; nothing to checkpoint")
    checkpoint = Checkpoint(case.origin, size, tree.root())
    text = sign_checkpoint(checkpoint, key)
    case.checkpoints_dir.mkdir(exist_ok=True)
    path = case.checkpoints_dir / f"{size:012d}-{checkpoint.root.hex()[:16]}.checkpoint"
    if path.exists():
        if path.read_bytes() != text:  # same tree, another signer or signature
            path = path.with_name(f"{path.stem}-{key.key_id}.checkpoint")
    if not path.exists():
        write_new_file(path, text)
    entry = ledger.append(
        key,
        CHECKPOINT_SIGNED,
        role="examiner",
        details={
            "size": size,
            "root": base64.b64encode(checkpoint.root).decode(),
            "file": path.name,
        },
    )
    return IssuedCheckpoint(checkpoint, text, path, entry.index)


@dataclass(frozen=True, slots=True)
class ConsistencyResult:
    checkpoint: Checkpoint
    size: int
    root: bytes
    proof: list[bytes]
    problem: CustodyError | None


def prove_extends(
    case: Case, checkpoint_text: bytes, pinned: Sequence[PublicKey], where: str
) -> ConsistencyResult:
    """Prove (RFC 9162 consistency proof) that the ledger extends a checkpoint, or say why not.

    The checkpoint's signatures are checked as ``verify`` checks them: against the ledger's
    key history (entry 0 anchored by the pinned keys), counting only keys trusted at index
    ``size``. The proof is computed from the ledger and then verified independently of it.
    """
    lines, _tail = read_ledger_lines(case.ledger_path)
    checkpoint = checkpoint_for_ledger(checkpoint_text, check_ledger(lines, pinned), where=where)
    tree = MerkleTree([leaf_hash(line) for line in lines])
    size = len(lines)
    problem = consistency_problem(case, checkpoint, tree, size, where)
    proof: list[bytes] = []
    if problem is None:
        proof = tree.consistency_proof(checkpoint.size, size) if checkpoint.size else []
        if checkpoint.size:
            try:
                verify_consistency(checkpoint.size, size, checkpoint.root, tree.root(), proof)
            except CustodyError as exc:
                problem = exc
    return ConsistencyResult(checkpoint, size, tree.root() if size else b"", proof, problem)
