"""RFC 6962 / RFC 9162 (section 2.1) Merkle trees over byte-string leaves, with proofs.

Definitions (RFC 9162 2.1.1), which every function here keeps:
    MTH({})      = SHA-256("")                                  (the empty tree)
    MTH({d0})    = leaf_hash(d0) = SHA-256(0x00 || d0)
    MTH(D[0:n])  = node_hash(MTH(D[0:k]), MTH(D[k:n])) = SHA-256(0x01 || left || right)
                   where k is the largest power of two strictly less than n.
The 0x00 / 0x01 prefixes keep a leaf from ever being passed off as an inner node (second
preimage), and the fixed split point means a tree of n leaves has exactly one shape, so the
root of the first m leaves of a log never changes as the log grows. That is what makes
consistency proofs (the log only grew) and inclusion proofs (this entry is in it) possible.

Verification never returns False: ``verify_inclusion`` raises ``CustodyError`` and
``verify_consistency`` raises ``InconsistentLedger`` with the reason, and, for a root that does
not match, the expected and calculated roots (hex). Order of checks, in both:
    1. sizes and index in range (a proof about an impossible tree is refused before hashing);
    2. every hash given is 32 bytes;
    3. the proof has exactly the number of hashes the sizes imply (a padded or truncated proof
       is refused even if an implementation could be tricked into ignoring the extra hashes);
    4. the RFC 9162 algorithm recomputes the root(s), which must equal the ones given.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

from sealtrail.errors import CustodyError, InconsistentLedger

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
INCLUSION_WHERE = "merkle inclusion proof"
CONSISTENCY_WHERE = "merkle consistency proof"

_sha256 = hashlib.sha256


def leaf_hash(data: bytes) -> bytes:
    """RFC 6962 leaf hash: SHA-256(0x00 || data)."""
    return _sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 6962 interior node hash: SHA-256(0x01 || left || right)."""
    return _sha256(b"\x01" + left + right).digest()


def _largest_pow2_below(n: int) -> int:
    """The split point k of a tree of n >= 2 leaves: the largest power of two with k < n."""
    return 1 << ((n - 1).bit_length() - 1)


def _check_leaf_hashes(hashes: Sequence[bytes]) -> None:
    for i, h in enumerate(hashes):
        if not isinstance(h, bytes | bytearray) or len(h) != HASH_SIZE:
            raise ValueError(f"leaf hash {i} is not {HASH_SIZE} bytes")


def _pair_up(level: Sequence[bytes]) -> list[bytes]:
    """Hash adjacent pairs of one level; an unpaired last node is dropped (not promoted)."""
    it = iter(level)
    return [_sha256(b"\x01" + left + right).digest() for left, right in zip(it, it, strict=False)]


def root_from_leaf_hashes(hashes: Sequence[bytes]) -> bytes:
    """The root of the tree whose leaves have these leaf hashes (SHA-256("") if none).

    Bottom-up: each level hashes adjacent pairs and an odd last node moves up unchanged. This
    gives the same root as the recursive definition, because the largest-power-of-two split
    puts every complete pair on the left and the odd node is always the right edge.
    """
    _check_leaf_hashes(hashes)
    if not hashes:
        return EMPTY_ROOT
    level = list(hashes)
    while len(level) > 1:
        carry = level[-1] if len(level) % 2 else None
        level = _pair_up(level)
        if carry is not None:
            level.append(carry)
    return bytes(level[0])


