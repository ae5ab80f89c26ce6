"""Copy what a collection plan names into a bundle, hashing each file while it is copied.

Invariants:
- Each source file is opened once (read-only, no symlink following, never a FIFO or device) and
  read once; the bytes written to the bundle are the bytes hashed.
- At most the size seen when the file was opened is read, so a file that keeps growing cannot
  stall a collection; any difference between the file's state before and after the read
  (size, mtime, ctime, inode) flags the member ``changed`` and records both states.
- No item aborts the collection: every planned path ends with an outcome in the manifest.
"""

from __future__ import annotations

import base64
import errno
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from sealtrail.collectors.bodyfile import (
    BODYFILE_ARTIFACT,
    bodyfile_member_path,
    write_bodyfile,
)
from sealtrail.collectors.plan import CollectionPlan, PlannedItem
from sealtrail.collectors.source import DirectorySource, FileInfo, SwappedFile
from sealtrail.custody.bundle_format import (
    ns_text,
    volatile_member_name,
)
from sealtrail.custody.bundle_writer import BundleWriter
from sealtrail.custody.canonical import MAX_SAFE_INT
from sealtrail.custody.manifest import CollectionContext, Manifest

CHUNK = 1 << 20
ProgressFn = Callable[[int, int], None]
#: Apparent size above which a file with holes (a sparse file) is not copied, unless
#: ``--max-file-size`` is given: it is then the limit for every file (docs/collection.md).
SPARSE_LIMIT = 1 << 30


def sparse_limit(max_file_size: int | None) -> int:
    """The limit for files with holes: ``--max-file-size`` when given, else `SPARSE_LIMIT`."""
    return SPARSE_LIMIT if max_file_size is None else max_file_size


def sparse_entry(item: PlannedItem, size: int, allocated: int, limit: int) -> dict[str, Any]:
    """The ``too_large`` entry of a file with holes over the limit: its apparent size is in
    ``source.size``, the bytes the file system holds for it in ``source.allocated_size``."""
    record = entry_record(item, "too_large", (
        f"sparse file: {size} bytes apparent size, {allocated} allocated (the rest is holes), "
        f"over the {limit}-byte limit for files with holes; not copied (--max-file-size "
        "raises the limit)"))
    record["source"]["allocated_size"] = allocated
    return record


def _allocated_if_sparse(fd: int, st: os.stat_result) -> int | None:
    """The bytes allocated to an open regular file (``st_blocks * 512``) when it has a hole
    (``SEEK_HOLE`` finds one before its end), else None. The file offset is put back at 0."""
    try:
        hole = os.lseek(fd, 0, os.SEEK_HOLE)
    except OSError:  # no SEEK_HOLE here: trust the block count
        hole = st.st_size if st.st_blocks * 512 >= st.st_size else 0
    finally:
        os.lseek(fd, 0, os.SEEK_SET)
    return st.st_blocks * 512 if hole < st.st_size else None


def path_fields(relpath: bytes) -> dict[str, str]:
    """The source path as shown in a manifest: UTF-8 text, plus base64 of the raw bytes when
    they are not valid UTF-8 (then ``path`` is only a readable rendering)."""
    raw = b"/" + relpath
    try:
        return {"path": raw.decode("utf-8")}
    except UnicodeDecodeError:
        return {
            "path": raw.decode("utf-8", "backslashreplace"),
            "path_b64": base64.b64encode(raw).decode(),
        }


_INT_FIELDS = ("uid", "gid", "nlink", "size")
_TIME_FIELDS = ("atime", "mtime", "ctime", "birthtime")
#: The times an RFC 3339 text can hold, in ns: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.9Z
_MIN_NS = -62_135_596_800 * 1_000_000_000
_MAX_NS = 253_402_300_800 * 1_000_000_000 - 1


def _int_ok(value: int) -> bool:
    return 0 <= value <= MAX_SAFE_INT


def _time_ok(ns: int | None) -> bool:
    return ns is None or _MIN_NS <= ns <= _MAX_NS


def time_or_none(ns: int | None) -> str | None:
    """`ns_text`, or None for a time no RFC 3339 text can hold (damaged metadata)."""
    return ns_text(ns) if _time_ok(ns) else None


