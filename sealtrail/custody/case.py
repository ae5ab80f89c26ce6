"""A case folder: the ledger, the sealed bundles, checkpoints and the case's trusted keys.

    CASE/case.json          case id, title, examiner, origin (a convenience copy; the signed
                            truth is ledger entry 0, and verify compares the two)
    CASE/ledger.jsonl       the custody ledger (docs/ledger-format.md)
    CASE/ledger.lock        serialises appenders
    CASE/keys/<id>.pub      public keys the case trusts (copies; trust itself is in the ledger)
    CASE/bundles/<id>.stb   sealed bundles (docs/bundle-format.md); ``.stb.partial`` = unsealed
    CASE/checkpoints/       signed checkpoints, write-once, named ``<size>-<root hex prefix>``

Readers open the ledger with ``ledger()``, which never writes. Writers open it with
``writer(key)``, which first repairs what a crash can leave (``repair``: the end of the ledger,
``Ledger.settle``; interrupted collections, ``recovery.recover_collections``), under the
ledger lock and with ``key`` signing whatever it records.

Which keys may sign is decided by the ledger: the keys declared when the case was opened, plus
``key_trusted`` entries, minus ``key_revoked`` entries. ``declared_keys`` reads those entries
without verifying them (to refuse an untrusted signer early); ``sealtrail verify`` checks them.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sealtrail.custody.canonical import NotCanonicalError, parse_json, pretty_json
from sealtrail.custody.durable import replace_file
from sealtrail.custody.keys import PublicKey, SigningKey, public_key_from_obj, write_public_key
from sealtrail.custody.ledger import (
    Ledger,
    LedgerEntry,
    Settled,
    trusted_key_record,
    utc_now_text,
)
from sealtrail.custody.recovery import recover_collections
from sealtrail.errors import CaseError, CustodyError, UsageError

CASE_FILE = "case.json"
CASE_KIND = "sealtrail.case"


@dataclass(frozen=True, slots=True)
class Repair:
    """What ``Case.repair`` did: the ledger's end (``settled``) and the entries that finished
    interrupted collections (``collections``)."""

    ledger: Ledger
    settled: Settled
    collections: list[LedgerEntry]

    def __bool__(self) -> bool:
        return bool(self.settled) or bool(self.collections)


@dataclass(frozen=True, slots=True)
class Case:
    root: Path
    case_id: str
    title: str
    examiner: str
    origin: str

    @property
    def ledger_path(self) -> Path:
        return self.root / "ledger.jsonl"

    @property
    def bundles_dir(self) -> Path:
        return self.root / "bundles"

    @property
    def keys_dir(self) -> Path:
        return self.root / "keys"

    @property
    def checkpoints_dir(self) -> Path:
        return self.root / "checkpoints"

    # -- creating and opening ------------------------------------------------------------

    @classmethod
    def init(
        cls,
        root: Path,
        *,
        title: str,
        examiner: str,
        key: SigningKey,
        trust: Sequence[PublicKey] = (),
        authority: str | None = None,
        location: str | None = None,
    ) -> Case:
        """Create the case folder and open the ledger with a signed ``case_opened`` entry."""
        if root.exists() and (not root.is_dir() or any(root.iterdir())):
            raise CaseError(f"{root} already exists and is not an empty folder")
        if not title.strip() or not examiner.strip():
            raise UsageError("a case needs a non-empty --title and --examiner")
        case_id = str(uuid.uuid4())
        case = cls(root, case_id, title, examiner, f"sealtrail.case/{case_id}")
        for folder in (root, case.bundles_dir, case.keys_dir, case.checkpoints_dir):
            folder.mkdir(parents=True, exist_ok=True)
        keys = [trusted_key_record(key.public, "examiner")]
        for extra in trust:
            if extra.key_id not in {k["key_id"] for k in keys}:
                keys.append(trusted_key_record(extra, "trusted"))
        custody = {k: v for k, v in (("authority", authority), ("location", location)) if v}
        meta = {
            "type": CASE_KIND,
            "version": 1,
            "case_id": case_id,
            "title": title,
            "examiner": examiner,
            "origin": case.origin,
            "created": utc_now_text(),
        }
        Ledger.create(
            case.ledger_path,
            case_id,
            key,
            role="examiner",
            details={
                "title": title,
                "examiner": examiner,
                "origin": case.origin,
                "trusted_keys": keys,
            },
            custody=custody or None,
        )
        replace_file(root / CASE_FILE, (pretty_json(meta) + "\n").encode())
        for record in [key.public, *trust]:
            case.store_public_key(record)
        return case

    @classmethod
    def load(cls, root: Path) -> Case:
        path = root / CASE_FILE
        if not root.is_dir():
            raise CaseError(f"{root} is not a case folder (no such folder)")
        try:
            meta = parse_json(path.read_bytes())
        except FileNotFoundError:
            raise CaseError(f"{root} is not a case folder (no {CASE_FILE})") from None
        except (OSError, NotCanonicalError) as exc:
            raise CaseError(f"{path} is unreadable: {exc}") from None
        if not isinstance(meta, dict) or meta.get("type") != CASE_KIND:
            raise CaseError(f"{path} is not a sealtrail case file")
        try:
            return cls(root, meta["case_id"], meta["title"], meta["examiner"], meta["origin"])
        except KeyError as exc:
            raise CaseError(f"{path} lacks the field {exc.args[0]}") from None

    def ledger(self) -> Ledger:
        """The ledger, to read (opening never writes; appending settles the end first)."""
        if not self.ledger_path.exists():
            raise CaseError(f"{self.root} has no ledger.jsonl")
        return Ledger.open(self.ledger_path)

    def writer(self, key: SigningKey) -> Ledger:
        """The ledger, for ``key`` to append to, after ``repair``.

        Raises:
            UsageError: ``key`` may not sign in this case.
            LedgerBroken: the end of the ledger is damaged beyond what a writer repairs.
        """
        return self.repair(key).ledger

    def repair(self, key: SigningKey) -> Repair:
        """What every writer does first, under the ledger lock: settle the end of the ledger
        and finish interrupted collections, each recorded in an entry signed by ``key``."""
        ledger = self.ledger()
        self.require_signer(ledger, key)
        with ledger.locked():
            settled = ledger.settle(key)
            recovered = recover_collections(
                ledger, key, self.root, self.bundles_dir, declared_keys(ledger.entries()))
        return Repair(ledger, settled, recovered)

    def store_public_key(self, key: PublicKey) -> None:
        path = self.keys_dir / f"{key.key_id}.pub"
        if not path.exists():
            write_public_key(key, path)

    # -- trust ------------------------------------------------------------------------------

    def require_signer(self, ledger: Ledger, key: SigningKey) -> None:
        """Refuse early when ``key`` is not (or no longer) trusted to sign in this case."""
        trusted = declared_keys(ledger.entries())
        if key.key_id not in trusted:
            raise UsageError(
                f"key {key.key_id} ({key.name}) is not trusted in case {self.root}; "
                f"add it first with: sealtrail case trust {self.root} PUBFILE --key TRUSTED.key"
            )

    def trust(
        self, new_key: PublicKey, signer: SigningKey, role: str = "examiner",
        note: str | None = None,
    ) -> LedgerEntry:
        ledger = self.writer(signer)
        if new_key.key_id in declared_keys(ledger.entries()):
            raise UsageError(f"key {new_key.key_id} ({new_key.name}) is already trusted")
        entry = ledger.append(
            signer,
            "key_trusted",
            role="examiner",
            details={"key": trusted_key_record(new_key, role), "role": role},
            custody={"note": note} if note else None,
        )
        self.store_public_key(new_key)
        return entry


def declared_keys(entries: Iterable[LedgerEntry]) -> dict[str, PublicKey]:
    """Keys the ledger declares trusted at its end (opened with, added, minus revoked).

    Reads fields only; signatures and the chain are checked by ``sealtrail verify``.
    """
    keys: dict[str, PublicKey] = {}
    for entry in entries:
        fields: dict[str, Any] = entry.fields or {}
        details = fields.get("details") or {}
        action = fields.get("action")
        try:
            if action == "case_opened":
                for record in details.get("trusted_keys", []):
                    key = public_key_from_obj(record, f"ledger entry {entry.index}")
                    keys[key.key_id] = key
            elif action == "key_trusted":
                key = public_key_from_obj(details.get("key"), f"ledger entry {entry.index}")
                keys[key.key_id] = key
            elif action == "key_revoked":
                keys.pop(str(details.get("key_id")), None)
        except CustodyError:
            continue
    return keys
