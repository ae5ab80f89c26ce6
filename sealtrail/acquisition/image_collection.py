"""Collecting from a disk image, with the image parsed in a worker process under a time limit.

The parent never parses the image (`image_worker` says why and how the two talk). The custody
steps are `session.run_sealed`'s, as for every kind of collection; between them it:

1. (``collection_started`` is appended to the ledger: source, what was asked for);
2. starts a worker process (`image_worker.Worker`), ``<id>.stb.partial`` being open;
3. receives from the worker: the image layout, each partition's plan outcome, then for every
   file a ``begin`` message, its bytes (in shared-memory slots) and an ``end`` record, and a
   record for every item without bytes. The parent copies each slot into the bundle's staging
   buffer and hashes and writes its own copy (`BundleWriter`). For a raw image the worker may
   instead describe a file as byte ranges of the image file (one ``ranged`` message: plain,
   non-resident, uncompressed data, see `ImageSource.data_runs`); the parent then reads those
   ranges itself, read-only, straight into the staging buffer (`_ImageRanges`). Member digests
   never come from the worker;
4. builds the manifest; `run_sealed` signs it with the key the worker never sees, seals the
   bundle and appends ``bundle_sealed``.

A crash, a kill (stall or time limit) or a malformed message ends the collection: the
``.partial`` is kept, ``collection_failed`` is appended with the reason (`run_sealed`), and
one `CollectionError` line names the image and says the collection was not sealed.

`inspect_image` runs the same kind of worker for ``sealtrail image info``.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sealtrail.acquisition.collection import (
    CHUNK,
    ProgressFn,
    damage_checked,
    entry_record,
    fn_times_damaged,
    now_utc,
    representable_ints,
    source_record,
    sparse_entry,
    sparse_limit,
    time_or_none,
)
from sealtrail.acquisition.image_worker import (
    DEFAULT_STALL_LIMIT,
    TAG_DATA,
    TAG_MSG,
    TAG_SLOT,
    Channel,
    Worker,
    WorkerFailed,
    b64,
    unb64,
)
from sealtrail.acquisition.session import (
    CollectionResult,
    new_bundle_id,
    result_of,
    run_sealed,
)
from sealtrail.collectors.bodyfile import (
    BODYFILE_ARTIFACT,
    bodyfile_member_path,
    write_bodyfile,
)
from sealtrail.collectors.images import open_read_only
from sealtrail.collectors.plan import ArtifactOutcome, PlannedItem
from sealtrail.collectors.source import FileInfo, SwappedFile
from sealtrail.custody.bundle_writer import BundleWriter, MemberSink, PendingMember
from sealtrail.custody.case import Case
from sealtrail.custody.keys import SigningKey
from sealtrail.custody.manifest import CollectionContext, Manifest
from sealtrail.errors import UsageError
from sealtrail.worker_start import warm_up

__all__ = [
    "DEFAULT_STALL_LIMIT",
    "ImageJob",
    "WorkerFailed",
    "image_fields",
    "image_requested",
    "inspect_image",
    "run_image_collection",
]


@dataclass(frozen=True, slots=True)
class ImageJob:
    """What to collect from an image (all of it picklable, for the worker).

    Attributes:
        image: the image file (the first segment of a split or EWF image).
        partition: the partition index to collect from (None: every partition with a file
            system; partitions whose OS cannot be told are then skipped and recorded).
        include_deleted: also collect deleted files whose content is intact, flagged.
        bodyfile: add a bodyfile member per partition (full metadata walk).
        artifacts, paths, os_name, max_file_size: as for a folder collection.
    """

    image: str
    partition: int | None = None
    include_deleted: bool = False
    bodyfile: bool = False
    artifacts: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()
    os_name: str | None = None
    max_file_size: int | None = None


# -- what the worker does ------------------------------------------------------------------


def image_fields(info: FileInfo, partition: dict[str, Any] | None) -> dict[str, Any]:
    """The image-only source fields of a manifest record (see docs/bundle-format.md)."""
    out: dict[str, Any] = {"deleted": info.deleted, "allocated": info.allocated}
    if partition is not None:
        out["partition"] = partition
    if info.fn_times is not None:
        names = ("atime", "mtime", "ctime", "crtime")
        out["fn_times"] = {
            name: time_or_none(value) for name, value in zip(names, info.fn_times, strict=True)
            if value is not None
        }
    return out


def _with_image_fields(source: dict[str, Any], info: FileInfo,
                       partition: dict[str, Any] | None) -> dict[str, Any]:
    """``source`` (a manifest source object) with `image_fields` added; a ``$FILE_NAME`` time
    no RFC 3339 text can hold goes into ``damaged`` as well (docs/bundle-format.md)."""
    source.update(image_fields(info, partition))
    damaged = fn_times_damaged(info)
    if damaged:
        source["damaged"] = {**source.get("damaged", {}), **damaged}
    return source


def _source_record(info: FileInfo, partition: dict[str, Any] | None) -> dict[str, Any]:
    return _with_image_fields(source_record(info), info, partition)


def _copy(channel: Channel, source: Any, item: PlannedItem, member: bytes,  # noqa: ANN401
          part: dict[str, Any], limit: int) -> None:
    assert item.info is not None
    info = item.info
    if info.size > limit:  # a file with holes over the limit is not read (`sparse_entry`)
        allocated = source.allocated_size(info)
        if allocated is not None and allocated < info.size:
            record = sparse_entry(item, info.size, allocated, limit)
            _with_image_fields(record["source"], info, part)
            channel.msg({"t": "entry", "record": record})
            return
    runs = source.data_runs(info)
    if runs is not None:  # the parent reads these ranges of the image itself
        channel.msg({"t": "ranged", "relpath": b64(member), "runs": runs, "record": {
            "artifacts": list(item.artifacts), "source": _source_record(info, part),
            "outcome": "collected", "reason": ""}})
        return
    try:
        stream = source.open_regular(item.relpath, info)
    except SwappedFile as exc:
        _entry(channel, item, part, "unreadable", exc.reason)
        return
    except OSError as exc:
        name = errno.errorcode.get(exc.errno or 0, "EIO")
        _entry(channel, item, part, "unreadable", f"{name}: {exc.strerror or exc}")
        return
    channel.msg({"t": "begin", "relpath": b64(member)})
    slots = channel.slots
    assert slots is not None
    done, error = 0, None
    with stream:
        try:
            while True:
                index = slots.take()
                try:
                    n = stream.readinto(slots.slot(index))
                except BaseException:
                    slots.keep(index)
                    raise
                if not n:
                    slots.keep(index)
                    break
                channel.slot_filled(index, n)
                done += n
        except OSError as exc:
            error = exc
    record: dict[str, Any] = {
        "artifacts": list(item.artifacts),
        "source": _source_record(info, part),
        "outcome": "collected",
        "reason": "",
    }
    if error is not None or done < info.size:
        record["outcome"] = "partial"
        why = error.strerror if error is not None and error.strerror else "short read"
        record["reason"] = (f"EIO after {done} of {info.size} bytes ({why}); "
                            "the bytes read are kept")
    channel.msg({"t": "end", "record": record})


def _entry(channel: Channel, item: PlannedItem, part: dict[str, Any], outcome: str,
           reason: str) -> None:
    record = entry_record(item, outcome, reason)
    if item.info is not None:
        _with_image_fields(record["source"], item.info, part)
    else:
        record["source"]["partition"] = part
    channel.msg({"t": "entry", "record": record})


def _artifact_json(outcome: ArtifactOutcome, index: int) -> dict[str, Any]:
    return {"name": outcome.name, "outcome": outcome.outcome, "reason": outcome.reason,
            "patterns": list(outcome.patterns), "matched": outcome.matched,
            "partition": index}


def _collect_in_child(channel: Channel, job: ImageJob) -> None:
    """Open, plan and read the image; stream everything to the parent."""
    from sealtrail.collectors.image_source import ImageSource
    from sealtrail.collectors.images import open_image
    from sealtrail.collectors.plan import plan_collection
    from sealtrail.collectors.tsk import open_img, read_layout

    handle = open_image(job.image)
    img = open_img(handle)
    layout = read_layout(handle, img)
    channel.msg({"t": "layout", "image": handle.describe(), "vs_type": layout.vs_type,
                 "partitions": [p.to_json_obj() for p in layout.partitions]})
    if job.partition is not None:
        chosen = [p for p in layout.partitions if p.index == job.partition]
        if not chosen:
            known = ", ".join(str(p.index) for p in layout.partitions)
            raise UsageError(f"{job.image}: no partition {job.partition} (partitions: {known})")
        if chosen[0].fs_type is None:
            raise UsageError(f"{job.image}: partition {job.partition} has no file system "
                             f"sealtrail can read ({chosen[0].fs_error})")
    else:
        chosen = [p for p in layout.partitions if p.fs_type is not None]
        if not chosen:
            reasons = "; ".join(f"partition {p.index}: {p.fs_error}" for p in layout.partitions)
            raise UsageError(f"{job.image}: no partition holds a file system sealtrail can "
                             f"read ({reasons})")
    prefixed = layout.vs_type is not None
    collected = 0
    for partition in chosen:
        part = {"index": partition.index, "offset": partition.start_offset,
                "type": partition.type_desc, "fs_type": partition.fs_type}
        source = ImageSource(handle, partition, include_deleted=job.include_deleted, img=img)
        try:
            plan = plan_collection(source, artifact_names=job.artifacts, path_globs=job.paths,
                                   os_name=job.os_name, max_file_size=job.max_file_size)
        except UsageError as exc:
            if job.partition is not None or len(chosen) == 1:
                raise
            channel.msg({"t": "partition", "index": partition.index, "outcome": "skipped",
                         "reason": str(exc)})
            continue
        collected += 1
        items = [damage_checked(item) for item in plan.items]  # before any byte is read
        channel.msg({
            "t": "partition", "index": partition.index, "outcome": "collected", "reason": "",
            "host": source.hostname(), "os": plan.os_name,
            "artifacts": [_artifact_json(a, partition.index) for a in plan.artifacts],
            "planned_items": len(items),
            "planned_bytes": sum(i.info.size for i in items
                                 if i.outcome is None and i.info is not None),
        })
        prefix = b"p%d/" % partition.index if prefixed else b""
        if job.bodyfile:
            channel.msg({"t": "begin", "relpath": b64(bodyfile_member_path(partition.index))})
            stats = write_bodyfile(source, channel.data)
            reason = ""
            if stats.unreadable:
                reason = "folders not listed: " + "; ".join(stats.unreadable[:5])
            channel.msg({"t": "end", "record": {
                "artifacts": [BODYFILE_ARTIFACT],
                "source": {"kind": "generated", "generator": "bodyfile",
                           "format": "tsk-3-bodyfile", "entries": stats.entries,
                           "partition": part},
                "outcome": "collected", "reason": reason}})
        for item in items:
            if item.outcome is None:
                _copy(channel, source, item, prefix + item.relpath, part,
                      sparse_limit(job.max_file_size))
            else:
                _entry(channel, item, part, item.outcome, item.reason)
    if not collected:
        raise UsageError(f"{job.image}: no partition could be planned (pass --os, --path or "
                         "--partition)")
    channel.msg({"t": "done"})


def _inspect_in_child(channel: Channel, path: str) -> None:
    from sealtrail.collectors.images import open_image
    from sealtrail.collectors.tsk import fs_summary, open_img, read_layout

    handle = open_image(path)
    img = open_img(handle)
    layout = read_layout(handle, img)
    partitions = []
    for partition in layout.partitions:
        record = partition.to_json_obj()
        try:
            record["fs"] = fs_summary(img, partition)
        except Exception as exc:  # noqa: BLE001 - reported per partition
            record["fs"] = {}
            record["fs_error"] = str(exc)
        partitions.append(record)
    info = handle.describe()
    info.update({"volume_system": layout.vs_type, "sector_size": layout.block_size,
                 "partitions": partitions})
    channel.msg({"t": "info", "info": info})
    channel.msg({"t": "done"})


def inspect_image(path: Path | str, *, stall_limit: float = 120.0) -> dict[str, Any]:
    """Format, size, EWF metadata and stored hashes, partitions and file systems of an image,
    read in a worker process (killed after ``stall_limit`` seconds).

    Raises:
        UsageError: not an image sealtrail can open. CollectionError: the worker failed.
    """
    worker = Worker(str(path), _inspect_in_child, str(path))
    info: dict[str, Any] | None = None
    try:
        for tag, obj in worker.messages(stall_limit, None):
            if tag == TAG_MSG and obj["t"] == "info" and isinstance(obj.get("info"), dict):
                info = obj["info"]
    finally:
        worker.close()
    if info is None:
        raise WorkerFailed(str(path), "finished without describing the image")
    return info


# -- what the parent does ------------------------------------------------------------------


@dataclass
class _Received:
    layout: dict[str, Any] = field(default_factory=dict)
    partitions: dict[int, dict[str, Any]] = field(default_factory=dict)
    artifacts: list[dict[str, Any]] = field(default_factory=list)
    members: list[dict[str, Any]] = field(default_factory=list)
    written: list[PendingMember] = field(default_factory=list)  # digests, in order
    entries: list[dict[str, Any]] = field(default_factory=list)
    hosts: list[str] = field(default_factory=list)
    oses: list[str] = field(default_factory=list)


class _ImageReadError(Exception):
    """A read of the image failed (as opposed to a write into the bundle)."""

    def __init__(self, error: OSError) -> None:
        super().__init__(str(error))
        self.error = error


class _ImageRanges:
    """The parent's read-only access to a raw image file, for members the worker describes as
    byte ranges (`ImageSource.data_runs`): the parent reads them itself, straight into the
    bundle's staging buffer, so no file byte passes through the worker or is copied in Python.

    The parent still parses nothing: it reads the ranges it is given, checked to lie inside
    the image file, and hashes what it read. Opened at the first ranges message.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd = -1
        self._size = 0

    def _open(self) -> None:
        self._fd = open_read_only(self.path)
        self._size = os.lseek(self._fd, 0, os.SEEK_END)

    def copy_runs(self, runs: Any, sink: MemberSink) -> tuple[int, str]:  # noqa: ANN401
        """Read each (offset, length) range into ``sink``; returns (bytes copied, why they
        are fewer than asked, or "").

        Raises:
            ValueError: a malformed list, or a range outside the image file.
        """
        if self._fd < 0:
            self._open()
        ranges = [(int(start), int(length)) for start, length in runs]
        for start, length in ranges:
            if start < 0 or length <= 0 or start + length > self._size:
                raise ValueError(f"range {start}+{length} outside the image "
                                 f"({self._size} bytes)")
        wanted = sum(length for _, length in ranges)
        done = 0
        fd = self._fd
        for start, length in ranges:
            offset, end = start, start + length
            while offset < end:
                def read(view: memoryview, at: int = offset) -> int:
                    try:
                        return os.preadv(fd, [view], at)
                    except OSError as error:  # the image's, not the bundle's (ENOSPC)
                        raise _ImageReadError(error) from error
                try:
                    staged = sink.fill(read, min(CHUNK, end - offset))
                except _ImageReadError as wrapped:
                    exc = wrapped.error
                    name = errno.errorcode.get(exc.errno or 0, "EIO")
                    return done, (f"{name} after {done} of {wanted} bytes "
                                  f"({exc.strerror or exc}); the bytes read are kept")
                got = sum(len(part) for part in staged)
                if not got:
                    return done, (f"short read after {done} of {wanted} bytes (the image "
                                  "ended); the bytes read are kept")
                offset += got
                done += got
        return done, ""

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _receive(worker: Worker, writer: BundleWriter, got: _Received, stall_limit: float,
             time_limit: float | None, progress: ProgressFn | None,
             on_planned: Callable[[int, int], None] | None, image: _ImageRanges) -> None:
    sink: MemberSink | None = None
    files = nbytes = planned_items = planned_bytes = 0
    for tag, obj in worker.messages(stall_limit, time_limit):
        if tag == TAG_SLOT:
            if sink is None:
                raise WorkerFailed(worker.image, "sent file bytes outside a member")
            index, length = obj
            with worker.lent_slot(index, length) as chunk:
                sink.write(chunk)  # copied into the bundle's staging buffer, hashed there
            nbytes += length
            continue
        if tag == TAG_DATA:
            if sink is None:
                raise WorkerFailed(worker.image, "sent file bytes outside a member")
            sink.write(obj)
            nbytes += len(obj)
            continue
        kind = obj["t"]
        try:
            if kind == "layout":
                got.layout = {"image": dict(obj["image"]), "vs_type": obj.get("vs_type"),
                              "partitions": list(obj["partitions"])}
            elif kind == "partition":
                got.partitions[int(obj["index"])] = obj
                if obj.get("outcome") == "collected":
                    got.artifacts.extend(obj.get("artifacts") or [])
                    if obj.get("host"):
                        got.hosts.append(str(obj["host"]))
                    if obj.get("os"):
                        got.oses.append(str(obj["os"]))
                    planned_items += int(obj.get("planned_items") or 0)
                    planned_bytes += int(obj.get("planned_bytes") or 0)
                    if on_planned is not None:
                        on_planned(planned_items, planned_bytes)
            elif kind == "begin":
                if sink is not None:
                    raise ValueError("a member began before the previous one ended")
                sink = writer.open_member(_member_path(obj["relpath"]))
            elif kind == "ranged":  # a whole member as byte ranges of the image
                if sink is not None:
                    raise ValueError("a member began before the previous one ended")
                record = _record(obj, "member")
                ranged = writer.open_member(_member_path(obj["relpath"]))
                copied, short = image.copy_runs(obj["runs"], ranged)
                nbytes += copied
                if short:  # the parent's own read of the ranges came up short
                    record["outcome"], record["reason"] = "partial", short
                got.members.append(record)
                got.written.append(ranged.close_later())  # digest: see `_digests_in`
                files += 1
            elif kind == "end":
                if sink is None:
                    raise ValueError("a member ended that never began")
                written = sink.close_later()  # the digest is filled in by `_digests_in`
                sink = None
                got.members.append(_record(obj, "member"))
                got.written.append(written)
                files += 1
            elif kind == "entry":
                got.entries.append(_record(obj, "entry"))
                files += 1
            elif kind != "done":
                raise ValueError(f"unknown message {kind!r}")
        except (KeyError, TypeError, ValueError) as exc:
            worker.kill()
            raise WorkerFailed(worker.image, f"sent a malformed {kind!r} message ({exc})") \
                from exc
        if progress is not None and kind in ("end", "ranged", "entry"):
            progress(files, nbytes)
    if sink is not None:
        raise WorkerFailed(worker.image, "finished in the middle of a member")
    _digests_in(got)


