"""The custody ledger: an append-only, hash-chained, signed JSON Lines file.

File
    ``CASE/ledger.jsonl``. One entry per line; each line is ``canonical_json(entry)`` followed by
    a single ``\\n`` (0x0A). Canonical JSON never contains a raw newline (it escapes them inside
    strings), so a newline always ends an entry. There is no header and no trailer: the first
    line is entry 0 and the file ends with the newline of the last entry.

Entry
    A JSON object with exactly these keys::

        {"v": 1,
         "case_id": str,            same in every entry; entry 0 defines it
         "index": int,              0, 1, 2, ... equal to the line's position in the file
         "time": str,               "YYYY-MM-DDTHH:MM:SS.ffffffZ", UTC, from the appending
                                    machine's clock (a claim by the signer, not a proof)
         "clock": "system",         where "time" came from
         "action": str,             lowercase snake case, e.g. "case_opened", "collected"
         "actor": {"name": str, "key_id": str (16 lowercase hex), "role": str},
         "subject": object,         what the action is about (may be {})
         "custody": object,         optional custody fields: location, from/to custodian,
                                    transfer method, seal number, ... (may be {})
         "details": object,         action-specific data (may be {})
         "prev": str,               lowercase hex SHA-256 of the previous entry's line bytes
                                    (without its newline); 64 zeros for entry 0
         "sig": str}                base64 (standard alphabet, padded) Ed25519 signature

Signature
    ``body = canonical_json(entry without the "sig" key)``;
    ``sig = Ed25519(actor key, pae("application/vnd.sealtrail.ledger-entry.v1+json", body))``
    where ``pae`` is DSSE v1 pre-authentication encoding (``canonical.pae``). The payload type
    keeps a ledger signature from being replayed as a manifest signature and vice versa.

Hashes
    The entry hash is ``SHA-256(line)`` over the exact line bytes without the newline; it is
    what the next entry's ``prev`` holds. The Merkle leaf of entry i is the same line bytes
    (the tree itself, with RFC 6962 leaf prefixes, is built in ``merkle.py``).

Trust
    Entry 0 has action ``case_opened`` and declares the case's keys in
    ``details.trusted_keys``: a list of ``{"name", "public_key" (base64 of 32 bytes),
    "key_id", "role"}``; it must be signed by one of them. Later entries change trust:
    ``key_trusted`` with ``details.key = {"name", "public_key", "key_id"}`` and
    ``details.role`` makes that key trusted from the next index on; ``key_revoked`` with
    ``details.key_id`` rejects that key's signatures at every later index. Both take effect
    only if signed by a key trusted at their own index. See ``ledger_check`` for the checks.

Crash safety (what etcd, PostgreSQL and Tessera do)
    * Appends are serialised across processes by an exclusive ``flock`` on the sibling file
      ``ledger.lock`` (re-entrant within one ``Ledger`` object, so a writer can hold it across
      a repair and its own append). Under the lock the writer reads only the end of the file
      (seeking from the end) to learn the next index and ``prev``, writes the whole line plus
      newline with one ``os.write`` on an ``O_APPEND`` descriptor and calls ``os.fsync``. An
      entry is acknowledged (``append`` returns) only after fsync succeeded.
    * ``expect_size`` lets a writer state how many entries it believes exist; a stale writer
      gets ``LedgerBroken`` instead of writing onto a history it has not seen.
    * A failed write or fsync is fatal for that ``Ledger`` object (``LedgerWriteError``; no
      retry on the same descriptor, since after a failed fsync the page cache state is
      unknown). Reopen to continue.
    * Opening and reading never write: only a writer, under the lock and before its own
      append (``settle``), makes the file end with a valid entry and its newline:
      - bytes after the last newline that form a complete entry continuing the ledger, validly
        signed by a key the ledger declares (``ledger_check.tail_problem``), are an entry
        whose newline alone is missing: the writer writes the newline and fsyncs (a complete,
        validly signed entry is never discarded; readers already count it);
      - other bytes after the last newline are a torn, unacknowledged append: they are first
        saved durably to ``ledger.torn-<UTC time>-<n>.bin`` beside the ledger, then the file is
        truncated after its last newline and fsynced, and a warning is logged;
      - a last line that is not a validly signed entry (``ledger_check.entry_problem``) is moved
        aside the same way, to ``ledger.damaged-<UTC time>-<n>.bin``, and a signed
        ``ledger_repaired`` entry naming that file, its SHA-256 and length, the index the line
        occupied and why it was invalid is written in its place. Only the last line: if the
        line before it is not a valid entry either, nothing is touched (``LedgerBroken``).
    * Nothing before the last line is ever repaired: damage there is tampering or media
      failure, and is left byte-for-byte for the checker to report.
    * ``create`` writes entry 0 to a temporary file, fsyncs it, links it into place (which
      fails if a ledger exists) and fsyncs the directory, so a ledger either exists with its
      entry 0 or does not exist at all.
"""

