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
      ``ledger.lock``. Under the lock the writer reads only the last line (seeking from the
      end) to learn the next index and ``prev``, writes the whole line plus newline with one
      ``os.write`` on an ``O_APPEND`` descriptor and calls ``os.fsync``. An entry is
      acknowledged (``append`` returns) only after fsync succeeded.
    * ``expect_size`` lets a writer state how many entries it believes exist; a stale writer
      gets ``LedgerBroken`` instead of writing onto a history it has not seen.
    * A failed write or fsync is fatal for that ``Ledger`` object (``LedgerWriteError``; no
      retry on the same descriptor, since after a failed fsync the page cache state is
      unknown). Reopen to continue.
    * A torn tail (bytes after the last newline, left by a crash during a write) is cut when
      the ledger is opened, and before an append if another writer died since: the cut bytes
      are first saved durably to ``ledger.torn-<UTC time>-<n>.bin`` beside the ledger, then the
      file is truncated after its last newline and fsynced, and a warning is logged. A torn
      tail was never acknowledged, so cutting it loses nothing that was promised.
    * Nothing else is ever repaired: a damaged line that ends with a newline is tampering or
      media failure, and is left byte-for-byte for the checker to report.
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
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

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


class Ledger:
    """A case's custody ledger file. Use ``Ledger.create`` or ``Ledger.open``.

    Attributes:
        path: the ledger file.
        case_id: the case id from entry 0 (None if entry 0 is unreadable).
        recovered_tail: the torn-tail bytes cut when this object opened the ledger, if any.
        torn_path: where those bytes were saved.
    """

    def __init__(self, path: Path, case_id: str | None) -> None:
        self.path = path
        self.case_id = case_id
        self.recovered_tail: bytes | None = None
        self.torn_path: Path | None = None
        self._failure: LedgerWriteError | None = None

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
        with ledger._locked():
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
        """Open an existing ledger, cutting a torn tail (see the module docstring).

        Raises:
            CaseError: there is no ledger at ``path``.
        """
        path = _resolve(path)
        if not path.is_file():
            raise CaseError(f"{path} does not exist; no ledger to open")
        ledger = cls(path, None)
        with ledger._locked():
            fd = os.open(path, os.O_RDWR)
            try:
                ledger._cut_torn_tail(fd)
                first = _first_line(fd)
                if first is not None:
                    case_id = LedgerEntry.from_line(0, first).fields.get("case_id")
                    ledger.case_id = case_id if isinstance(case_id, str) else None
            finally:
                os.close(fd)
        return ledger

    @contextmanager
    def _locked(self) -> Iterator[None]:
        # A fresh descriptor per use: flock belongs to the open file description, so this
        # also serialises threads of one process and Ledger objects sharing a file.
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def _cut_torn_tail(self, fd: int) -> None:
        """Under the lock: save and cut bytes after the last newline, if there are any."""
        size = os.fstat(fd).st_size
        if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
            return
        keep = _last_newline_before(fd, size) + 1
        tail = _read_at(fd, size - keep, keep)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        n = 0
        while True:
            torn = self.path.with_name(f"{self.path.stem}.torn-{stamp}-{n}.bin")
            try:
                tfd = os.open(torn, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                break
            except FileExistsError:
                n += 1
        try:
            os.write(tfd, tail)
            os.fsync(tfd)
        finally:
            os.close(tfd)
        fsync_dir(self.path.parent)
        # Only now that the bytes are safe elsewhere is the ledger shortened.
        os.ftruncate(fd, keep)
        os.fsync(fd)
        self.recovered_tail = tail if self.recovered_tail is None else self.recovered_tail + tail
        self.torn_path = torn
        log.warning(
            "ledger %s: cut a torn tail of %d bytes after offset %d (unacknowledged, "
            "left by an interrupted write); saved to %s",
            self.path, len(tail), keep, torn,
        )

    # ---- reading ---------------------------------------------------------------------------

    def read_lines(self) -> list[bytes]:
        """Every complete line of the file (without newlines), unparsed.

        A torn tail that appeared since opening (a writer died) is not returned: only
        newline-terminated lines can be acknowledged entries.
        """
        data = self.path.read_bytes()
        end = data.rfind(b"\n")
        return data[:end].split(b"\n") if end >= 0 else []

    def entries(self) -> list[LedgerEntry]:
        """Every line as a ``LedgerEntry`` (index = position); unverified, never raises on
        garbage (such a line has ``fields == {}``). Use ``ledger_check`` to judge them."""
        return [LedgerEntry.from_line(i, line) for i, line in enumerate(self.read_lines())]

    def head(self) -> LedgerEntry | None:
        """The last entry (its index taken from its own ``index`` field), or None if empty.

        Raises:
            LedgerBroken: the last line is not an entry with an integer index.
        """
        fd = os.open(self.path, os.O_RDONLY)
        try:
            size = os.fstat(fd).st_size
            end = size if size and os.pread(fd, 1, size - 1) == b"\n" else (
                _last_newline_before(fd, size) + 1
            )
            line = _last_line(fd, end)
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

        The writer does not check that ``key`` is trusted by the case (that needs the whole
        history); an entry by an untrusted key is written and reported by the checker.

        Args:
            expect_size: the number of entries the caller believes the ledger has; if the
                ledger has another number, nothing is written.

        Raises:
            LedgerWriteError: this object failed an earlier write, or this write or its
                fsync failed (the object is then unusable; reopen).
            LedgerBroken: ``expect_size`` does not match, or the last entry is unreadable.
            UsageError: the arguments cannot make a valid entry.
        """
        if self._failure is not None:
            raise LedgerWriteError(
                str(self.path),
                "this ledger writer failed an earlier write and is unusable; reopen the ledger",
            ) from self._failure
        if self.case_id is None:
            raise LedgerBroken(
                "ledger entry 0", "entry 0 is unreadable; cannot append (run the ledger check)"
            )
        with self._locked():
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND)
            try:
                self._cut_torn_tail(fd)  # a writer in another process died mid-write
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
                fields = self._build(
                    key, count, prev, action, role, subject or {}, custody or {}, details or {}
                )
                new_line = canonical_json(fields)
                self._write_durably(fd, new_line + b"\n", count)
            finally:
                os.close(fd)
        return LedgerEntry(count, new_line, fields)

    def _write_durably(self, fd: int, data: bytes, index: int) -> None:
        where = f"ledger entry {index}"
        try:
            written = os.write(fd, data)
        except OSError as exc:
            self._fail(where, f"write failed: {os.strerror(exc.errno or errno.EIO)}", exc)
        if written != len(data):
            self._fail(where, "short write (disk full?); a torn tail will be cut on reopen",
                       None, expected=len(data), observed=written)
        try:
            os.fsync(fd)
        except OSError as exc:
            self._fail(where, f"fsync failed: {os.strerror(exc.errno or errno.EIO)}", exc)

    def _fail(
        self, where: str, message: str, cause: OSError | None, **mismatch: object
    ) -> NoReturn:
        error = LedgerWriteError(where, message + " (entry not acknowledged)", **mismatch)
        self._failure = error
        log.error("ledger %s: %s", self.path, error)
        raise error from cause