class MerkleTree:
    """A Merkle tree that keeps every complete subtree hash, so prefix roots and proofs are cheap.

    ``_levels[h][i]`` is the hash of the complete subtree of ``2**h`` leaves starting at leaf
    ``i * 2**h``. Only complete subtrees are stored, so appending never rewrites a stored hash:
    a tree of n leaves holds fewer than 2n hashes, and the root of any prefix, an inclusion
    proof or a consistency proof takes O(log n) hashes.
    """

    __slots__ = ("_levels",)

    def __init__(self, leaf_hashes: Iterable[bytes] = ()) -> None:
        leaves = [bytes(h) for h in leaf_hashes]
        _check_leaf_hashes(leaves)
        self._levels: list[list[bytes]] = [leaves]
        level = leaves
        while len(level) > 1:
            level = _pair_up(level)
            self._levels.append(level)

    @classmethod
    def from_entries(cls, entries: Iterable[bytes]) -> MerkleTree:
        """Build a tree from the entries themselves (each is hashed with ``leaf_hash``)."""
        return cls(leaf_hash(e) for e in entries)

    @property
    def size(self) -> int:
        return len(self._levels[0])

    def __len__(self) -> int:
        return self.size

    def leaf(self, index: int) -> bytes:
        """The leaf hash at ``index``."""
        return self._levels[0][index]

    def append(self, leaf_hash_: bytes) -> int:
        """Add one leaf hash; return the new size. Completes at most log2(n) subtrees."""
        _check_leaf_hashes([leaf_hash_])
        self._levels[0].append(bytes(leaf_hash_))
        height = 0
        while len(self._levels[height]) % 2 == 0:
            level = self._levels[height]
            if height + 1 == len(self._levels):
                self._levels.append([])
            self._levels[height + 1].append(node_hash(level[-2], level[-1]))
            height += 1
        return self.size

    def _check_size(self, size: int, what: str) -> None:
        if not 0 <= size <= self.size:
            raise ValueError(f"{what} {size} is outside 0..{self.size}")

    def _range_hash(self, lo: int, hi: int) -> bytes:
        """MTH(D[lo:hi]) for a range the RFC recursion can produce (``lo`` is a multiple of the
        smallest power of two >= ``hi - lo``), with ``hi > lo``.

        Such a range is a run of complete aligned subtrees of strictly decreasing size (the
        binary digits of ``hi - lo``); the RFC tree over it folds them from the right.
        """
        parts: list[bytes] = []
        pos = lo
        remaining = hi - lo
        while remaining:
            height = remaining.bit_length() - 1
            parts.append(self._levels[height][pos >> height])
            pos += 1 << height
            remaining -= 1 << height
        result = parts.pop()
        while parts:
            result = node_hash(parts.pop(), result)
        return result

    def root(self, size: int | None = None) -> bytes:
        """The root of the first ``size`` leaves (all of them by default)."""
        if size is None:
            size = self.size
        self._check_size(size, "size")
        if size == 0:
            return EMPTY_ROOT
        return self._range_hash(0, size)

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """RFC 9162 2.1.3.1 PATH(index, D[0:size]): sibling hashes from the leaf upwards."""
        self._check_size(size, "size")
        if not 0 <= index < size:
            raise ValueError(f"index {index} is outside 0..{size - 1}")
        top_down: list[bytes] = []
        lo, hi = 0, size
        while hi - lo > 1:
            k = _largest_pow2_below(hi - lo)
            if index < lo + k:
                top_down.append(self._range_hash(lo + k, hi))
                hi = lo + k
            else:
                top_down.append(self._range_hash(lo, lo + k))
                lo += k
        top_down.reverse()
        return top_down

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        """RFC 9162 2.1.4.1 PROOF(old_size, D[0:new_size]) for 0 < old_size <= new_size.

        Equal sizes give an empty proof. A proof from size 0 is refused: every tree extends the
        empty one, so such a proof would prove nothing (and the verifier rejects it).
        """
        self._check_size(new_size, "new size")
        if not 0 < old_size <= new_size:
            raise ValueError(f"old size {old_size} is outside 1..{new_size}")
        top_down: list[bytes] = []
        lo, hi = 0, new_size
        m = old_size  # relative to lo
        complete = True  # SUBPROOF's b: the old tree is still the whole left part
        while m != hi - lo:
            k = _largest_pow2_below(hi - lo)
            if m <= k:
                top_down.append(self._range_hash(lo + k, hi))
                hi = lo + k
            else:
                top_down.append(self._range_hash(lo, lo + k))
                lo += k
                m -= k
                complete = False
        if not complete:
            top_down.append(self._range_hash(lo, hi))
        top_down.reverse()
        return top_down


def _hex(value: bytes) -> str:
    return bytes(value).hex()


def _inclusion_proof_size(index: int, size: int) -> int:
    """Number of hashes in PATH(index, D[0:size]).

    ``inner`` is the height below which index and the last leaf (size - 1) share no subtree:
    those levels each contribute one sibling. Above it, index lies on the right border of the
    tree and only levels where it is a right child contribute one.
    """
    inner = (index ^ (size - 1)).bit_length()
    return inner + bin(index >> inner).count("1")


def _check_hash(value: object, what: str, where: str, error: type[CustodyError]) -> bytes:
    if not isinstance(value, bytes | bytearray) or len(value) != HASH_SIZE:
        length = len(value) if isinstance(value, bytes | bytearray) else type(value).__name__
        raise error(
            where, f"{what} is not a {HASH_SIZE}-byte hash", expected=HASH_SIZE, observed=length
        )
    return bytes(value)