from __future__ import annotations

import base64
import errno
import fcntl
import hashlib
import logging
import os
import re
import secrets
import threading
import types
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

from sealtrail.crashpoint import crash_point
from sealtrail.custody.canonical import NotCanonicalError, canonical_json, pae, parse_json
from sealtrail.custody.durable import fsync_dir
from sealtrail.custody.keys import PublicKey, SigningKey
from sealtrail.errors import CaseError, CustodyError, LedgerBroken, UsageError

log = logging.getLogger(__name__)

LEDGER_NAME = "ledger.jsonl"
LOCK_NAME = "ledger.lock"
ENTRY_PAYLOAD_TYPE = "application/vnd.sealtrail.ledger-entry.v1+json"
FORMAT_VERSION = 1
ZERO_HASH = "0" * 64
CLOCK_SYSTEM = "system"
CASE_OPENED = "case_opened"
KEY_TRUSTED = "key_trusted"
KEY_REVOKED = "key_revoked"
CHECKPOINT_SIGNED = "checkpoint_signed"
LEDGER_REPAIRED = "ledger_repaired"
ENTRY_KEYS = frozenset(
    {"v", "case_id", "index", "time", "clock", "action", "actor", "subject", "custody",
     "details", "prev", "sig"}
)
ACTOR_KEYS = frozenset({"name", "key_id", "role"})
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z\Z")
ACTION_RE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*\Z")
_TAIL_CHUNK = 64 * 1024


class LedgerWriteError(CustodyError):
    """An append could not be made durable (write or fsync failed).

    The entry was not acknowledged. The ``Ledger`` object that raised it refuses further
    appends; reopen the ledger (which cuts a torn tail, if the failed write left one).
    """


def utc_now_text() -> str:
    """The current UTC time as ledger text: ``YYYY-MM-DDTHH:MM:SS.ffffffZ``."""
    return datetime.now(UTC).strftime(TIME_FORMAT)


def parse_time_text(text: str) -> datetime | None:
    """The aware UTC datetime of ledger time text, or None if it is not in the exact format."""
    if not TIME_RE.match(text):
        return None
    try:
        # The regex fixed the shape; fromisoformat (3.11 reads "Z" as UTC) checks the calendar
        # and is much faster than strptime, which matters when checking 100k entries.
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def entry_hash_of(line: bytes) -> str:
    """Hex SHA-256 of an entry's line bytes (without the newline): the next entry's ``prev``."""
    return hashlib.sha256(line).hexdigest()


def signed_body(fields: dict[str, Any]) -> bytes:
    """The bytes an entry's signature covers: PAE of the canonical entry without ``sig``."""
    body = canonical_json({k: v for k, v in fields.items() if k != "sig"})
    return pae(ENTRY_PAYLOAD_TYPE, body)


