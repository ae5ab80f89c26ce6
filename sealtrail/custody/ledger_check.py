"""Checks of a custody ledger: pure functions over its lines (no I/O).

The format is described in ``ledger.py``. ``check_ledger`` runs every check and collects ALL
problems, so one damaged entry does not hide another; ``verify_ledger`` raises the first one.
Each problem is a ``CustodyError`` whose ``where`` is ``"ledger entry <i>"`` (i = position of
the line, 0-based) and which carries expected and observed values where it is a comparison.
Problems are listed by entry, and within an entry in the order of the checks below.

Order of checks (and why each exists):

1. **Not empty.** An empty ledger has no case, no keys and no history; it is a problem
   (``LedgerBroken``: "ledger is empty"), never a vacuous success.
2. **Form of each line** (``LedgerBroken``), so that later checks read well-defined values:
   the line is JSON; it is canonical JSON (exactly one byte string per entry, so hashes and
   signatures cannot be dodged by re-spelling); an object with exactly the entry keys and
   their types; ``v == 1``; ``index`` equals the position (reported where the sequence breaks:
   a deleted entry shows as a gap at its index, a swapped pair at both positions, an inserted
   entry where it sits); ``case_id`` equals entry 0's (an entry from another case); ``time`` is
   ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` UTC; entry 0 is ``case_opened`` with well-formed
   ``details.trusted_keys`` and no later entry is; ``key_trusted`` / ``key_revoked`` carry a
   well-formed key record / key id.
3. **Chain** (``LedgerBroken``): ``prev`` equals SHA-256 of the previous line's bytes (64 zeros
   for entry 0). Editing entry k breaks entry k+1's ``prev``; deleting, inserting or swapping
   entries breaks the chain where it happened.
4. **Signature and trust**: the actor key must be trusted at that index (``UntrustedKey``) and
   the Ed25519 signature over ``pae(ENTRY_PAYLOAD_TYPE, body)`` must verify with that key's
   full public key (``SignatureInvalid``). Trust is built in index order:

   * entry 0 must be signed by one of the keys its own ``details.trusted_keys`` declares
     (the same full public key), else "case was opened by key X which is not among its
     declared trusted keys";
   * with ``pinned`` keys (the verifier's own trust anchors, ``--trust``), that key must also
     be pinned, else "case was opened by key X which is not among the trusted keys". Pins
     constrain, they never grant: a pinned key the case does not declare is trusted nowhere,
     so one set of keys (``LedgerCheck.keys``) decides ledger entries, bundle manifests and
     checkpoints alike;
   * without pinned keys, the case's own declaration is the anchor (trust on first use;
     ``LedgerCheck.pinned_used`` is False so the CLI can say so);
   * the keys declared by entry 0 become trusted only if entry 0's signature verified under
     that rule; ``key_trusted`` at index t trusts ``details.key`` from t+1 on, and
     ``key_revoked`` at index r rejects that key's signatures at every index after r; both take
     effect only if their own entry is validly signed by a key trusted at its index. A revoked
     key is never trusted again.

   Signatures are verified first (possibly on threads: PyNaCl releases the GIL) for every entry
   whose key is declared anywhere in the ledger; the trust walk then runs
   sequentially, so problems come out in index order either way.

5. **Recorded checkpoints** (``LedgerBroken``): a ``checkpoint_signed`` entry at index i
   states ``details.size`` (an integer, 0 <= size <= i: a checkpoint can only cover entries
   before the one recording it), ``details.root`` (strict base64 of 32 bytes) and
   ``details.file`` (a string). Its root must equal the RFC 6962 root of the ledger's first
   ``size`` lines: a recorded checkpoint that the ledger no longer matches means history was
   rewritten after it was signed. (The checkpoint files themselves are checked by ``verify``.)

Checking is independent of the wall-clock times in entries: they are claims by the signer.
A key holder can still rewrite history undetectably here; only a checkpoint held by someone
else exposes that (see ``checkpoint.py``).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from sealtrail.custody.canonical import (
    NotCanonicalError,
    canonical_json,
    canonical_json_of_part,
    pae,
    parse_canonical_json,
    parse_json,
    strict_b64decode,
)
from sealtrail.custody.keys import PublicKey, key_id_of
from sealtrail.custody.ledger import (
    ACTION_RE,
    ACTOR_KEYS,
    CASE_OPENED,
    CHECKPOINT_SIGNED,
    ENTRY_KEYS,
    ENTRY_PAYLOAD_TYPE,
    FORMAT_VERSION,
    KEY_REVOKED,
    KEY_TRUSTED,
    ZERO_HASH,
    LedgerEntry,
    entry_hash_of,
    parse_time_text,
    signed_body,
)
from sealtrail.custody.merkle import MerkleTree, leaf_hash
from sealtrail.errors import CustodyError, LedgerBroken, SignatureInvalid, UntrustedKey

KEY_ID_RE = re.compile(r"^[0-9a-f]{16}\Z")
HASH_RE = re.compile(r"^[0-9a-f]{64}\Z")
# Below this many signatures a thread pool costs more than it saves.
PARALLEL_MIN = 2000
CHUNK = 500
VERIFY_THREADS = 2


@dataclass(frozen=True, slots=True)
class TrustedKey:
    """A key the check trusted at some point, and over which indices.

    Attributes:
        public: the full public key (trust is in these bytes, not in the key id).
        role: the role the case gave it.
        source: ``"declared"`` (entry 0) or ``"key_trusted"``.
        trusted_from: first index at which its signatures count.
        revoked_at: index of the ``key_revoked`` entry, if any; later signatures are rejected.
    """

    public: PublicKey
    role: str
    source: str
    trusted_from: int
    revoked_at: int | None = None

    def trusted_at(self, index: int) -> bool:
        return index >= self.trusted_from and (self.revoked_at is None or index <= self.revoked_at)


@dataclass(slots=True)
class LedgerCheck:
    """The outcome of ``check_ledger``.

    Attributes:
        entries: one ``LedgerEntry`` per line (index = position; ``fields == {}`` where the
            line is not a JSON object).
        problems: every problem found, by entry index and then in check order.
        case_id: entry 0's case id, if readable.
        pinned_used: True if the verifier supplied pinned keys; False means the case's own
            declared keys were trusted on first use.
        keys: every key trusted at some index, by key id: entry 0's declared keys (if entry 0
            verified) and validly added ``key_trusted`` keys. Pinned keys are not in it unless
            the case declares them.
        revocations: key id -> index of the entry that revoked it (validly signed ones only).
    """

    entries: list[LedgerEntry] = field(default_factory=list)
    problems: list[CustodyError] = field(default_factory=list)
    case_id: str | None = None
    pinned_used: bool = False
    keys: dict[str, TrustedKey] = field(default_factory=dict)
    revocations: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    def is_trusted(self, key_id: str, index: int) -> bool:
        """Whether signatures by ``key_id`` count at ``index``."""
        key = self.keys.get(key_id)
        return key is not None and key.trusted_at(index)

    def trusted_keys_at(self, index: int) -> list[PublicKey]:
        return [k.public for k in self.keys.values() if k.trusted_at(index)]

    def problems_at(self, index: int) -> list[CustodyError]:
        where = f"ledger entry {index}"
        return [p for p in self.problems if p.where == where]


@dataclass(slots=True)
class _Parsed:
    """Per-line facts gathered by the form check for the later checks."""

    fields: dict[str, Any] | None = None
    problems: list[CustodyError] = field(default_factory=list)
    signer: str | None = None  # actor key id, if well-formed
    message: bytes | None = None  # the signed bytes, if computable
    signature: bytes | None = None
    declared: list[tuple[PublicKey, str]] | None = None  # entry 0's trusted keys
    new_key: tuple[PublicKey, str] | None = None  # key_trusted
    revoked: str | None = None  # key_revoked
    recorded_checkpoint: tuple[int, bytes] | None = None  # checkpoint_signed (size, root)


def _preview(value: object, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _b64(value: object, length: int) -> bytes | None:
    """Strict base64 (``canonical.strict_b64decode``) of exactly ``length`` bytes, or None."""
    try:
        raw = strict_b64decode(value)
    except NotCanonicalError:
        return None
    return raw if len(raw) == length else None


def _key_record(obj: object, with_role: bool) -> tuple[PublicKey, str] | None:
    """A ``{"name","public_key","key_id"[,"role"]}`` record whose key id matches its key."""
    if not isinstance(obj, dict) or not isinstance(obj.get("name"), str):
        return None
    raw = _b64(obj.get("public_key"), 32)
    if raw is None or obj.get("key_id") != key_id_of(raw):
        return None
    role = obj.get("role", "")
    if with_role and (not isinstance(role, str) or not role):
        return None
    return PublicKey(obj["name"], raw), role


_FIELD_RULES: dict[str, tuple[str, Any]] = {
    "v": (f"the integer {FORMAT_VERSION}", lambda v: _is_int(v) and v == FORMAT_VERSION),
    "case_id": ("a non-empty string", lambda v: isinstance(v, str) and bool(v)),
    "index": ("an integer", _is_int),
    "time": (
        "UTC time text YYYY-MM-DDTHH:MM:SS.ffffffZ",
        lambda v: isinstance(v, str) and parse_time_text(v) is not None,
    ),
    "clock": ("a non-empty string", lambda v: isinstance(v, str) and bool(v)),
    "action": ("a lowercase snake case string", lambda v: isinstance(v, str)
               and ACTION_RE.match(v) is not None),
    "actor": (
        "an object with name, key_id (16 hex) and role",
        lambda v: isinstance(v, dict) and set(v) == ACTOR_KEYS
        and isinstance(v["name"], str) and isinstance(v["role"], str)
        and isinstance(v["key_id"], str) and KEY_ID_RE.match(v["key_id"]) is not None,
    ),
    "subject": ("an object", lambda v: isinstance(v, dict)),
    "custody": ("an object", lambda v: isinstance(v, dict)),
    "details": ("an object", lambda v: isinstance(v, dict)),
    "prev": ("64 lowercase hex digits", lambda v: isinstance(v, str)
             and HASH_RE.match(v) is not None),
    "sig": ("base64 of a 64-byte signature", lambda v: _b64(v, 64) is not None),
}


def _check_form(i: int, line: bytes) -> _Parsed:
    """Check 2 for one line, except index and case id (which need context)."""
    where = f"ledger entry {i}"
    out = _Parsed()
    try:
        value = parse_json(line)
    except NotCanonicalError:
        out.problems.append(LedgerBroken(
            where, "line is not valid JSON", expected="a canonical JSON object",
            observed=_preview(line)))
        return out
    try:
        canonical = canonical_json(value)
    except NotCanonicalError as exc:
        out.problems.append(LedgerBroken(where, f"line holds values outside canonical JSON: {exc}"))
        canonical = None
    if canonical is not None and canonical != line:
        out.problems.append(LedgerBroken(
            where, "line is not in canonical JSON form",
            expected=f"{len(canonical)} canonical bytes", observed=f"{len(line)} bytes"))
    if not isinstance(value, dict):
        out.problems.append(LedgerBroken(
            where, "entry is not a JSON object", expected="an object",
            observed=type(value).__name__))
        return out
    out.fields = value
    if set(value) != ENTRY_KEYS:
        out.problems.append(LedgerBroken(
            where, "entry does not have exactly the entry keys",
            expected=sorted(ENTRY_KEYS), observed=sorted(value)))
    bad = set()
    for name, (description, rule) in _FIELD_RULES.items():
        if name in value and not rule(value[name]):
            bad.add(name)
            out.problems.append(LedgerBroken(
                where, f"field {name!r} is malformed", expected=description,
                observed=_preview(value[name])))
    action = value.get("action") if "action" not in bad else None
    details = value.get("details") if "details" not in bad else None
    if i == 0 and action != CASE_OPENED:
        out.problems.append(LedgerBroken(
            where, "the first entry must open the case", expected=CASE_OPENED, observed=action))
    elif i > 0 and action == CASE_OPENED:
        out.problems.append(LedgerBroken(
            where, "only entry 0 may open the case", expected="any other action",
            observed=CASE_OPENED))
    if isinstance(details, dict):
        _check_key_details(i, action, details, out)
    if not bad.intersection({"actor", "sig"}) and {"actor", "sig"} <= set(value):
        out.signer = value["actor"]["key_id"]
        out.signature = strict_b64decode(value["sig"])
        out.message = _fast_signed_body(line, value) if canonical == line else None
        if out.message is None:
            try:
                out.message = signed_body(value)
            except NotCanonicalError:
                out.message = None
    return out


def _fast_signed_body(line: bytes, value: dict[str, Any]) -> bytes | None:
    """The signed bytes of a line already known to be canonical, cut from the line itself.

    In a canonical entry the members are in key order, so ``"sig"`` sits between ``"prev"``
    and ``"subject"``: the body is the line without ``,"sig":"..."``. The members after it are
    re-serialised with ``canonical_json`` to find the cut exactly (a nested ``"sig"`` key cannot
    confuse it). This halves the canonical-JSON work per entry. Anything unexpected returns
    None and the caller serialises the body the ordinary way; a wrong cut could only make a
    good signature fail, never a bad one pass.
    """
    if set(value) != ENTRY_KEYS or not isinstance(value["sig"], str):
        return None
    try:
        suffix = b"".join((
            b',"subject":', canonical_json_of_part(value["subject"]),
            b',"time":', canonical_json_of_part(value["time"]),
            b',"v":', canonical_json_of_part(value["v"]), b"}",
        ))
    except NotCanonicalError:
        return None
    sig_member = b',"sig":"' + value["sig"].encode("ascii", "replace") + b'"'
    head_end = len(line) - len(suffix) - len(sig_member)
    if head_end <= 0 or line[head_end : len(line) - len(suffix)] != sig_member:
        return None
    if not line.endswith(suffix):
        return None
    return pae(ENTRY_PAYLOAD_TYPE, line[:head_end] + suffix)


def _check_key_details(i: int, action: object, details: dict[str, Any], out: _Parsed) -> None:
    where = f"ledger entry {i}"
    if i == 0 and action == CASE_OPENED:
        records = details.get("trusted_keys")
        parsed = (
            [_key_record(r, with_role=True) for r in records]
            if isinstance(records, list) and records else [None]
        )
        if any(p is None for p in parsed):
            out.problems.append(LedgerBroken(
                where, "details.trusted_keys is malformed",
                expected="a non-empty list of {name, public_key, key_id, role} whose key ids "
                "match their keys", observed=_preview(records)))
        else:
            out.declared = [p for p in parsed if p is not None]
    elif action == KEY_TRUSTED:
        record = _key_record(details.get("key"), with_role=False)
        role = details.get("role")
        if record is None or not isinstance(role, str) or not role:
            out.problems.append(LedgerBroken(
                where, "key_trusted details are malformed",
                expected="details.key {name, public_key, key_id} and details.role",
                observed=_preview(details)))
        else:
            out.new_key = (record[0], role)
    elif action == KEY_REVOKED:
        key_id = details.get("key_id")
        if not isinstance(key_id, str) or not KEY_ID_RE.match(key_id):
            out.problems.append(LedgerBroken(
                where, "key_revoked details are malformed",
                expected="details.key_id (16 hex)", observed=_preview(key_id)))
        else:
            out.revoked = key_id
    elif action == CHECKPOINT_SIGNED:
        size, root = details.get("size"), _b64(details.get("root"), 32)
        if (set(details) != {"size", "root", "file"} or not _is_int(size) or size < 0
                or root is None or not isinstance(details.get("file"), str)):
            out.problems.append(LedgerBroken(
                where, "checkpoint_signed details are malformed",
                expected="exactly details.size (integer >= 0), details.root (base64 of 32 "
                "bytes) and details.file (string)", observed=_preview(details)))
        else:
            out.recorded_checkpoint = (size, root)


_Job = tuple[int, PublicKey, bytes, bytes]


def _verify_jobs(jobs: list[_Job]) -> list[tuple[int, bool]]:
    return [(i, key.verify(message, signature)) for i, key, message, signature in jobs]


def _parse_and_verify(
    lines: Sequence[bytes], threads: int
) -> tuple[list[_Parsed], dict[int, bool]]:
    """Checks 2 (per line) and the signature half of check 4, pipelined.

    Lines are form-checked in chunks on the calling thread; each chunk's signatures are handed
    to a thread pool as soon as the chunk is done, so the (GIL-releasing) Ed25519 work of one
    chunk overlaps the (GIL-bound) parsing of the next. A signature is verified with the key
    of that id first declared by any entry up to the end of its chunk: a key
    introduced later cannot be trusted at an earlier index, so nothing needed is skipped.
    Results are keyed by index; trust and reporting happen afterwards, in index order.
    """
    candidates: dict[str, PublicKey] = {}
    parsed: list[_Parsed] = []
    verified: dict[int, bool] = {}
    pool = (
        ThreadPoolExecutor(threads) if threads > 1 and len(lines) >= PARALLEL_MIN else None
    )
    futures = []
    try:
        for start in range(0, len(lines), CHUNK):
            chunk = [
                _check_form(i, lines[i]) for i in range(start, min(start + CHUNK, len(lines)))
            ]
            parsed.extend(chunk)
            for p in chunk:
                for key, _role in (p.declared or []) + ([p.new_key] if p.new_key else []):
                    candidates.setdefault(key.key_id, key)
            jobs = [
                (i, candidates[p.signer], p.message, p.signature)
                for i, p in enumerate(chunk, start)
                if p.signer in candidates and p.message is not None and p.signature is not None
            ]
            if pool is None:
                verified.update(_verify_jobs(jobs))
            else:
                futures.append(pool.submit(_verify_jobs, jobs))
        for future in futures:
            verified.update(future.result())
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    return parsed, verified


def check_ledger(
    lines: Sequence[bytes], pinned: Sequence[PublicKey] = (), *, threads: int = VERIFY_THREADS
) -> LedgerCheck:
    """Run every check (see the module docstring) and collect all problems.

    Args:
        lines: the ledger's lines without newlines (``Ledger.read_lines()``).
        pinned: the verifier's trusted keys; empty means trust on first use of the case's
            declared keys.
        threads: threads for signature verification (1 to verify on the calling thread).
    """
    result = LedgerCheck(pinned_used=bool(pinned))
    if not lines:
        result.problems.append(LedgerBroken(
            "ledger", "ledger is empty", expected="at least entry 0 (case_opened)",
            observed="0 entries"))
        return result

    parsed, verified = _parse_and_verify(lines, threads)
    result.entries = [
        LedgerEntry(i, line, p.fields if p.fields is not None else {})
        for i, (line, p) in enumerate(zip(lines, parsed, strict=True))
    ]
    first = parsed[0].fields or {}
    case_id = first.get("case_id")
    result.case_id = case_id if isinstance(case_id, str) and case_id else None

    # Check 2 (context part: index sequence, case id) and check 3 (chain).
    prev_index: object = None
    prev_hash = ZERO_HASH
    for i, (line, p) in enumerate(zip(lines, parsed, strict=True)):
        where = f"ledger entry {i}"
        fields = p.fields or {}
        index = fields.get("index")
        if _is_int(index) and index != i and not (_is_int(prev_index) and index == prev_index + 1):
            p.problems.append(LedgerBroken(
                where, "index is out of sequence (entries deleted, inserted or reordered)",
                expected=i, observed=index))
        prev_index = index
        other = fields.get("case_id")
        if result.case_id is not None and isinstance(other, str) and other != result.case_id:
            p.problems.append(LedgerBroken(
                where, "entry belongs to another case", expected=result.case_id, observed=other))
        prev = fields.get("prev")
        if isinstance(prev, str) and HASH_RE.match(prev) and prev != prev_hash:
            p.problems.append(LedgerBroken(
                where, "chain broken: prev is not the hash of the previous entry"
                + (" (entry 0 must have 64 zeros)" if i == 0 else f" (entry {i - 1})"),
                expected=prev_hash, observed=prev))
        prev_hash = entry_hash_of(line)

    # Check 4: signatures were verified above; now walk trust in index order.
    _walk_trust(parsed, pinned, verified, result)
    # Check 5: checkpoints the ledger records against the ledger's own Merkle tree.
    _check_recorded_checkpoints(lines, parsed)

    for p in parsed:
        result.problems.extend(p.problems)
    return result


def _check_recorded_checkpoints(lines: Sequence[bytes], parsed: list[_Parsed]) -> None:
    recorded = [(i, p) for i, p in enumerate(parsed) if p.recorded_checkpoint is not None]
    if not recorded:
        return
    tree = MerkleTree(leaf_hash(line) for line in lines)
    for i, p in recorded:
        assert p.recorded_checkpoint is not None
        size, root = p.recorded_checkpoint
        where = f"ledger entry {i}"
        if size > i:
            p.problems.append(LedgerBroken(
                where, f"checkpoint_signed records a checkpoint of {size} entries, more than "
                f"the {i} entries before it", expected=f"a size of at most {i}", observed=size))
        elif tree.root(size) != root:
            p.problems.append(LedgerBroken(
                where, f"checkpoint_signed records a root that is not the Merkle root of the "
                f"ledger's first {size} entries: history was rewritten after it was signed",
                expected=tree.root(size).hex(), observed=root.hex()))


def _walk_trust(
    parsed: list[_Parsed],
    pinned: Sequence[PublicKey],
    verified: dict[int, bool],
    result: LedgerCheck,
) -> None:
    keys = result.keys
    revoked = result.revocations
    pinned_raw = {key.raw for key in pinned}

    for i, p in enumerate(parsed):
        where = f"ledger entry {i}"
        signer = p.signer
        if signer is None or p.signature is None or p.message is None:
            continue  # the form check already reported why
        if i == 0:
            declared = {k.key_id: (k, role) for k, role in (p.declared or [])}
            if p.declared is None:
                continue  # malformed trusted_keys: the form check reported it
            anchor = declared.get(signer)
            if anchor is None:
                p.problems.append(UntrustedKey(
                    where, f"case was opened by key {signer} which is not among its "
                    "declared trusted keys", expected=sorted(declared), observed=signer))
                continue
            if pinned and anchor[0].raw not in pinned_raw:
                p.problems.append(UntrustedKey(
                    where, f"case was opened by key {signer} which is not among the "
                    "trusted keys", expected=sorted(k.key_id for k in pinned),
                    observed=signer))
                continue
            if not verified.get(i, False):
                p.problems.append(SignatureInvalid(
                    where, f"signature by key {signer} does not verify",
                    expected="a valid Ed25519 signature over the entry",
                    observed="invalid signature"))
                continue
            for key_id, (key, role) in declared.items():
                keys[key_id] = TrustedKey(key, role, "declared", 0)
            continue

        if signer in revoked and i > revoked[signer]:
            p.problems.append(UntrustedKey(
                where, f"signed by key {signer} revoked at entry {revoked[signer]}",
                expected=f"a key trusted at entry {i}", observed=signer))
            continue
        state = keys.get(signer)
        if state is None or i < state.trusted_from:
            p.problems.append(UntrustedKey(
                where, f"signed by key {signer} which is not trusted at entry {i}",
                expected=sorted(k for k, s in keys.items() if s.trusted_at(i)),
                observed=signer))
            continue
        if not verified.get(i, False):
            p.problems.append(SignatureInvalid(
                where, f"signature by key {signer} does not verify",
                expected="a valid Ed25519 signature over the entry",
                observed="invalid signature"))
            continue
        # A validly signed entry by a trusted key: its key statements take effect.
        if p.new_key is not None:
            key, role = p.new_key
            if key.key_id in revoked:
                p.problems.append(UntrustedKey(
                    where, f"key {key.key_id} was revoked at entry {revoked[key.key_id]} "
                    "and cannot be trusted again", expected="a key never revoked",
                    observed=key.key_id))
            elif key.key_id not in keys:
                keys[key.key_id] = TrustedKey(key, role, "key_trusted", i + 1)
        if p.revoked is not None and p.revoked not in revoked:
            revoked[p.revoked] = i
            if p.revoked in keys:
                keys[p.revoked] = dataclasses.replace(keys[p.revoked], revoked_at=i)


def verify_ledger(lines: Sequence[bytes], pinned: Sequence[PublicKey] = ()) -> None:
    """Raise the first problem ``check_ledger`` finds (with the rest as notes), else return.

    Raises:
        CustodyError: ``LedgerBroken``, ``SignatureInvalid`` or ``UntrustedKey``.
    """
    result = check_ledger(lines, pinned)
    if result.problems:
        first = result.problems[0]
        rest = result.problems[1:]
        if rest:
            first.add_note(f"{len(rest)} more ledger problem(s):")
            for problem in rest[:20]:
                first.add_note(f"  {problem}")
            if len(rest) > 20:
                first.add_note(f"  ... and {len(rest) - 20} more")
        raise first


# ---- what a writer and a reader decide about the end of the file ------------------------------
# A writer reads only the end of the ledger, so it needs its own small judgement of the last
# line and of bytes after it; verify (and every reader) applies the same functions, so the
# writer's repair never changes verify's verdict (docs/ledger-format.md section 7).

_KEY_MARKERS = (b'"action":"case_opened"', b'"action":"key_trusted"')


def declared_keys_in(lines: Sequence[bytes]) -> dict[str, PublicKey]:
    """Every key the lines declare, by key id: entry 0's ``details.trusted_keys`` and each
    ``key_trusted`` entry's ``details.key``, whether or not that entry is good or the key was
    revoked since (the first record of a key id wins).

    This is the key set a writer checks the ledger's last line against, and with which a
    reader decides whether an unterminated tail is an entry: "signed by a key the ledger
    declares". Lines that cannot declare a key are skipped without being parsed.
    """
    keys: dict[str, PublicKey] = {}
    for i, line in enumerate(lines):
        if not any(marker in line for marker in _KEY_MARKERS):
            continue
        p = _check_form(i, line)
        for key, _role in (p.declared or []) + ([p.new_key] if p.new_key else []):
            keys.setdefault(key.key_id, key)
    return keys


def entry_problem(
    line: bytes, keys: dict[str, PublicKey], *, unknown_key_ok: bool = False
) -> str | None:
    """Why ``line`` is not an entry validly signed by one of ``keys``, or None.

    Judges the line alone, and only what makes it a signed entry: a JSON object with exactly
    the entry keys, a non-negative integer ``index``, a well-formed ``actor`` and ``sig``, and
    a signature over its body (section 3) that verifies with the key its ``actor.key_id``
    names. Everything else (its place in the chain, its other fields, canonical spelling) is
    verify's to report: a writer never discards a validly signed entry.

    Args:
        unknown_key_ok: a signature by a key not in ``keys`` is not a problem: it cannot be
            shown invalid (its key may be declared in a damaged line), so a writer keeps such
            a last line and verify reports it (untrusted key).
    """
    try:
        value = parse_json(line)
    except NotCanonicalError:
        return "line is not valid JSON"
    if not isinstance(value, dict) or set(value) != ENTRY_KEYS:
        return "line is not an object with exactly the entry keys"
    for name in ("index", "actor", "sig"):
        description, rule = _FIELD_RULES[name]
        if not rule(value[name]):
            return f"field {name!r} is malformed (expected {description})"
    if value["index"] < 0:
        return "field 'index' is negative"
    signer = value["actor"]["key_id"]
    key = keys.get(signer)
    if key is None:
        return None if unknown_key_ok else (
            f"signed by key {signer}, which the ledger does not declare")
    try:
        message = signed_body(value)
    except NotCanonicalError as exc:
        return f"line holds values outside canonical JSON: {exc}"
    if not key.verify(message, strict_b64decode(value["sig"])):
        return f"signature by key {signer} does not verify"
    return None


def tail_problem(tail: bytes, last_line: bytes | None, keys: dict[str, PublicKey]) -> str | None:
    """Why bytes after the last newline are not a complete entry continuing the ledger, or None.

    They are one when ``entry_problem`` finds nothing, they are canonical JSON, their
    ``prev`` is the hash of the last line (64 zeros when there is none) and their ``index`` is
    the last line's plus one (0 when there is none): an acknowledged last entry whose final
    newline alone is missing (docs/ledger-format.md section 7).
    """
    problem = entry_problem(tail, keys)
    if problem is not None:
        return problem
    try:
        fields = parse_canonical_json(tail)
    except NotCanonicalError:
        return "it is not in canonical JSON form"
    if last_line is None:
        expected_prev, expected_index = ZERO_HASH, 0
    else:
        try:
            last = parse_json(last_line)
        except NotCanonicalError:
            last = None
        last_index = last.get("index") if isinstance(last, dict) else None
        if not _is_int(last_index):
            return "the line before it is not an entry"
        expected_prev, expected_index = entry_hash_of(last_line), last_index + 1
    if fields["prev"] != expected_prev:
        return "its prev is not the hash of the last line"
    if fields["index"] != expected_index:
        return f"its index is not {expected_index}"
    return None


@dataclass(frozen=True, slots=True)
class LedgerBytes:
    """A ledger file's bytes split as every reader sees them.

    Attributes:
        lines: the entries' lines (without newlines), the last one possibly unterminated.
        torn: bytes after the last newline that are not an entry (a torn append), or b"".
        unterminated: the last of ``lines`` lacks its final newline (``tail_problem`` found
            it complete: it counts as an entry).
        tail_problem: why the torn bytes are not an entry ("" when there are none).
    """

    lines: list[bytes]
    torn: bytes = b""
    unterminated: bool = False
    tail_problem: str = ""


def split_ledger(data: bytes) -> LedgerBytes:
    """Split a ledger file's bytes into entries and a torn tail (docs/ledger-format.md sec. 7).

    Bytes after the last newline are the last entry when they form a complete entry that
    continues the ledger (`tail_problem`), checked against the keys the complete lines declare
    (or, when there are none, the keys the tail itself declares as entry 0); otherwise they
    are a torn, unacknowledged append.
    """
    *lines, tail = data.split(b"\n")
    if not tail:
        return LedgerBytes(lines)
    keys = declared_keys_in(lines if lines else [tail])
    problem = tail_problem(tail, lines[-1] if lines else None, keys)
    if problem is None:
        return LedgerBytes([*lines, tail], unterminated=True)
    return LedgerBytes(lines, torn=tail, tail_problem=problem)