def _record(message: dict[str, Any], what: str) -> dict[str, Any]:
    """The manifest record a message carries (a copy), which must have a source."""
    record = dict(message["record"])
    if not isinstance(record.get("source"), dict):
        raise ValueError(f"{what} record without a source")
    return record


def _member_path(text: object) -> bytes:
    relpath = unb64(text)
    if not relpath or b"\x00" in relpath:
        raise ValueError("bad member path")
    return relpath


def _digests_in(got: _Received) -> None:
    """Put each member's name, SHA-256 and size (computed by the writer) into its record."""
    for record, pending in zip(got.members, got.written, strict=True):
        written = pending.result()
        record.update(name=written.name, sha256=written.sha256, size=written.size)
    got.written.clear()


def run_image_collection(
    case: Case,
    key: SigningKey,
    job: ImageJob,
    *,
    requested: dict[str, Any],
    custody: dict[str, str] | None = None,
    progress: ProgressFn | None = None,
    on_planned: Callable[[int, int], None] | None = None,
    stall_limit: float = DEFAULT_STALL_LIMIT,
    time_limit: float | None = None,
) -> CollectionResult:
    """Collect from a disk image into a sealed bundle (see the module docstring).

    Args:
        case: the case.
        key: the examiner's signing key (stays in this process).
        job: what to collect.
        requested: the request as recorded (`session.requested_fields` plus image options).
        custody: location, authority, note for the ledger.
        progress: called with (items done, bytes copied).
        on_planned: called with (items planned, bytes planned) as partitions are planned.
        stall_limit: kill the worker after this many seconds without a message.
        time_limit: kill the worker after this many seconds in all (None: no limit).

    Raises:
        UsageError: the image or a partition cannot be collected as asked.
        CollectionError: the worker crashed or was killed, or the bundle could not be sealed;
            ``collection_failed`` is in the ledger and the ``.partial`` file is kept.
    """
    case.require_signer(case.ledger(), key)
    warm_up()  # the image worker's fork server starts while the ledger is written
    image_path = str(Path(job.image).resolve())
    started = now_utc()
    bundle_id = new_bundle_id(Path(job.image).name, started)
    source = {"kind": "image", "path": image_path}

    def fill(writer: BundleWriter) -> dict[str, Any]:
        got = _Received()
        image = _ImageRanges(image_path)
        try:
            with closing(Worker(image_path, _collect_in_child, job, shared_slots=True)) as worker:
                _receive(worker, writer, got, stall_limit, time_limit, progress, on_planned,
                         image)
        finally:
            image.close()
        return _manifest(case, key, bundle_id, image_path, got, requested, started, now_utc())

    run = run_sealed(
        case, key, bundle_id, custody=custody, fill=fill,
        started_details={"source": source, "requested": requested},
    )
    return result_of(run, bundle_id, started)