def stat_fields(st: os.stat_result | FileInfo) -> dict[str, Any]:
    """Source metadata with full precision (times as RFC 3339 with nanoseconds).

    A value the manifest cannot hold (an integer beyond +-(2**53 - 1), a time outside the
    years 1-9999: damaged metadata, see `unrepresentable`) is written as null, and its raw
    value as decimal text under ``damaged`` (docs/bundle-format.md).
    """
    if isinstance(st, FileInfo):
        values = {
            "mode": st.mode, "uid": st.uid, "gid": st.gid, "inode": st.inode,
            "device": st.device, "nlink": st.nlink, "size": st.size,
            "atime": st.atime_ns, "mtime": st.mtime_ns, "ctime": st.ctime_ns,
            "birthtime": st.birthtime_ns,
        }
    else:
        birth = getattr(st, "st_birthtime_ns", None)
        values = {
            "mode": st.st_mode, "uid": st.st_uid, "gid": st.st_gid, "inode": st.st_ino,
            "device": st.st_dev, "nlink": st.st_nlink, "size": st.st_size,
            "atime": st.st_atime_ns, "mtime": st.st_mtime_ns, "ctime": st.st_ctime_ns,
            "birthtime": birth,
        }
    out: dict[str, Any] = {
        "mode": f"{values['mode']:o}",
        "inode": str(values["inode"]),  # may exceed 2**53 on some file systems
        "device": str(values["device"]),
    }
    damaged: dict[str, str] = {}
    for name in _INT_FIELDS:
        value = values[name]
        out[name] = value if _int_ok(value) else None
        if out[name] is None:
            damaged[name] = str(value)
    for name in _TIME_FIELDS:
        value = values[name]
        if value is None and name == "birthtime":
            continue
        out[name] = time_or_none(value)
        if out[name] is None:
            damaged[name] = str(value)
    if damaged:
        out["damaged"] = damaged
    return out


def unrepresentable(info: FileInfo) -> dict[str, str]:
    """The fields of ``info`` a manifest cannot hold, with their raw values as decimal text.

    No real file has a size, owner or link count beyond 2**53 - 1 or a time outside the years
    1-9999: such a value comes from a damaged metadata entry (a corrupt inode or MFT record),
    whose data pointers cannot be trusted either. Empty for sound metadata (the usual case,
    checked without formatting anything: this runs once per item).
    """
    ints = zip(_INT_FIELDS, (info.uid, info.gid, info.nlink, info.size), strict=True)
    times = zip(_TIME_FIELDS, (info.atime_ns, info.mtime_ns, info.ctime_ns, info.birthtime_ns),
                strict=True)
    damaged = {name: str(value) for name, value in ints if not _int_ok(value)}
    damaged.update((name, str(value)) for name, value in times if not _time_ok(value))
    damaged.update(fn_times_damaged(info))
    return damaged


