"""Tests for sealtrail/custody/merkle.py: public vectors, known roots, properties."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sealtrail.custody.merkle import (
    EMPTY_ROOT,
    MerkleTree,
    leaf_hash,
    node_hash,
    root_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)
from sealtrail.errors import CustodyError, InconsistentLedger
from tests.shared_data import ABSENT, vector_path, vectors_dir


def _vector_ids(kind: str) -> list[str]:
    # Collected at import time to give each file its own test id; when the folder is absent
    # one placeholder id remains and the test skips through vector_path.
    folder = vectors_dir() / "merkle" / "testdata" / kind
    names = sorted(str(p.relative_to(folder)) for p in folder.rglob("*.json"))
    return names or [ABSENT]


def _load(kind: str, name: str) -> dict:
    folder = vector_path(f"merkle/testdata/{kind}")
    return json.loads((folder / name).read_text())


def _b64(value: str) -> bytes:
    return base64.b64decode(value)


def _proof(value: list[str] | None) -> list[bytes]:
    return [_b64(p) for p in value or []]


def _leaves(n: int) -> list[bytes]:
    return [leaf_hash(i.to_bytes(4, "big")) for i in range(n)]


def _naive_root(hashes: list[bytes]) -> bytes:
    """MTH straight from RFC 9162 2.1.1, recursive: the reference the fast code must match."""
    if not hashes:
        return hashlib.sha256(b"").digest()
    if len(hashes) == 1:
        return hashes[0]
    k = 1
    while k * 2 < len(hashes):
        k *= 2
    return node_hash(_naive_root(hashes[:k]), _naive_root(hashes[k:]))


# --- public vectors (transparency-dev/merkle testdata) ---------------------------------------


def test_vectors_are_present():
    folder = vector_path("merkle/testdata")
    assert len(list(folder.rglob("*.json"))) >= 190


@pytest.mark.parametrize("name", _vector_ids("inclusion"))
def test_inclusion_vector(name: str):
    v = _load("inclusion", name)
    args = (_b64(v["leafHash"]), v["leafIdx"], v["treeSize"], _proof(v["proof"]), _b64(v["root"]))
    if v["wantErr"]:
        with pytest.raises(CustodyError) as info:
            verify_inclusion(*args)
        assert info.value.where == "merkle inclusion proof"
        assert type(info.value) is CustodyError
    else:
        assert verify_inclusion(*args) is None


@pytest.mark.parametrize("name", _vector_ids("consistency"))
def test_consistency_vector(name: str):
    v = _load("consistency", name)
    args = (v["size1"], v["size2"], _b64(v["root1"]), _b64(v["root2"]), _proof(v["proof"]))
    if v["wantErr"]:
        with pytest.raises(InconsistentLedger) as info:
            verify_consistency(*args)
        assert info.value.where == "merkle consistency proof"
    else:
        assert verify_consistency(*args) is None


def _happy_vectors(kind: str) -> list[dict]:
    folder = vector_path(f"merkle/testdata/{kind}")
    found = [json.loads(p.read_text()) for p in sorted(folder.rglob("happy-path.json"))]
    assert found
    return found


def test_roots_json_known_answers():
    data = json.loads(vector_path("merkle/roots.json").read_text())
    entries = [bytes.fromhex(h) for h in data["leaf_inputs_hex"]]
    hashes = [leaf_hash(e) for e in entries]
    tree = MerkleTree.from_entries(entries)
    for n, want_hex in enumerate(data["root_for_first_n_leaves_hex"]):
        want = bytes.fromhex(want_hex)
        assert root_from_leaf_hashes(hashes[:n]) == want, n
        assert tree.root(n) == want, n
        assert MerkleTree(hashes[:n]).root() == want, n


def test_happy_path_proofs_are_what_the_tree_produces():
    data = json.loads(vector_path("merkle/roots.json").read_text())
    tree = MerkleTree.from_entries(bytes.fromhex(h) for h in data["leaf_inputs_hex"])
    for v in _happy_vectors("inclusion"):
        assert tree.inclusion_proof(v["leafIdx"], v["treeSize"]) == _proof(v["proof"])
        assert tree.root(v["treeSize"]) == _b64(v["root"])
    for v in _happy_vectors("consistency"):
        assert tree.consistency_proof(v["size1"], v["size2"]) == _proof(v["proof"])
        assert tree.root(v["size1"]) == _b64(v["root1"])
        assert tree.root(v["size2"]) == _b64(v["root2"])


# --- hashing and roots ------------------------------------------------------------------------


def test_leaf_and_node_hashes_are_domain_separated():
    a, b = leaf_hash(b"a"), leaf_hash(b"b")
    assert a == hashlib.sha256(b"\x00a").digest()
    assert node_hash(a, b) == hashlib.sha256(b"\x01" + a + b).digest()
    # A node's preimage offered as a leaf gives a different hash (no second preimage).
    assert leaf_hash(a + b) != node_hash(a, b)


def test_empty_tree_root_is_sha256_of_nothing():
    assert root_from_leaf_hashes([]) == EMPTY_ROOT == hashlib.sha256(b"").digest()
    assert MerkleTree().root() == EMPTY_ROOT
    assert MerkleTree(_leaves(5)).root(0) == EMPTY_ROOT


@pytest.mark.parametrize("n", range(71))
def test_root_matches_naive_definition(n: int):
    hashes = _leaves(n)
    want = _naive_root(hashes)
    assert root_from_leaf_hashes(hashes) == want
    tree = MerkleTree(hashes)
    assert tree.root() == want
    assert len(tree) == n


def test_prefix_roots_match_naive_definition():
    hashes = _leaves(70)
    tree = MerkleTree(hashes)
    for m in range(71):
        assert tree.root(m) == _naive_root(hashes[:m])


def test_append_builds_the_same_tree():
    hashes = _leaves(70)
    tree = MerkleTree()
    for i, h in enumerate(hashes, start=1):
        assert tree.append(h) == i
        assert tree.root() == root_from_leaf_hashes(hashes[:i])
    full = MerkleTree(hashes)
    assert tree.inclusion_proof(37, 70) == full.inclusion_proof(37, 70)
    assert tree.consistency_proof(23, 70) == full.consistency_proof(23, 70)


def test_leaf_hashes_must_be_32_bytes():
    with pytest.raises(ValueError, match="leaf hash 1 is not 32 bytes"):
        root_from_leaf_hashes([b"\x00" * 32, b"short"])
    with pytest.raises(ValueError, match="leaf hash 0 is not 32 bytes"):
        MerkleTree([b"x" * 33])


def test_proof_arguments_out_of_range_are_refused():
    tree = MerkleTree(_leaves(4))
    with pytest.raises(ValueError, match="index 4 is outside"):
        tree.inclusion_proof(4, 4)
    with pytest.raises(ValueError, match="size 5 is outside"):
        tree.root(5)
    with pytest.raises(ValueError, match="old size 0 is outside"):
        tree.consistency_proof(0, 4)
    with pytest.raises(ValueError, match="old size 3 is outside"):
        tree.consistency_proof(3, 2)
    assert tree.consistency_proof(4, 4) == []


def test_million_leaf_root_is_fast():
    import time

    hashes = [hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(1_000_000)]
    start = time.perf_counter()
    root_from_leaf_hashes(hashes)
    assert time.perf_counter() - start < 5


# --- verification edge cases: type, fields and message ----------------------------------------


def _tree_and_root(n: int = 7) -> tuple[MerkleTree, bytes]:
    tree = MerkleTree(_leaves(n))
    return tree, tree.root()


def test_inclusion_index_at_size_is_refused():
    tree, root = _tree_and_root()
    with pytest.raises(CustodyError, match="leaf index 7 is not below tree size 7"):
        verify_inclusion(tree.leaf(6), 7, 7, tree.inclusion_proof(6, 7), root)


def test_inclusion_in_empty_tree_is_refused():
    with pytest.raises(CustodyError, match="leaf index 0 is not below tree size 0"):
        verify_inclusion(leaf_hash(b""), 0, 0, [], EMPTY_ROOT)


def test_inclusion_with_extra_proof_hash_reports_lengths():
    tree, root = _tree_and_root()
    proof = [*tree.inclusion_proof(2, 7), b"\x00" * 32]
    with pytest.raises(CustodyError, match="wrong length") as info:
        verify_inclusion(tree.leaf(2), 2, 7, proof, root)
    assert (info.value.expected, info.value.observed) == (3, 4)


def test_inclusion_of_wrong_leaf_reports_roots():
    tree, root = _tree_and_root()
    with pytest.raises(CustodyError, match="does not lead to the root") as info:
        verify_inclusion(tree.leaf(3), 2, 7, tree.inclusion_proof(2, 7), root)
    assert info.value.expected == root.hex()
    assert info.value.where == "merkle inclusion proof"


def test_inclusion_where_names_the_caller_item():
    tree, root = _tree_and_root()
    with pytest.raises(CustodyError, match="^ledger entry 2: ") as info:
        verify_inclusion(
            tree.leaf(3), 2, 7, tree.inclusion_proof(2, 7), root, where="ledger entry 2"
        )
    assert info.value.where == "ledger entry 2"


def test_inclusion_short_proof_hash_is_refused():
    tree, root = _tree_and_root()
    proof = tree.inclusion_proof(2, 7)
    proof[1] = proof[1][:31]
    with pytest.raises(CustodyError, match="proof hash 1 is not a 32-byte hash"):
        verify_inclusion(tree.leaf(2), 2, 7, proof, root)


def test_consistency_rollback_is_refused():
    tree, _ = _tree_and_root()
    with pytest.raises(InconsistentLedger, match="tree shrank from 7 to 5 leaves"):
        verify_consistency(7, 5, tree.root(7), tree.root(5), [])


def test_consistency_from_empty_tree_is_refused():
    tree, root = _tree_and_root()
    with pytest.raises(InconsistentLedger, match="old size is 0"):
        verify_consistency(0, 7, EMPTY_ROOT, root, [])


def test_consistency_same_size_different_roots_is_a_fork():
    tree, root = _tree_and_root()
    other = MerkleTree(_leaves(8)[1:]).root()
    with pytest.raises(InconsistentLedger, match="two different roots for tree size 7") as info:
        verify_consistency(7, 7, root, other, [])
    assert (info.value.expected, info.value.observed) == (root.hex(), other.hex())


def test_consistency_same_size_with_proof_is_refused():
    tree, root = _tree_and_root()
    with pytest.raises(InconsistentLedger, match="proof is not empty"):
        verify_consistency(7, 7, root, root, [root])


def test_consistency_truncated_proof_reports_lengths():
    tree, _ = _tree_and_root(20)
    proof = tree.consistency_proof(6, 20)
    with pytest.raises(InconsistentLedger, match="wrong length") as info:
        verify_consistency(6, 20, tree.root(6), tree.root(20), proof[:-1])
    assert (info.value.expected, info.value.observed) == (len(proof), len(proof) - 1)


def test_consistency_with_forked_new_tree_names_new_root():
    tree, _ = _tree_and_root(20)
    forked = MerkleTree([*_leaves(20)[:6], *_leaves(40)[26:40]])
    proof = forked.consistency_proof(6, 20)
    with pytest.raises(InconsistentLedger, match="does not lead to the new root of size 20"):
        verify_consistency(6, 20, tree.root(6), tree.root(20), proof)


def test_consistency_with_rewritten_history_names_old_root():
    tree, _ = _tree_and_root(20)
    rewritten = MerkleTree(_leaves(21)[1:])
    proof = rewritten.consistency_proof(6, 20)
    with pytest.raises(InconsistentLedger, match="does not lead to the old root of size 6"):
        verify_consistency(6, 20, tree.root(6), rewritten.root(20), proof)


# --- properties -------------------------------------------------------------------------------

_TREES: dict[int, MerkleTree] = {}


def _tree(n: int) -> MerkleTree:
    if n not in _TREES:
        _TREES[n] = MerkleTree(_leaves(n))
    return _TREES[n]


@st.composite
def _sizes(draw: st.DrawFn) -> tuple[int, int, int, int]:
    n = draw(st.integers(1, 300))
    new = draw(st.integers(1, n))
    old = draw(st.integers(1, new))
    index = draw(st.integers(0, new - 1))
    return n, old, new, index


def _flip(proof: list[bytes], which: int, byte: int, bit: int) -> list[bytes]:
    damaged = list(proof)
    h = bytearray(damaged[which])
    h[byte] ^= 1 << bit
    damaged[which] = bytes(h)
    return damaged


@settings(max_examples=300, deadline=None)
@given(_sizes(), st.data())
def test_generated_proofs_verify_and_any_flipped_bit_fails(sizes, data):
    n, old, new, index = sizes
    tree = _tree(n)
    byte = data.draw(st.integers(0, 31))
    bit = data.draw(st.integers(0, 7))

    inclusion = tree.inclusion_proof(index, new)
    verify_inclusion(tree.leaf(index), index, new, inclusion, tree.root(new))
    for which in range(len(inclusion)):
        with pytest.raises(CustodyError):
            verify_inclusion(
                tree.leaf(index), index, new, _flip(inclusion, which, byte, bit), tree.root(new)
            )

    consistency = tree.consistency_proof(old, new)
    verify_consistency(old, new, tree.root(old), tree.root(new), consistency)
    for which in range(len(consistency)):
        with pytest.raises(InconsistentLedger):
            verify_consistency(
                old, new, tree.root(old), tree.root(new), _flip(consistency, which, byte, bit)
            )


@settings(max_examples=100, deadline=None)
@given(_sizes())
def test_proofs_do_not_transfer_to_other_positions(sizes):
    n, old, new, index = sizes
    tree = _tree(n)
    proof = tree.inclusion_proof(index, new)
    if new > 1:
        other = (index + 1) % new
        with pytest.raises(CustodyError):
            verify_inclusion(tree.leaf(index), other, new, proof, tree.root(new))
    if old < new:
        with pytest.raises(InconsistentLedger):
            verify_consistency(old, new, tree.root(old), tree.root(new), [])


def test_every_proof_of_small_trees_verifies():
    # Exhaustive for small sizes: every (index, size) and (old, new) pair.
    tree = _tree(33)
    for new in range(1, 34):
        for index in range(new):
            verify_inclusion(
                tree.leaf(index), index, new, tree.inclusion_proof(index, new), tree.root(new)
            )
        for old in range(1, new + 1):
            verify_consistency(
                old, new, tree.root(old), tree.root(new), tree.consistency_proof(old, new)
            )


def test_every_vector_file_is_a_test():
    # Guards the import-time id collection: every file on disk became its own test.
    folder = vector_path("merkle/testdata")
    on_disk = len(list(folder.rglob("*.json")))
    assert on_disk == len(_vector_ids("inclusion")) + len(_vector_ids("consistency"))
