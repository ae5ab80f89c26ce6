"""Whole-image acquisition: a disk image or block device streamed into one bundle member.

Order (the same custody steps as a collection, through `session.run_sealed`):
1. The source is opened read-only (``O_RDONLY``; raw files and devices directly, EWF, QCOW and
   split raw through `collectors.images.open_image`) and its size fixed; nothing is written to
   it, ever.
2. ``collection_started`` is appended (source kind ``acquisition``, path, format, size).
3. The media is read once, in ``CHUNK``-sized pieces, and each piece is written into the
   member ``data/<image file name>`` (``.raw`` appended when the file is a container such as
   E01, whose member holds the media, not the container). A raw file or device is read
   straight into the bundle's staging buffer; other formats are read through their handle one
   piece ahead on a helper thread. SHA-256 is computed by the bundle writer on its own thread
   and MD5 / SHA-1 (when asked, or when the image stores them) on further threads: hashlib
   releases the GIL, so reading, hashing and writing overlap and memory stays at a few
   chunks whatever the image size.
4. The manifest records the member with its hashes and the source's ``stat``; for EWF, the
   hashes the acquiring tool stored and whether they match what was read
   (``stored_hashes_match``). A mismatch is evidence, not a failure: the bundle is sealed and
   the mismatch is in the signed manifest and in the ``bundle_sealed`` entry.
5. Seal and ``bundle_sealed``; any error before that (a read error, a short image, Ctrl-C)
   leaves the ``.partial`` file and a ``collection_failed`` entry.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sealtrail.acquisition.collection import ProgressFn, now_utc, stat_fields
from sealtrail.acquisition.session import new_bundle_id, run_sealed
from sealtrail.collectors.images import ImageHandle, detect_format, open_image, open_read_only
from sealtrail.custody.bundle_format import ns_text
from sealtrail.custody.bundle_writer import BundleWriter, MemberSink, update_digest
from sealtrail.custody.case import Case
from sealtrail.custody.keys import SigningKey
from sealtrail.custody.manifest import CollectionContext, Manifest
from sealtrail.errors import CollectionError, UsageError

__all__ = ["CHUNK", "AcquisitionResult", "acquire_image", "member_name"]

#: Bytes read, hashed and written at a time. 4 MiB: big enough that thread hand-offs and
#: syscalls are noise, small enough that three chunks in flight cost nothing.
CHUNK = 4 << 20
#: Formats read by our own loop (one fd, ``readv`` into reused buffers); others via a handle.
_DIRECT = ("raw", "blockdev")
_EXTRA_HASHES = ("md5", "sha1")


@dataclass(frozen=True, slots=True)
class AcquisitionResult:
    bundle_id: str
    bundle_path: str
    manifest_sha256: str
    member: str
    source: str
    format: str
    size: int
    hashes: dict[str, str]
    stored_hashes: dict[str, str]
    stored_hashes_match: bool | None
    outcome: str
    started: datetime
    finished: datetime
    ledger_index: int

    @property
    def seconds(self) -> float:
        return (self.finished - self.started).total_seconds()


def member_name(path: Path, fmt: str) -> bytes:
    """Member path for an image: its file name; ``.raw`` appended for container formats."""
    name = path.name or "device"
    if fmt not in ("raw", "blockdev"):
        name += ".raw"
    return os.fsencode(name)


def _read_into(fd: int, view: memoryview) -> int:
    """One read into ``view`` (a seam for tests that simulate a failing disk)."""
    return os.readv(fd, [view])


@dataclass
class _Media:
    """What is read: a raw fd or an image handle, with its size and description."""

    path: Path
    format: str
    size: int
    fd: int | None = None
    handle: ImageHandle | None = None
    stored_hashes: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)
    segments: list[str] = field(default_factory=list)

    def stat(self) -> os.stat_result:
        return os.fstat(self.fd) if self.fd is not None else os.stat(self.path)

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        if self.handle is not None:
            self.handle.close()
            self.handle = None


def _open_media(path: Path) -> _Media:
    fmt = detect_format(path)  # UsageError / ImageError name the problem
    if fmt in _DIRECT:
        try:
            fd = open_read_only(path)
        except OSError as exc:
            raise UsageError(f"cannot open {path} read-only: {exc.strerror}") from exc
        try:
            size = os.lseek(fd, 0, os.SEEK_END)  # block devices too: no ioctl needed
            os.lseek(fd, 0, os.SEEK_SET)
            if fmt == "raw":
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
        except OSError as exc:
            os.close(fd)
            raise CollectionError(f"cannot size {path}: {exc.strerror}") from exc
        return _Media(path, fmt, size, fd=fd, segments=[str(path)])
    handle = open_image(path)
    return _Media(path, fmt, handle.size, handle=handle, stored_hashes=dict(handle.stored_hashes),
                  metadata=dict(handle.metadata), segments=list(handle.segments))


def _handle_chunks(media: _Media, handle: ImageHandle,
                   reader: ThreadPoolExecutor) -> Iterator[bytes]:
    """The media of an image handle in order, each chunk read on ``reader`` while the caller
    uses the previous. Stops at ``media.size``; a source that ends early raises
    `CollectionError`."""
    size = media.size
    offset = 0
    pending = reader.submit(handle.read, 0, min(CHUNK, size)) if size else None
    while pending is not None:
        chunk = pending.result()
        if not chunk:
            raise _ended_early(media, offset)
        offset += len(chunk)
        pending = (reader.submit(handle.read, offset, min(CHUNK, size - offset))
                   if offset < size else None)
        yield chunk


def _ended_early(media: _Media, offset: int) -> CollectionError:
    return CollectionError(f"{media.path}: image ended after {offset:,} of {media.size:,} bytes")


def _media_chunks(media: _Media, sink: MemberSink) -> Iterator[list[memoryview | bytes]]:
    """Copy the media into ``sink``, yielding what each step copied (valid until the next).

    A raw file or device is read straight into the bundle's staging buffer (`MemberSink.fill`:
    no copy in Python; the SHA-256 helper hashes the staged bytes beside it); other formats are
    read through their handle on a helper thread, one chunk ahead (`_handle_chunks`).
    Stops at ``media.size``; a source that ends early raises `CollectionError`.
    """
    if media.handle is not None:
        with ThreadPoolExecutor(1, thread_name_prefix="sealtrail-read") as reader:
            for chunk in _handle_chunks(media, media.handle, reader):
                sink.write(chunk)
                yield [chunk]
        return
    assert media.fd is not None
    fd, offset = media.fd, 0
    while offset < media.size:
        staged = sink.fill(lambda view: _read_into(fd, view), min(CHUNK, media.size - offset))
        if not staged:
            raise _ended_early(media, offset)
        offset += sum(len(part) for part in staged)
        yield staged


def _snapshot(st: os.stat_result) -> dict[str, Any]:
    return {"size": st.st_size, "mtime": ns_text(st.st_mtime_ns),
            "ctime": ns_text(st.st_ctime_ns), "inode": str(st.st_ino)}


def _source_kind(st: os.stat_result) -> str:
    return "blockdev" if stat.S_ISBLK(st.st_mode) else "file"


def _copy(media: _Media, writer: BundleWriter, extras: list[str],
          progress: ProgressFn | None) -> dict[str, Any]:
    """Stream the media into one member; returns its manifest record."""
    hashers = {name: hashlib.new(name) for name in extras}
    before = media.stat()
    sink = writer.open_member(member_name(media.path, media.format))
    done = 0
    try:
        with ThreadPoolExecutor(max(1, len(hashers)),
                                thread_name_prefix="sealtrail-hash-extra") as pool:
            for chunk in _media_chunks(media, sink):
                pending = [pool.submit(update_digest, h, chunk) for h in hashers.values()]
                for future in pending:
                    future.result()  # before the chunk's buffer is reused
                done += sum(len(part) for part in chunk)
                if progress is not None:
                    progress(0, done)
    except BaseException:
        try:
            sink.close()  # the bytes read stay in the .partial file, with a valid header
        except (OSError, ValueError):
            pass
        raise
    written = sink.close()
    after = media.stat()
    if progress is not None:
        progress(1, done)
    record: dict[str, Any] = {
        "name": written.name,
        "sha256": written.sha256,
        "size": written.size,
        **{name: h.hexdigest() for name, h in hashers.items()},
        "artifacts": [],
        "source": {
            "path": str(media.path),
            "kind": _source_kind(before),
            "format": media.format,
            **stat_fields(before),
        },
        "outcome": "collected",
        "reason": "",
    }
    if media.format in ("raw", "ewf", "qcow") and _snapshot(before) != _snapshot(after):
        record["outcome"] = "changed"
        record["reason"] = "the image file changed while it was read"
        record["changed"] = {"before": _snapshot(before), "after": _snapshot(after)}
    return record


def _stored_match(stored: dict[str, str], member: dict[str, Any]) -> bool | None:
    compared = [member[name] == value for name, value in stored.items() if name in member]
    return all(compared) if compared else None


def _source_fields(media: _Media) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": "acquisition", "path": str(media.path),
                           "format": media.format, "size": media.size}
    if len(media.segments) > 1:
        out["segments"] = [os.path.basename(s) for s in media.segments]
    if media.metadata:
        out["metadata"] = dict(media.metadata)
    return out


def acquire_image(
    case: Case,
    key: SigningKey,
    source: Path,
    *,
    md5: bool = False,
    sha1: bool = False,
    custody: dict[str, str] | None = None,
    progress: ProgressFn | None = None,
) -> AcquisitionResult:
    """Acquire the whole of ``source`` into a new sealed bundle of ``case``.

    Args:
        source: a raw image, a block device, or an image ``open_image`` reads (E01, qcow2,
            split raw ``.001``).
        md5, sha1: also compute these (EWF's stored hashes are always checked, so for an
            image that stores them they are computed whether asked or not).
        custody: ``location`` / ``authority`` / ``note`` for the ledger entries.
        progress: called as ``progress(0, bytes_done)`` while reading, ``(1, size)`` at the end.

    Raises:
        UsageError: the source is missing, a folder, or of a format that cannot be read.
        CollectionError: the acquisition failed (read error, short image); the ledger has a
            ``collection_failed`` entry and the ``.partial`` file is kept.
    """
    case.require_signer(case.ledger(), key)
    source = Path(os.path.abspath(source))
    media = _open_media(source)
    try:
        extras = [n for n in _EXTRA_HASHES
                  if (n == "md5" and md5) or (n == "sha1" and sha1) or n in media.stored_hashes]
        requested = {"md5": md5, "sha1": sha1}
        started = now_utc()
        bundle_id = new_bundle_id(source.name, started)
        source_fields = _source_fields(media)
        member: dict[str, Any] = {}
        finished: list[datetime] = []

        def fill(writer: BundleWriter) -> dict[str, Any]:
            member.update(_copy(media, writer, extras, progress))
            finished.append(now_utc())
            fields = dict(source_fields)
            if media.stored_hashes:
                fields["stored_hashes"] = dict(media.stored_hashes)
                fields["stored_hashes_match"] = _stored_match(media.stored_hashes, member)
            return _manifest(case, key, bundle_id, fields, requested, started, finished[0],
                             member)

        run = run_sealed(
            case, key, bundle_id,
            started_details={"source": source_fields, "host": None, "requested": requested,
                             "planned_files": 1, "planned_items": 1},
            fill=fill, custody=custody,
        )
    finally:
        media.close()
    src = run.manifest.collection.source
    return AcquisitionResult(
        bundle_id=bundle_id, bundle_path=str(run.path), manifest_sha256=run.manifest_sha256,
        member=member["name"], source=str(source), format=media.format, size=member["size"],
        hashes={n: member[n] for n in ("sha256", *_EXTRA_HASHES) if n in member},
        stored_hashes=dict(src.get("stored_hashes", {})),
        stored_hashes_match=src.get("stored_hashes_match"), outcome=member["outcome"],
        started=started, finished=finished[0], ledger_index=run.entry.index,
    )


def _manifest(case: Case, key: SigningKey, bundle_id: str, source: dict[str, Any],
              requested: dict[str, Any], started: datetime, finished: datetime,
              member: dict[str, Any]) -> dict[str, Any]:
    """The manifest payload: the collection layout of docs/bundle-format.md with one member,
    ``collection.source.kind == "acquisition"``, and no artifacts or entries."""
    return Manifest(
        bundle_id=bundle_id, case_id=case.case_id,
        collection=CollectionContext.here(
            examiner=case.examiner, key_id=key.key_id, key_name=key.name, host=None,
            os_name=None, source=source, requested=requested, started=started,
            finished=finished,
        ),
        members=[member],
    )

