"""Finishing collections a crash interrupted, so that no crash leaves a case unverifiable.

A collection (`acquisition.session.run_sealed`) appends ``collection_started``, writes
``<id>.stb.partial``, seals it (fsync, rename to ``<id>.stb``, fsync the folder) and appends
``bundle_sealed``. A crash between the rename and that last append leaves a sealed bundle no
entry binds, which verify rightly reports as a problem. Every writer therefore first finishes
interrupted collections (`recover_collections`, called by `Case.repair` under the ledger lock),
in this order of checks (docs/ledger-format.md section 7):

1. Only when no collection is running in any process: a collection holds a shared lock on
   ``CASE/collection.lock`` from before its ``collection_started`` until its outcome is
   recorded (`collection_running`); recovery needs the exclusive lock, without waiting. So a
   started collection it sees without an outcome belongs to a process that died.
2. A ``collection_started`` with no ``bundle_sealed`` or ``collection_failed`` of its bundle id
   is finished only by the key that signed it, while the case still trusts that key: the
   bundle's manifest is signed by that key, and verify requires the ``bundle_sealed`` signer to
   be the manifest's. Another key records nothing and logs a warning naming the collection and
   the key needed. If the case no longer trusts the starting key, any writer records the
   collection as failed (its bundle can never be sealed in this case).
3. ``<id>.stb`` present: it must pass every check of `bundle_reader.check_bundle` with the
   starting key as its only trusted key, and its manifest must name this case. Then
   ``bundle_sealed`` is appended with the subject and details a seal writes
   (`bundle_sealed_details`) plus ``details.recovered = true``. Otherwise the file is renamed
   to ``<id>.stb.unsealed`` (bytes kept, no longer a bundle name) before ``collection_failed``
   records why: a crash between the two leaves a case the next writer finishes the same way.
4. Only ``<id>.stb.partial`` (or ``.stb.unsealed``, or nothing) present: ``collection_failed``
   with ``details.recovered = true``, the reason and the file kept.
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sealtrail.custody.bundle_format import BUNDLE_SUFFIX, PARTIAL_SUFFIX, check_bundle_id
from sealtrail.custody.bundle_reader import check_bundle
from sealtrail.custody.durable import fsync_dir
from sealtrail.custody.keys import PublicKey, SigningKey
from sealtrail.custody.ledger import Ledger, LedgerEntry
from sealtrail.custody.manifest import Manifest
from sealtrail.errors import ManifestInvalid

log = logging.getLogger(__name__)

COLLECTION_LOCK = "collection.lock"
UNSEALED_SUFFIX = ".stb.unsealed"


def bundle_history(
    entries: Sequence[dict[str, Any] | None],
) -> tuple[dict[str, tuple[int, dict[str, Any]]], dict[str, int], set[str]]:
    """From parsed ledger entries: sealed bundles (id -> (index, entry)), started collections
    (id -> index) and the ids whose collection ended (sealed or failed)."""
    sealed: dict[str, tuple[int, dict[str, Any]]] = {}
    started: dict[str, int] = {}
    ended: set[str] = set()
    for i, fields in enumerate(entries):
        if not fields:
            continue
        subject = fields.get("subject") or {}
        bundle_id = subject.get("bundle_id") if isinstance(subject, dict) else None
        if not isinstance(bundle_id, str):
            continue
        action = fields.get("action")
        if action == "collection_started":
            started[bundle_id] = i
        elif action == "bundle_sealed":
            sealed[bundle_id] = (i, fields)
            ended.add(bundle_id)
        elif action == "collection_failed":
            ended.add(bundle_id)
    return sealed, started, ended


def bundle_sealed_details(manifest: Manifest, path: Path) -> dict[str, Any]:
    """The ``details`` of the ``bundle_sealed`` entry for the bundle at ``path`` with this
    manifest (docs/ledger-format.md section 5): one function for the seal and the recovery.

    Raises:
        KeyError, TypeError, IndexError: the manifest lacks what the details are made of.
    """
    totals = manifest.totals()
    details: dict[str, Any] = {
        "bundle_file": path.name,
        "members": totals["members"],
        "bytes": totals["bytes"],
        "outcomes": totals["outcomes"],
        "storage": str(path.parent),
    }
    source = manifest.collection.source
    if source.get("kind") == "image":
        details["source"] = {"kind": "image", "path": source["path"]}
    elif source.get("kind") == "acquisition":
        member = manifest.members[0]
        details.update(sha256=member["sha256"], size=member["size"])
        if "stored_hashes_match" in source:
            details["stored_hashes_match"] = source["stored_hashes_match"]
    return details


@contextmanager
def collection_running(case_root: Path) -> Iterator[None]:
    """Hold the shared collection lock: while it is held, no writer recovers collections."""
    fd = os.open(case_root / COLLECTION_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)  # closing releases the lock


@contextmanager
def _no_collection_running(case_root: Path) -> Iterator[bool]:
    """Yields True while holding the exclusive collection lock, False if a collection runs."""
    fd = os.open(case_root / COLLECTION_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


def recover_collections(
    ledger: Ledger, key: SigningKey, case_root: Path, bundles_dir: Path,
    trusted: dict[str, PublicKey],
) -> list[LedgerEntry]:
    """Finish every interrupted collection ``key`` may finish (module docstring); return the
    entries written. The caller holds the ledger lock and has checked that ``key`` may sign;
    ``trusted`` is the key set the ledger declares at its end."""
    with _no_collection_running(case_root) as free:
        if not free:
            log.info("a collection is running in %s: interrupted collections are finished "
                     "later", case_root)
            return []
        entries = ledger.entries()
        _sealed, started, ended = bundle_history([e.fields or None for e in entries])
        written = []
        for bundle_id, index in started.items():
            if bundle_id in ended or not check_bundle_id(bundle_id):
                continue
            start = entries[index]
            starter = start.actor_key_id or "?"
            if starter != key.key_id and starter in trusted:
                log.warning(
                    "collection %s (ledger entry %d) was interrupted; only the key that started "
                    "it, %s (%s), can record its outcome: sealtrail ledger repair %s --key "
                    "<that key>", bundle_id, index, starter, trusted[starter].name, case_root)
                continue
            written.append(_finish(ledger, key, bundles_dir, bundle_id, start,
                                   sealable=starter == key.key_id))
        return written


def _finish(ledger: Ledger, key: SigningKey, bundles_dir: Path, bundle_id: str,
            start: LedgerEntry, *, sealable: bool) -> LedgerEntry:
    custody = start.fields.get("custody")
    custody = custody if isinstance(custody, dict) else {}
    final = bundles_dir / f"{bundle_id}{BUNDLE_SUFFIX}"
    kept: Path | None = None
    if final.exists():
        if sealable:
            sealed = _seal_recorded(ledger, key, final, bundle_id, custody)
            if isinstance(sealed, LedgerEntry):
                return sealed
            reason = f"the bundle failed its check when recovered: {sealed}"
        else:
            reason = (f"started by key {start.actor_key_id}, which the case no longer trusts: "
                      "the bundle cannot be sealed in this case")
        kept = _set_aside(final, bundle_id)
    else:
        reason = "interrupted before the bundle was sealed"
        for suffix in (PARTIAL_SUFFIX, UNSEALED_SUFFIX):
            if (bundles_dir / f"{bundle_id}{suffix}").exists():
                kept = bundles_dir / f"{bundle_id}{suffix}"
                break
        else:
            reason += "; no bundle file was left"
    details: dict[str, Any] = {"reason": reason, "recovered": True}
    if kept is not None:
        details["partial_file"] = kept.name
    log.warning("collection %s was interrupted; recorded as failed (%s)", bundle_id, reason)
    return ledger.append(key, "collection_failed", role="examiner",
                         subject={"bundle_id": bundle_id}, custody=custody, details=details)


def _seal_recorded(ledger: Ledger, key: SigningKey, path: Path, bundle_id: str,
                   custody: dict[str, Any]) -> LedgerEntry | str:
    """Append ``bundle_sealed`` for a bundle that passes every check; else say why not."""
    result = check_bundle(path, [key.public])
    if result.problems:
        return str(result.problems[0])
    if result.manifest is None or result.manifest_sha256 is None:
        return "no manifest"
    try:
        manifest = Manifest.from_json_obj(result.manifest, f"bundle {path.name}")
    except ManifestInvalid as exc:
        return str(exc)
    if manifest.case_id != ledger.case_id:
        return "its manifest names another case"
    try:
        details = bundle_sealed_details(manifest, path)
    except (KeyError, TypeError, IndexError, AttributeError) as exc:
        return f"its manifest lacks {exc}"
    log.warning("collection %s was interrupted after its bundle was sealed; the bundle passed "
                "every check and is now recorded as sealed", bundle_id)
    return ledger.append(
        key, "bundle_sealed", role="examiner", custody=custody,
        subject={"bundle_id": bundle_id,
                 "manifest_sha256": result.manifest_sha256},
        details={**details, "recovered": True},
    )


def _set_aside(path: Path, bundle_id: str) -> Path:
    """Rename a bundle that cannot be sealed to a name no reader takes for a bundle."""
    n = 0
    while True:
        target = path.with_name(f"{bundle_id}{'' if n == 0 else f'.{n}'}{UNSEALED_SUFFIX}")
        if not target.exists():
            break
        n += 1
    os.rename(path, target)
    fsync_dir(path.parent)
    return target
