"""A collection run inside a case: ledger entry, bundle, seal, ledger entry.

Order (each step acknowledged before the next):
0. The ledger is opened for writing (`Case.writer`: interrupted collections are finished
   first), and the shared collection lock is taken (`recovery.collection_running`), held until
   step 4 or the failure record is done, so no other writer takes this run for a dead one.
1. ``collection_started`` is appended to the ledger (who, what source, what was asked for).
2. The plan is copied into ``<id>.stb.partial``, every member hashed while copied.
3. The manifest is signed and the bundle sealed (fsync, rename to ``<id>.stb``, fsync folder).
4. ``bundle_sealed`` is appended with the manifest's SHA-256, binding the bundle to the ledger.
If anything fails or is interrupted between 1 and 4 (Ctrl-C, an I/O error), the ``.partial``
file is kept and ``collection_failed`` is appended with the reason, when the ledger can still be
written; when the disk is full the ``.partial`` file is removed first (`DestinationFull`).
A crash (SIGKILL, power loss) that leaves neither is finished by the next writer the starting
key signs with (`custody.recovery`): a bundle that was sealed and passes every check is
recorded as sealed, anything else as failed. The named steps of `sealtrail.crashpoint` mark
each boundary, for the tests that kill a run at every one.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sealtrail.acquisition.collection import (
    ProgressFn,
    VolatileCapture,
    build_manifest,
    now_utc,
    write_bodyfile_member,
    write_plan,
    write_volatile,
)
from sealtrail.collectors.plan import CollectionPlan
from sealtrail.collectors.source import DirectorySource
from sealtrail.crashpoint import crash_point
from sealtrail.custody.bundle_writer import BundleWriter
from sealtrail.custody.case import Case
from sealtrail.custody.keys import SigningKey
from sealtrail.custody.ledger import Ledger, LedgerEntry
from sealtrail.custody.manifest import Manifest
from sealtrail.custody.recovery import bundle_sealed_details, collection_running
from sealtrail.errors import CollectionError, DestinationFull, UsageError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CollectionResult:
    bundle_id: str
    bundle_path: str
    manifest_sha256: str
    members: int
    bytes: int
    outcomes: dict[str, int]
    started: datetime
    finished: datetime
    ledger_index: int

    @property
    def seconds(self) -> float:
        return (self.finished - self.started).total_seconds()


def new_bundle_id(host: str | None, when: datetime) -> str:
    label = re.sub(r"[^A-Za-z0-9.-]+", "-", host or "unknown-host").strip("-.")[:40] or "host"
    return f"{when.strftime('%Y%m%dT%H%M%SZ')}-{label}-{secrets.token_hex(4)}"


def run_collection(
    case: Case,
    key: SigningKey,
    source: DirectorySource,
    plan: CollectionPlan,
    *,
    source_label: str,
    requested: dict[str, Any],
    custody: dict[str, str] | None = None,
    progress: ProgressFn | None = None,
    volatile: Sequence[VolatileCapture] = (),
    bodyfile: bool = False,
) -> CollectionResult:
    case.require_signer(case.ledger(), key)
    started = now_utc()
    bundle_id = new_bundle_id(source.hostname(), started)
    planned_files = sum(1 for item in plan.items if item.outcome is None)

    def fill(writer: BundleWriter) -> dict[str, Any]:
        members = write_volatile(writer, volatile)
        if bodyfile:  # before any source file, so it keeps its name
            members.append(write_bodyfile_member(source, writer))
        file_members, entries = write_plan(source, writer, plan, progress,
                                           max_file_size=requested.get("max_file_size"))
        return build_manifest(
            bundle_id=bundle_id, case_id=case.case_id, examiner=case.examiner,
            key_id=key.key_id, key_name=key.name, source=source, source_label=source_label,
            plan=plan, requested=requested, started=started, finished=now_utc(),
            members=members + file_members, entries=entries,
        )

    run = run_sealed(
        case, key, bundle_id, custody=custody, fill=fill,
        started_details={
            "source": {"kind": "directory", "path": source_label},
            "host": source.hostname(),
            "os": plan.os_name,
            "requested": requested,
            "planned_files": planned_files,
            "planned_items": len(plan.items),
        },
    )
    return result_of(run, bundle_id, started)


def result_of(run: SealedRun, bundle_id: str, started: datetime) -> CollectionResult:
    totals = run.manifest.totals()
    finished = run.manifest.collection.finished_at
    assert finished is not None  # written by this process
    return CollectionResult(
        bundle_id, str(run.path), run.manifest_sha256, totals["members"], totals["bytes"],
        totals["outcomes"], started, finished, run.entry.index,
    )


def requested_fields(artifacts: Sequence[str], paths: Sequence[str], os_name: str | None,
                     max_file_size: int | None, *, bodyfile: bool = False) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "artifacts": list(artifacts),
        "paths": list(paths),
        "os": os_name,
        "max_file_size": max_file_size,
    }
    if bodyfile:
        fields["bodyfile"] = True
    return fields


@dataclass(frozen=True, slots=True)
class SealedRun:
    path: Path
    manifest: Manifest
    manifest_sha256: str
    entry: LedgerEntry


_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


def _no_space(exc: BaseException | None) -> bool:
    """Whether ``exc`` or an exception it was raised from is "no space left" (ENOSPC, EDQUOT)."""
    seen = 0
    while exc is not None and seen < 16:
        if isinstance(exc, OSError) and exc.errno in _NO_SPACE:
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


def _record_failure(ledger: Ledger, key: SigningKey, bundle_id: str, writer: BundleWriter,
                    exc: BaseException) -> BaseException:
    """Keep the ``.partial`` file, append ``collection_failed``, and return what to raise.

    Out of space (ENOSPC, EDQUOT) the ``.partial`` file is removed instead, before the ledger
    is written (which frees the room the entry needs), and the entry says so
    (``partial_removed``): a half-written bundle on a full disk keeps it full and holds
    nothing a verifier can check. The error is `DestinationFull`, naming the bundle folder.

    The returned exception says the collection was not sealed and where its data was kept;
    if the ledger could not record the failure either, it says that too (that second failure
    is never only logged). Ctrl-C and usage errors are returned as they are (with a note).
    """
    partial = writer.abandon()
    no_space = _no_space(exc)
    details: dict[str, Any] = {"partial_file": partial.name}
    if no_space:
        try:
            partial.unlink(missing_ok=True)
            details["partial_removed"] = True
        except OSError:
            details["partial_removed"] = False
    reason = "interrupted (Ctrl-C)" if isinstance(exc, KeyboardInterrupt) else str(exc)
    unrecorded = ""
    try:
        ledger.append(
            key, "collection_failed", role="examiner", subject={"bundle_id": bundle_id},
            details={"reason": reason, **details},
        )
    except Exception as ledger_exc:  # noqa: BLE001 - the original failure must surface
        log.error("could not record the failed collection in the ledger: %s", ledger_exc)
        unrecorded = f"; the ledger could not record the failure either: {ledger_exc}"
    if no_space:
        return DestinationFull(str(partial.parent), bundle_id, details["partial_removed"],
                               unrecorded)
    kept = f"; unsealed data kept in {partial}{unrecorded}"
    if isinstance(exc, KeyboardInterrupt | UsageError):
        if unrecorded:
            exc.add_note(unrecorded.lstrip("; "))
        return exc
    if isinstance(exc, CollectionError):
        return exc.with_context(f"collection {bundle_id} not sealed{kept}")
    if isinstance(exc, OSError):
        return CollectionError(
            f"collection {bundle_id} failed: {exc.strerror or exc}{kept}")
    if unrecorded:
        exc.add_note(unrecorded.lstrip("; "))
    return exc


def run_sealed(
    case: Case,
    key: SigningKey,
    bundle_id: str,
    *,
    started_details: dict[str, Any],
    fill: Callable[[BundleWriter], Manifest],
    custody: dict[str, str] | None = None,
) -> SealedRun:
    """Steps 0-4 of the module docstring for any kind of collection.

    ``fill`` writes the members into the bundle and returns the manifest; the ledger entries,
    the seal and the failure record are done here, so every kind of collection (folder, image,
    whole-image acquisition) keeps the same custody order. ``bundle_sealed`` carries
    `recovery.bundle_sealed_details` of the manifest (what a recovery would write too). The
    caller has checked that ``key`` may sign (`Case.require_signer`).
    """
    ledger = case.writer(key)
    with collection_running(case.root):
        ledger.append(key, "collection_started", role="examiner",
                      subject={"bundle_id": bundle_id}, custody=custody, details=started_details)
        crash_point("collection_started")
        writer = BundleWriter(case.bundles_dir, bundle_id)
        try:
            manifest = fill(writer)
            crash_point("members_written")
            path, payload = writer.seal(manifest.to_json_obj(), key)
        except BaseException as exc:
            raise _record_failure(ledger, key, bundle_id, writer, exc) from exc
        manifest_sha256 = hashlib.sha256(payload).hexdigest()
        entry = ledger.append(
            key,
            "bundle_sealed",
            role="examiner",
            subject={"bundle_id": bundle_id, "manifest_sha256": manifest_sha256},
            custody=custody,
            details=bundle_sealed_details(manifest, path),
        )
        crash_point("bundle_sealed_recorded")
    return SealedRun(path, manifest, manifest_sha256, entry)