def representable_ints(record: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``record`` (a flat record of the source: a partition) whose integers beyond
    +-(2**53 - 1) are null, their raw values as decimal text under ``damaged``."""
    out = dict(record)
    damaged = {key: str(value) for key, value in record.items()
               if type(value) is int and not -MAX_SAFE_INT <= value <= MAX_SAFE_INT}
    if damaged:
        out.update(dict.fromkeys(damaged), damaged=damaged)
    return out


def fn_times_damaged(info: FileInfo) -> dict[str, str]:
    """NTFS ``$FILE_NAME`` times no RFC 3339 text can hold, as ``fn_times.<name>``."""
    names = ("atime", "mtime", "ctime", "crtime")
    return {f"fn_times.{name}": str(value)
            for name, value in zip(names, info.fn_times or (), strict=False)
            if not _time_ok(value)}


def damage_checked(item: PlannedItem) -> PlannedItem:
    """``item``, or the same path with outcome ``damaged_metadata`` when its metadata holds a
    value the manifest cannot (`unrepresentable`): its bytes are then not copied, and the
    reason names each field and value. Every kind of collection calls this before copying."""
    if item.info is None:
        return item
    damaged = unrepresentable(item.info)
    if not damaged:
        return item
    values = ", ".join(f"{name} {value}" for name, value in damaged.items())
    was = f"; planned as {item.outcome}" if item.outcome else ""
    return replace(item, outcome="damaged_metadata", reason=(
        f"damaged metadata entry: {values} cannot be represented (integers up to 2**53 - 1, "
        f"times in the years 1-9999); content not copied{was}"))


def _snapshot(st: os.stat_result) -> dict[str, Any]:
    return {
        "size": st.st_size, "mtime": time_or_none(st.st_mtime_ns),
        "ctime": time_or_none(st.st_ctime_ns), "inode": str(st.st_ino),
    }


def _state(st: os.stat_result) -> tuple[int, int, int, int]:
    """What `_snapshot` records, as numbers: compared for every file, formatted only when the
    file changed."""
    return st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino


@dataclass
class CollectionTally:
    files_done: int = 0
    bytes_done: int = 0


def source_record(info: FileInfo) -> dict[str, Any]:
    """A manifest ``source`` object for a path the walk saw (docs/bundle-format.md)."""
    record: dict[str, Any] = {**path_fields(info.relpath), "kind": info.kind,
                              **stat_fields(info)}
    if info.link_target is not None:
        record["link_target"] = info.link_target.decode("utf-8", "backslashreplace")
        try:
            info.link_target.decode("utf-8")
        except UnicodeDecodeError:
            record["link_target_b64"] = base64.b64encode(info.link_target).decode()
    return record


def entry_record(item: PlannedItem, outcome: str, reason: str) -> dict[str, Any]:
    """A manifest ``entries`` record: an item with an outcome and no bytes."""
    return {
        "source": source_record(item.info) if item.info is not None
        else path_fields(item.relpath),
        "outcome": outcome,
        "reason": reason,
        "artifacts": list(item.artifacts),
    }


def copy_item(
    source: DirectorySource, writer: BundleWriter, item: PlannedItem, buffer: bytearray,
    limit: int = SPARSE_LIMIT,
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """Copy one regular file. Returns (member record, None) or (None, entry record).

    A file with holes whose size is over ``limit`` is not copied (`sparse_entry`).
    """
    assert item.info is not None
    try:
        handle = source.open_regular(item.relpath, item.info)
    except FileNotFoundError:
        return None, entry_record(item, "vanished", "gone between listing and reading")
    except SwappedFile:
        reason = "replaced by another file between listing and reading"
        return None, entry_record(item, "vanished", reason)
    except OSError as exc:
        name = errno.errorcode.get(exc.errno or 0, "EIO")
        return None, entry_record(item, "unreadable", f"{name}: {exc.strerror}")
    view = memoryview(buffer)
    with handle:
        before = os.fstat(handle.fileno())
        if before.st_size > limit:
            allocated = _allocated_if_sparse(handle.fileno(), before)
            if allocated is not None:
                return None, sparse_entry(item, before.st_size, allocated, limit)
        sink = writer.open_member(item.relpath)
        remaining = before.st_size
        read_error: OSError | None = None
        while remaining > 0:
            try:
                n = handle.readinto(view[: min(len(buffer), remaining)])
            except OSError as exc:  # only the source's errors: a write error ends the run
                read_error = exc
                break
            if not n:
                break
            sink.write(view[:n])
            remaining -= n
        written = sink.close()
        after = os.fstat(handle.fileno())
    record: dict[str, Any] = {
        "name": written.name,
        "sha256": written.sha256,
        "size": written.size,
        "artifacts": list(item.artifacts),
        "source": {**path_fields(item.relpath), "kind": "file", **stat_fields(before)},
        "outcome": "collected",
        "reason": "",
    }
    if read_error is not None:
        name = errno.errorcode.get(read_error.errno or 0, "EIO")
        record["outcome"] = "partial"
        record["reason"] = (
            f"{name} after {written.size} of {before.st_size} bytes; the bytes read are kept"
        )
        return record, None
    changed = (
        _state(before) != _state(after)
        or written.size != before.st_size
        or before.st_size != item.info.size
        or before.st_mtime_ns != item.info.mtime_ns
    )
    if changed:
        record["outcome"] = "changed"
        record["reason"] = (
            f"changed while being read: {written.size} bytes kept; size {item.info.size} when "
            f"listed, {before.st_size} when opened, {after.st_size} after reading"
        )
        record["changed"] = {
            "listed": {"size": item.info.size, "mtime": time_or_none(item.info.mtime_ns)},
            "before": _snapshot(before),
            "after": _snapshot(after),
        }
    return record, None


def write_bodyfile_member(source: DirectorySource, writer: BundleWriter) -> dict[str, Any]:
    """Walk the whole source (lstat only) and store the result as a TSK 3.x bodyfile member.

    Written before any evidence so it takes its name (``data/%24sealtrail/bodyfile.body``);
    its record says ``source.kind == "generated"``.
    """
    sink = writer.open_member(bodyfile_member_path(None))
    try:
        stats = write_bodyfile(source, sink.write)
    finally:
        written = sink.close()
    reason = ""
    if stats.unreadable:
        reason = "folders not listed: " + "; ".join(stats.unreadable[:5])
    return {
        "name": written.name,
        "sha256": written.sha256,
        "size": written.size,
        "artifacts": [BODYFILE_ARTIFACT],
        "source": {"kind": "generated", "generator": "bodyfile", "format": "tsk-3-bodyfile",
                   "entries": stats.entries},
        "outcome": "collected",
        "reason": reason,
    }


def write_plan(
    source: DirectorySource,
    writer: BundleWriter,
    plan: CollectionPlan,
    progress: ProgressFn | None = None,
    *,
    max_file_size: int | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Copy every regular file of the plan and record an outcome for everything else
    (``max_file_size`` as requested: it sets the limit for files with holes)."""
    members: list[dict[str, Any]] = []
    entries: list[dict[str, Any]] = []
    buffer = bytearray(CHUNK)
    tally = CollectionTally()
    for item in map(damage_checked, plan.items):
        if item.outcome is None:
            member, entry = copy_item(source, writer, item, buffer,
                                      sparse_limit(max_file_size))
            if member is not None:
                members.append(member)
                tally.bytes_done += member["size"]
            if entry is not None:
                entries.append(entry)
        else:
            entries.append(entry_record(item, item.outcome, item.reason))
        tally.files_done += 1
        if progress is not None:
            progress(tally.files_done, tally.bytes_done)
    return members, entries


@dataclass(frozen=True, slots=True)
class VolatileCapture:
    """State read from a running system before any file (RFC 3227 order of volatility)."""

    name: str            # e.g. "processes"; stored as volatile/<name>.json
    data: bytes          # the capture, as JSON
    captured_at: str     # UTC, when the capture was taken
    description: str     # what was read, e.g. "/proc/[pid]/{stat,cmdline,status,exe}"


def write_volatile(
    writer: BundleWriter, captures: Sequence[VolatileCapture]
) -> list[dict[str, Any]]:
    """Store captures first, in the order given (most volatile first)."""
    members = []
    for capture in captures:
        written = writer.add_bytes(volatile_member_name(f"{capture.name}.json"), capture.data)
        members.append({
            "name": written.name, "sha256": written.sha256, "size": written.size,
            "artifacts": ["volatile"], "outcome": "collected", "reason": "",
            "source": {"kind": "volatile", "path": capture.description,
                       "captured": capture.captured_at},
        })
    return members


def artifact_records(plan: CollectionPlan) -> list[dict[str, Any]]:
    """The manifest's ``artifacts`` records of a plan (docs/bundle-format.md section 4)."""
    return [
        {"name": a.name, "outcome": a.outcome, "reason": a.reason,
         "patterns": list(a.patterns), "matched": a.matched}
        for a in plan.artifacts
    ]


def build_manifest(
    *,
    bundle_id: str,
    case_id: str,
    examiner: str,
    key_id: str,
    key_name: str,
    source: DirectorySource,
    source_label: str,
    plan: CollectionPlan,
    requested: dict[str, Any],
    started: datetime,
    finished: datetime,
    members: list[dict[str, Any]],
    entries: list[dict[str, Any]],
) -> Manifest:
    """The manifest of a folder or live-host collection (docs/bundle-format.md section 4)."""
    return Manifest(
        bundle_id=bundle_id, case_id=case_id,
        collection=CollectionContext.here(
            examiner=examiner, key_id=key_id, key_name=key_name, host=source.hostname(),
            os_name=plan.os_name, source={"kind": "directory", "path": source_label},
            requested=requested, started=started, finished=finished,
        ),
        artifacts=artifact_records(plan), members=members, entries=entries,
    )


def now_utc() -> datetime:
    return datetime.now(UTC)


def monotonic() -> float:
    return time.monotonic()