def _manifest(case: Case, key: SigningKey, bundle_id: str, image_path: str, got: _Received,
              requested: dict[str, Any], started: Any, finished: Any  # noqa: ANN401
              ) -> Manifest:
    hosts = list(dict.fromkeys(got.hosts))
    oses = list(dict.fromkeys(got.oses))
    image = dict(got.layout.get("image") or {})
    partitions = []
    for record in got.layout.get("partitions") or []:
        outcome = got.partitions.get(int(record.get("index", -1)))
        partitions.append({
            **representable_ints(record),  # a damaged partition table: offsets beyond 2**53
            "outcome": (outcome or {}).get("outcome", "not_collected"),
            "reason": (outcome or {}).get("reason", "" if record.get("fs_type") else
                                          "no file system"),
        })
    source = {
        "kind": "image", "path": image_path, "format": image.get("format"),
        "size": image.get("size"), "volume_system": got.layout.get("vs_type"),
        "partitions": partitions,
        **{k: image[k] for k in ("segments", "stored_hashes", "metadata") if k in image},
    }
    collection = CollectionContext.here(
        examiner=case.examiner, key_id=key.key_id, key_name=key.name,
        host=hosts[0] if hosts else None, os_name=oses[0] if oses else None, source=source,
        requested=requested, started=started, finished=finished,
    )
    if len(oses) > 1:
        collection.oses = oses
    return Manifest(bundle_id=bundle_id, case_id=case.case_id, collection=collection,
                    artifacts=list(got.artifacts), members=got.members, entries=got.entries)


def image_requested(artifacts: Sequence[str], paths: Sequence[str], os_name: str | None,
                    max_file_size: int | None, job: ImageJob) -> dict[str, Any]:
    """The ``requested`` record of an image collection (the folder fields plus image ones)."""
    return {
        "artifacts": list(artifacts), "paths": list(paths), "os": os_name,
        "max_file_size": max_file_size, "partition": job.partition,
        "include_deleted": job.include_deleted, "bodyfile": job.bodyfile,
    }