def trusted_key_record(public: PublicKey, role: str) -> dict[str, str]:
    """The record of one key in entry 0's ``details.trusted_keys``."""
    return {"name": public.name, "public_key": public.b64, "key_id": public.key_id, "role": role}


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One ledger line as read, not yet verified (``ledger_check`` decides that).

    Attributes:
        index: position of the line in the file (0-based). A valid entry has the same number
            in ``fields["index"]``; ``Ledger.head`` uses the field, as appends do.
        line: the exact line bytes without the newline (hashed, signed over, Merkle leaf).
        fields: the parsed JSON object, or ``{}`` if the line is not a JSON object.
    """

    index: int
    line: bytes
    fields: dict[str, Any]

    @classmethod
    def from_line(cls, index: int, line: bytes) -> LedgerEntry:
        """Parse leniently: garbage gives ``fields == {}`` rather than an exception."""
        try:
            value = parse_json(line)
        except NotCanonicalError:
            value = {}
        return cls(index, line, value if isinstance(value, dict) else {})

    @property
    def entry_hash(self) -> str:
        return entry_hash_of(self.line)

    @property
    def action(self) -> str | None:
        value = self.fields.get("action")
        return value if isinstance(value, str) else None

    @property
    def actor_key_id(self) -> str | None:
        actor = self.fields.get("actor")
        value = actor.get("key_id") if isinstance(actor, dict) else None
        return value if isinstance(value, str) else None

    @property
    def time(self) -> datetime | None:
        """The claimed UTC time, or None if missing or malformed."""
        value = self.fields.get("time")
        return parse_time_text(value) if isinstance(value, str) else None


def _resolve(path: Path | str) -> Path:
    path = Path(path)
    return path / LEDGER_NAME if path.is_dir() else path


def _read_at(fd: int, size: int, offset: int) -> bytes:
    chunks = []
    while size > 0:
        chunk = os.pread(fd, size, offset)
        if not chunk:
            break
        chunks.append(chunk)
        size -= len(chunk)
        offset += len(chunk)
    return b"".join(chunks)


def _last_newline_before(fd: int, end: int) -> int:
    """Offset of the last ``\\n`` in ``[0, end)``, or -1; reads backwards in chunks."""
    pos = end
    while pos > 0:
        start = max(0, pos - _TAIL_CHUNK)
        found = _read_at(fd, pos - start, start).rfind(b"\n")
        if found >= 0:
            return start + found
        pos = start
    return -1


def _first_line(fd: int) -> bytes | None:
    """The first complete line (without newline), or None if there is none."""
    data = b""
    while True:
        chunk = os.pread(fd, _TAIL_CHUNK, len(data))
        end = chunk.find(b"\n")
        if end >= 0:
            return data + chunk[:end]
        if not chunk:
            return None
        data += chunk


def _last_line(fd: int, size: int) -> bytes | None:
    """The last complete line (without newline) of a file that ends with a newline."""
    if size == 0:
        return None
    start = _last_newline_before(fd, size - 1) + 1
    return _read_at(fd, size - 1 - start, start)


@dataclass(slots=True)
class Settled:
    """What a writer did to the end of the ledger before appending (``Ledger.settle``).

    Attributes:
        restored: index of a complete entry whose missing final newline was written.
        torn_path: where a torn tail that was cut was saved.
        repaired: the ``ledger_repaired`` entry written in place of an invalid last line.
    """

    restored: int | None = None
    torn_path: Path | None = None
    repaired: LedgerEntry | None = None

    def __bool__(self) -> bool:
        return self.restored is not None or self.torn_path is not None or bool(self.repaired)


def _rules() -> types.ModuleType:
    """`ledger_check`, which judges a line; it imports this module, so it is imported here."""
    from sealtrail.custody import ledger_check

    return ledger_check


class Ledger:
    """A case's custody ledger file. Use ``Ledger.create`` or ``Ledger.open``.

    Attributes:
        path: the ledger file.
        case_id: the case id from entry 0 (None if entry 0 is unreadable).
        recovered_tail: the torn-tail bytes this object cut before an append, if any.
        torn_path: where those bytes were saved.
    """

    def __init__(self, path: Path, case_id: str | None) -> None:
        self.path = path
        self.case_id = case_id
        self.recovered_tail: bytes | None = None
        self.torn_path: Path | None = None
        self._failure: LedgerWriteError | None = None
        self._mutex = threading.RLock()
        self._lock_fd: int | None = None
        self._lock_depth = 0
        # A line this object wrote or already judged valid: the next settle skips judging it
        # again (one signature check per append otherwise), and entry 0's keys, by its bytes.
        self._known_good: bytes | None = None
        self._first_keys: tuple[bytes, dict[str, PublicKey]] | None = None

    @property
    def lock_path(self) -> Path:
        return self.path.with_name(LOCK_NAME)

    # ---- opening ---------------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        path: Path | str,
        case_id: str,
        key: SigningKey,
        *,
        role: str,
        details: dict[str, Any],
        custody: dict[str, Any] | None = None,
    ) -> Ledger:
        """Create a new ledger whose entry 0 (``case_opened``) is signed by ``key``.

        Args:
            path: the ledger file to create, or an existing case folder (``ledger.jsonl``
                is created in it). The folder must exist.
            case_id: the case id every entry will carry.
            key: the opening key; it must be among ``details["trusted_keys"]``, which is
                filled with just this key (and ``role``) when absent.
            role: the opener's role, e.g. ``"examiner"``.
            details: entry 0's details (case title, authority, trusted keys, ...).
            custody: optional custody fields of entry 0.

        Raises:
            CaseError: the ledger already exists or its folder does not.
            UsageError: the arguments cannot make a valid entry.
        """
        path = _resolve(path)
        if not isinstance(case_id, str) or not case_id:
            raise UsageError("case id must be a non-empty string")
        if not path.parent.is_dir():
            raise CaseError(f"{path.parent} does not exist; cannot create a ledger there")
        details = dict(details)
        declared = details.setdefault("trusted_keys", [trusted_key_record(key.public, role)])
        if not isinstance(declared, list) or not any(
            isinstance(rec, dict) and rec.get("public_key") == key.public.b64 for rec in declared
        ):
            raise UsageError(
                f"key {key.name} ({key.key_id}) must be among details.trusted_keys of entry 0"
            )
        ledger = cls(path, case_id)
        fields = ledger._build(key, 0, ZERO_HASH, CASE_OPENED, role, {}, custody or {}, details)
        line = canonical_json(fields)
        tmp = path.with_name(f".{path.name}.new-{os.getpid()}-{secrets.token_hex(4)}")
        with ledger.locked():
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            try:
                os.write(fd, line + b"\n")
                os.fsync(fd)
            finally:
                os.close(fd)
            try:
                os.link(tmp, path)  # atomic and exclusive: never replaces an existing ledger
            except FileExistsError:
                raise CaseError(f"{path} already exists; refusing to create a ledger") from None
            finally:
                tmp.unlink()
            fsync_dir(path.parent)
        return ledger

    @classmethod
    def open(cls, path: Path | str) -> Ledger:
        """Open an existing ledger to read it or append to it. Opening never writes.

        Raises:
            CaseError: there is no ledger at ``path``.
        """
        path = _resolve(path)
        if not path.is_file():
            raise CaseError(f"{path} does not exist; no ledger to open")
        ledger = cls(path, None)
        fd = os.open(path, os.O_RDONLY)
        try:
            first = _first_line(fd)
        finally:
            os.close(fd)
        if first is None:  # no newline at all: entry 0 alone, unterminated (or nothing)
            lines = ledger.read_lines()
            first = lines[0] if lines else None
        if first is not None:
            case_id = LedgerEntry.from_line(0, first).fields.get("case_id")
            ledger.case_id = case_id if isinstance(case_id, str) else None
        return ledger

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the appenders' lock; re-entrant within this object (and thread-safe).

        A fresh descriptor for the outermost hold: flock belongs to the open file description,
        so this also serialises Ledger objects sharing a file, in one process or several.
        """
        with self._mutex:
            if self._lock_depth == 0:
                fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX)
                except BaseException:
                    os.close(fd)
                    raise
                self._lock_fd = fd
            self._lock_depth += 1
            try:
                yield
            finally:
                self._lock_depth -= 1
                if self._lock_depth == 0 and self._lock_fd is not None:
                    os.close(self._lock_fd)  # closing releases the lock
                    self._lock_fd = None

    # ---- reading ---------------------------------------------------------------------------

    def read_lines(self) -> list[bytes]:
        """Every entry's line (without newlines), unparsed, as every reader sees them.

        Bytes after the last newline are included only when they are a complete entry that
        continues the ledger (``ledger_check.split_ledger``); a torn append is not returned.
        """
        return _rules().split_ledger(self.path.read_bytes()).lines

    def entries(self) -> list[LedgerEntry]:
        """Every line as a ``LedgerEntry`` (index = position); unverified, never raises on
        garbage (such a line has ``fields == {}``). Use ``ledger_check`` to judge them."""
        return [LedgerEntry.from_line(i, line) for i, line in enumerate(self.read_lines())]

    def head(self) -> LedgerEntry | None:
        """The last entry (its index taken from its own ``index`` field), or None if empty.

        An unterminated tail counts when it is a complete entry (as in ``read_lines``).

        Raises:
            LedgerBroken: the last line is not an entry with an integer index.
        """
        fd = os.open(self.path, os.O_RDONLY)
        try:
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                keep = _last_newline_before(fd, size) + 1
                tail = _read_at(fd, size - keep, keep)
                last = _last_line(fd, keep)
                if self._tail_problem(fd, tail, last) is None:
                    return self._head_entry(tail)
                size = keep
            line = _last_line(fd, size)
        finally:
            os.close(fd)
        return None if line is None else self._head_entry(line)

    def _head_entry(self, line: bytes) -> LedgerEntry:
        entry = LedgerEntry.from_line(0, line)
        index = entry.fields.get("index")
        if not isinstance(index, int) or isinstance(index, bool) or index < 0:
            raise LedgerBroken(
                "ledger last entry",
                "last line is not a readable entry; cannot append after it "
                "(run the ledger check)",
                expected="an entry with an integer index",
                observed=line[:80],
            )
        return LedgerEntry(index, line, entry.fields)

    def size(self) -> int:
        """Number of entries, as the next append sees it: last entry's index + 1."""
        head = self.head()
        return 0 if head is None else head.index + 1

    # ---- judging the end of the file (the same rules every reader applies) ----------------

    def _declared_keys(self, fd: int, *, all_lines: bool) -> dict[str, PublicKey]:
        """Keys the ledger declares: entry 0's alone (cheap: almost every entry is signed by
        one), or those of every complete line when that does not settle it."""
        if not all_lines:
            first = _first_line(fd)
            if first is None:
                return {}
            if self._first_keys is None or self._first_keys[0] != first:
                self._first_keys = (first, _rules().declared_keys_in([first]))
            return self._first_keys[1]
        size = os.fstat(fd).st_size
        return _rules().declared_keys_in(_read_at(fd, size, 0).split(b"\n")[:-1])

    def _tail_problem(self, fd: int, tail: bytes, last: bytes | None) -> str | None:
        if last is None:  # the tail would be entry 0, which declares its own keys
            return _rules().tail_problem(tail, None, _rules().declared_keys_in([tail]))
        problem = _rules().tail_problem(tail, last, self._declared_keys(fd, all_lines=False))
        if problem is None:
            return None
        return _rules().tail_problem(tail, last, self._declared_keys(fd, all_lines=True))

    def _line_problem(self, fd: int, line: bytes) -> str | None:
        """Why a complete line is provably not a validly signed entry, or None (a line signed
        by a key the ledger does not declare is kept: verify reports it)."""
        rules = _rules()
        problem = rules.entry_problem(line, self._declared_keys(fd, all_lines=False))
        if problem is None:
            return None
        return rules.entry_problem(line, self._declared_keys(fd, all_lines=True),
                                   unknown_key_ok=True)

    # ---- settling the end of the file (writers only) ---------------------------------------

    def settle(self, key: SigningKey) -> Settled:
        """Make the file end with a validly signed entry and its newline (module docstring).

        Every ``append`` does this first; ``sealtrail ledger repair`` calls it alone. A
        ``ledger_repaired`` entry, if one is needed, is signed by ``key``.

        Raises:
            LedgerBroken: the last line and the one before it are both invalid, or entry 0
                is (nothing is changed: restore the ledger from a copy).
            LedgerWriteError: a write or fsync failed.
        """
        self._check_usable()
        with self.locked():
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND)
            try:
                return self._settle(fd, key)
            finally:
                os.close(fd)

    def _settle(self, fd: int, key: SigningKey) -> Settled:
        """Under the lock: ``settle`` on an open descriptor."""
        settled = Settled()
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            keep = _last_newline_before(fd, size) + 1
            tail = _read_at(fd, size - keep, keep)
            last = _last_line(fd, keep)
            problem = self._tail_problem(fd, tail, last)
            if problem is None:
                index = self._head_entry(tail).index
                self._write_durably(fd, b"\n", index)
                settled.restored = index
                log.warning("ledger %s: entry %d was complete and validly signed but lacked its "
                            "final newline; the newline was restored", self.path, index)
            else:
                settled.torn_path = self._cut_torn_tail(fd, tail, keep, problem)
            size = os.fstat(fd).st_size
        line = _last_line(fd, size)
        if line is not None and line != self._known_good:
            problem = self._line_problem(fd, line)
            if problem is not None:
                settled.repaired = self._move_last_line_aside(fd, key, line, size, problem)
            else:
                self._known_good = line
        return settled

    def _save_aside(self, kind: str, data: bytes) -> Path:
        """Write ``data`` durably to a new ``ledger.<kind>-<UTC time>-<n>.bin`` beside the
        ledger, before the ledger loses those bytes."""
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        n = 0
        while True:
            saved = self.path.with_name(f"{self.path.stem}.{kind}-{stamp}-{n}.bin")
            try:
                sfd = os.open(saved, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                break
            except FileExistsError:
                n += 1
        try:
            os.write(sfd, data)
            os.fsync(sfd)
        finally:
            os.close(sfd)
        fsync_dir(self.path.parent)
        return saved

    def _cut_torn_tail(self, fd: int, tail: bytes, keep: int, why: str) -> Path:
        """Under the lock: save and cut the bytes after the last newline (at ``keep``)."""
        torn = self._save_aside("torn", tail)
        # Only now that the bytes are safe elsewhere is the ledger shortened.
        os.ftruncate(fd, keep)
        os.fsync(fd)
        self.recovered_tail = tail if self.recovered_tail is None else self.recovered_tail + tail
        self.torn_path = torn
        log.warning(
            "ledger %s: cut a torn tail of %d bytes after offset %d (unacknowledged, "
            "left by an interrupted write: %s); saved to %s",
            self.path, len(tail), keep, why, torn,
        )
        return torn

    def _move_last_line_aside(
        self, fd: int, key: SigningKey, line: bytes, size: int, why: str
    ) -> LedgerEntry:
        """Under the lock: save the invalid last line, cut it, and record that in its place."""
        start = size - len(line) - 1
        before = _last_line(fd, start)
        if before is None:
            raise LedgerBroken(
                "ledger entry 0", f"entry 0 is not a valid signed entry ({why}); it cannot be "
                "repaired: restore the ledger from a copy")
        before_problem = self._line_problem(fd, before)
        if before_problem is not None:
            raise LedgerBroken(
                "ledger last entry",
                f"the last line ({why}) and the line before it ({before_problem}) are not "
                "valid signed entries; a writer moves only the last line aside. Run sealtrail "
                "verify and restore the ledger from a copy whose checkpoint matches "
                "(docs/ledger-format.md section 7)")
        index = self._head_entry(before).index + 1
        removed = line + b"\n"
        saved = self._save_aside("damaged", removed)
        os.ftruncate(fd, start)
        os.fsync(fd)
        log.warning("ledger %s: the last line (index %d) was not a valid signed entry (%s); "
                    "moved aside to %s and recorded in a ledger_repaired entry",
                    self.path, index, why, saved)
        return self._append_locked(
            fd, key, LEDGER_REPAIRED, "examiner", {}, {},
            {"file": saved.name, "sha256": hashlib.sha256(removed).hexdigest(),
             "bytes": len(removed), "index": index, "reason": why},
        )

    # ---- appending -------------------------------------------------------------------------

    def _build(
        self,
        key: SigningKey,
        index: int,
        prev: str,
        action: str,
        role: str,
        subject: dict[str, Any],
        custody: dict[str, Any],
        details: dict[str, Any],
    ) -> dict[str, Any]:
        if not ACTION_RE.match(action):
            raise UsageError(f"ledger action {action!r} is not lowercase snake case")
        if not isinstance(role, str) or not role:
            raise UsageError("actor role must be a non-empty string")
        for name, value in (("subject", subject), ("custody", custody), ("details", details)):
            if not isinstance(value, dict):
                raise UsageError(f"ledger entry {name} must be an object")
        fields: dict[str, Any] = {
            "v": FORMAT_VERSION,
            "case_id": self.case_id,
            "index": index,
            "time": utc_now_text(),
            "clock": CLOCK_SYSTEM,
            "action": action,
            "actor": {"name": key.name, "key_id": key.key_id, "role": role},
            "subject": subject,
            "custody": custody,
            "details": details,
            "prev": prev,
        }
        try:
            message = signed_body(fields)
        except NotCanonicalError as exc:
            raise UsageError(f"ledger entry cannot be written: {exc}") from None
        fields["sig"] = base64.b64encode(key.sign(message)).decode()
        return fields

    def append(
        self,
        key: SigningKey,
        action: str,
        *,
        role: str,
        subject: dict[str, Any] | None = None,
        custody: dict[str, Any] | None = None,
        details: dict[str, Any] | None = None,
        expect_size: int | None = None,
    ) -> LedgerEntry:
        """Sign and durably append one entry; return it once it is fsynced (acknowledged).

        First, under the same lock, the end of the file is settled (``settle``). The writer
        does not check that ``key`` is trusted by the case (that needs the whole history); an
        entry by an untrusted key is written and reported by the checker.

        Args:
            expect_size: the number of entries the caller believes the ledger has; if the
                ledger has another number (after settling), nothing is written.

        Raises:
            LedgerWriteError: this object failed an earlier write, or this write or its
                fsync failed (the object is then unusable; reopen).
            LedgerBroken: ``expect_size`` does not match, or the end of the ledger is damaged
                beyond what a writer repairs.
            UsageError: the arguments cannot make a valid entry.
        """
        self._check_usable()
        with self.locked():
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND)
            try:
                self._settle(fd, key)  # a writer in another process died mid-write
                return self._append_locked(
                    fd, key, action, role, subject or {}, custody or {}, details or {},
                    expect_size=expect_size)
            finally:
                os.close(fd)

    def _check_usable(self) -> None:
        if self._failure is not None:
            raise LedgerWriteError(
                str(self.path),
                "this ledger writer failed an earlier write and is unusable; reopen the ledger",
            ) from self._failure
        if self.case_id is None:
            raise LedgerBroken(
                "ledger entry 0", "entry 0 is unreadable; cannot append (run the ledger check)"
            )

    def _append_locked(
        self, fd: int, key: SigningKey, action: str, role: str, subject: dict[str, Any],
        custody: dict[str, Any], details: dict[str, Any], *, expect_size: int | None = None,
    ) -> LedgerEntry:
        """Under the lock, on a settled file: sign and write the next entry."""
        line = _last_line(fd, os.fstat(fd).st_size)
        head = None if line is None else self._head_entry(line)
        count = 0 if head is None else head.index + 1
        if expect_size is not None and expect_size != count:
            raise LedgerBroken(
                f"ledger entry {count}",
                "ledger does not have the size this writer expected; "
                "another writer appended first (nothing written)",
                expected=expect_size,
                observed=count,
            )
        prev = ZERO_HASH if head is None else head.entry_hash
        fields = self._build(key, count, prev, action, role, subject, custody, details)
        new_line = canonical_json(fields)
        self._write_durably(fd, new_line + b"\n", count)
        self._known_good = new_line
        return LedgerEntry(count, new_line, fields)

    def _write_durably(self, fd: int, data: bytes, index: int) -> None:
        where = f"ledger entry {index}"
        crash_point("ledger_torn_write", lambda: os.write(fd, data[: len(data) // 2]))
        crash_point("ledger_unterminated_write", lambda: os.write(fd, data[:-1]))
        try:
            written = os.write(fd, data)
        except OSError as exc:
            self._fail(where, f"write failed: {os.strerror(exc.errno or errno.EIO)}", exc)
        if written != len(data):
            self._fail(where, "short write (disk full?); the next writer cuts the torn tail",
                       None, expected=len(data), observed=written)
        crash_point("ledger_written")
        try:
            os.fsync(fd)
        except OSError as exc:
            self._fail(where, f"fsync failed: {os.strerror(exc.errno or errno.EIO)}", exc)
        crash_point("ledger_fsynced")

    def _fail(
        self, where: str, message: str, cause: OSError | None, **mismatch: object
    ) -> NoReturn:
        error = LedgerWriteError(where, message + " (entry not acknowledged)", **mismatch)
        self._failure = error
        log.error("ledger %s: %s", self.path, error)
        raise error from cause