def verify_inclusion(
    leaf_hash: bytes,
    index: int,
    size: int,
    proof: Sequence[bytes] | None,
    root: bytes,
    *,
    where: str = INCLUSION_WHERE,
) -> None:
    """Check that ``leaf_hash`` is leaf ``index`` of the tree of ``size`` leaves with ``root``.

    RFC 9162 2.1.3.2. Raises ``CustodyError`` (``where`` names the proof) on any failure:
    an index outside 0..size-1 (including any index of the empty tree, which has no leaves),
    a hash that is not 32 bytes, a proof of the wrong length, or a recomputed root that differs
    from ``root``. Returns None on success.
    """
    proof = list(proof or [])
    if size < 0 or index < 0:
        raise CustodyError(where, f"negative index {index} or size {size}")
    if index >= size:
        raise CustodyError(where, f"leaf index {index} is not below tree size {size}")
    node = _check_hash(leaf_hash, "leaf hash", where, CustodyError)
    root = _check_hash(root, "root", where, CustodyError)
    for i, p in enumerate(proof):
        _check_hash(p, f"proof hash {i}", where, CustodyError)
    want = _inclusion_proof_size(index, size)
    if len(proof) != want:
        raise CustodyError(
            where,
            f"proof for leaf {index} of {size} has the wrong length",
            expected=want,
            observed=len(proof),
        )
    fn, sn = index, size - 1
    for p in proof:
        # sn == 0 cannot happen here: the length check above matches the steps below.
        if fn & 1 or fn == sn:
            node = node_hash(p, node)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            node = node_hash(node, p)
        fn >>= 1
        sn >>= 1
    if sn != 0 or node != root:
        raise CustodyError(
            where,
            f"proof for leaf {index} of {size} does not lead to the root",
            expected=_hex(root),
            observed=_hex(node),
        )


def verify_consistency(
    old_size: int,
    new_size: int,
    old_root: bytes,
    new_root: bytes,
    proof: Sequence[bytes] | None,
    *,
    where: str = CONSISTENCY_WHERE,
) -> None:
    """Check that the tree (new_size, new_root) extends the tree (old_size, old_root).

    RFC 9162 2.1.4.2. Raises ``InconsistentLedger`` on any failure:
      - ``old_size > new_size``: a log never shrinks (rollback or truncation);
      - ``old_size == 0``: every tree extends the empty tree, so there is nothing to prove and
        a caller relying on it has made a mistake;
      - equal sizes: the proof must be empty and the two roots identical (a different root at
        the same size is a fork; the roots are compared as given);
      - otherwise: 32-byte roots and proof hashes, exactly the proof length the sizes imply,
        and both recomputed roots equal to the given ones.
    Returns None on success.
    """
    proof = list(proof or [])
    if old_size < 0 or new_size < 0:
        raise InconsistentLedger(where, f"negative size ({old_size} -> {new_size})")
    if old_size > new_size:
        raise InconsistentLedger(where, f"tree shrank from {old_size} to {new_size} leaves")
    if old_size == 0:
        raise InconsistentLedger(
            where, "a consistency proof from the empty tree proves nothing (old size is 0)"
        )
    if old_size == new_size:
        if proof:
            raise InconsistentLedger(
                where,
                f"sizes are equal ({old_size}) but the proof is not empty",
                expected=0,
                observed=len(proof),
            )
        if bytes(old_root) != bytes(new_root):
            raise InconsistentLedger(
                where,
                f"two different roots for tree size {old_size}",
                expected=_hex(old_root),
                observed=_hex(new_root),
            )
        return
    old_root = _check_hash(old_root, "old root", where, InconsistentLedger)
    new_root = _check_hash(new_root, "new root", where, InconsistentLedger)
    for i, p in enumerate(proof):
        _check_hash(p, f"proof hash {i}", where, InconsistentLedger)

    # Length: the path from leaf old_size-1 to the new root, minus the levels inside the
    # largest complete subtree ending at old_size (2**shift leaves), plus that subtree's own
    # hash unless it is the whole old tree (then the verifier uses old_root as the seed).
    shift = (old_size & -old_size).bit_length() - 1
    inner = ((old_size - 1) ^ (new_size - 1)).bit_length()
    border = bin((old_size - 1) >> inner).count("1")
    old_is_pow2 = old_size == 1 << shift
    want = (0 if old_is_pow2 else 1) + (inner - shift) + border
    if len(proof) != want:
        raise InconsistentLedger(
            where,
            f"proof from {old_size} to {new_size} has the wrong length",
            expected=want,
            observed=len(proof),
        )

    path = [old_root, *proof] if old_is_pow2 else proof
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise InconsistentLedger(where, "proof is longer than the tree is high")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise InconsistentLedger(where, "proof is shorter than the tree is high")
    if fr != old_root:
        raise InconsistentLedger(
            where,
            f"proof does not lead to the old root of size {old_size}",
            expected=_hex(old_root),
            observed=_hex(fr),
        )
    if sr != new_root:
        raise InconsistentLedger(
            where,
            f"proof does not lead to the new root of size {new_size}",
            expected=_hex(new_root),
            observed=_hex(sr),
        )
