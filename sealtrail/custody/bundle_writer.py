"""Writing a bundle: every member hashed while it is copied, the manifest signed at the seal.

Invariants:
- Until ``seal`` returns, the only file on disk is ``<id>.stb.partial``; it has no manifest and
  a name no reader accepts, so an interrupted collection cannot pass for a complete bundle.
- ``seal`` writes the signed manifest as the last member, closes the ZIP, fsyncs the file,
  renames it to ``<id>.stb`` and fsyncs the folder: a sealed bundle survives power loss.
- The SHA-256, CRC-32 and size of a member are of exactly the bytes written into the bundle:
  both digests are computed over the writer's own staged copy of each chunk (`MemberSink`).
- The ZIP layout is the one Python's ``zipfile`` writes (`zip_writer.StoredZip`).

Speed: a chunk is copied once, into the staging buffer; the CRC-32 (ISA-L) is computed there on
the calling thread while the SHA-256 of the previous chunks runs in a helper process
(`hash_process`: it maps the staging buffers and has its own interpreter lock, so on two cores
the two overlap fully) or, where no such process can be started, on a helper thread. ``write``
does not wait for the SHA-256: the staging buffer is held until it is done. A member whose
first chunk is small (under 16 KiB: a small file, a bodyfile written line by line) is hashed on
the calling thread, where a hand-off would cost more than it saves.

Disk path: the file is a `direct_file.StagedFile`: bytes are staged and written in large
aligned blocks with ``O_DIRECT``, so they do not pass through the page cache and leave no dirty
pages for the seal's fsync to wait for.

Write-back (only where ``O_DIRECT`` is refused, so blocks go through the page cache): every
``WRITEBACK_STEP`` bytes the writer asks the kernel to start writing the new range to disk
(Linux ``sync_file_range(SYNC_FILE_RANGE_WRITE)``, asynchronous), then waits for the range
before that one and drops it from the page cache (``POSIX_FADV_DONTNEED``). The disk works while
the copy goes on, so the seal's fsync has at most two steps left to write, and a large bundle
never piles up gigabytes of dirty pages. The seal's fsync is still what makes the bundle
durable; an I/O error seen while waiting is raised at once (the kernel reports it once).
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import os
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from sealtrail.crashpoint import crash_point
from sealtrail.custody.bundle_format import (
    BUNDLE_SUFFIX,
    MANIFEST_MEMBER,
    MANIFEST_TYPE,
    MAX_ENVELOPE_BYTES,
    PARTIAL_SUFFIX,
    encode_member_name,
    fold_name,
)
from sealtrail.custody.canonical import canonical_json
from sealtrail.custody.checksums import crc32
from sealtrail.custody.direct_file import StagedFile
from sealtrail.custody.durable import fsync_dir
from sealtrail.custody.envelope import sign_envelope_parts
from sealtrail.custody.hash_process import HashProcess, RangeTicket
from sealtrail.custody.keys import SigningKey
from sealtrail.custody.zip_writer import StoredZip, ZipEntry
from sealtrail.errors import CollectionError, ManifestTooLarge

_READ_ONLY_FILE = 0o100444 << 16  # ZIP external attributes: a regular file, r--r--r--
# A member whose first chunk is smaller is hashed on the calling thread: a hand-off to the
# helper (or hash thread) would cost more than it saves.
_THREADED_HASH_MIN = 16 * 1024
#: Whether to hash in a helper process (`hash_process`) where the platform allows it.
USE_HASH_PROCESS = True
#: Bytes written between two write-back requests (see the module docstring).
WRITEBACK_STEP = 128 << 20
_SFR_WAIT_BEFORE, _SFR_WRITE, _SFR_WAIT_AFTER = 1, 2, 4  # <linux/fs.h>
_UNSUPPORTED = (errno.ENOSYS, errno.EINVAL, errno.ESPIPE, errno.EOPNOTSUPP)


def _load_sync_file_range() -> Callable[[int, int, int, int], int] | None:
    """libc's ``sync_file_range`` (Python's os module has none), or None off Linux."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return None
    fn.argtypes = (ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint)
    fn.restype = ctypes.c_int
    return fn  # type: ignore[no-any-return]


_sync_file_range = _load_sync_file_range()


@dataclass(frozen=True, slots=True)
class WrittenMember:
    name: str
    sha256: str
    size: int


class PendingMember(Protocol):
    """A member ended whose digest may still be computed (a Future, or the helper's)."""

    def done(self) -> bool: ...

    def result(self) -> WrittenMember: ...


class MemberSink:
    """One member being written: ``write`` stores, checksums and hashes; ``close`` returns its
    digest.

    Each chunk is first copied into the bundle file's staging buffer (`StagedFile.append`); the
    CRC-32 and the SHA-256 are computed over that staged copy, which only this process and its
    hashing helper can see and only this process can change, so they are always of the bytes
    written. Where the SHA-256 runs is decided at the member's first chunk, for the whole
    member: a small first chunk (under 16 KiB) is hashed here, on the calling thread, and so is
    the rest of that member; otherwise the writer's helper process (`hash_process`) hashes it,
    or, where there is none, its hash thread. Updates are queued in write order and the staging
    buffer is held until they are done; `write` returns at once and the caller may reuse its
    buffer.
    """

    __slots__ = ("_behind", "_chosen", "_crc", "_entry", "_file", "_hash", "_member", "_pool",
                 "_process", "_writer", "name", "size")

    def __init__(self, name: str, entry: ZipEntry, writer: BundleWriter, member: int) -> None:
        self.name = name
        self._entry = entry
        self._writer = writer
        self._file = writer.file
        self._member = member  # this member's number for the helper process
        # Set at the first chunk: the helper process, else the hash thread, else neither
        # (hashed here); ``_chosen`` says the choice is made.
        self._chosen = False
        self._pool: ThreadPoolExecutor | None = None
        self._process: HashProcess | None = None
        self._hash = hashlib.sha256()  # unused in "process" mode: the helper has the state
        self._crc = 0
        self._behind: Future[None] | None = None  # the last hash-thread update still queued
        self.size = 0

    def write(self, chunk: memoryview | bytes | bytearray) -> None:
        """Copy ``chunk`` into the member; the caller may reuse its buffer on return."""
        view = memoryview(chunk).cast("B")
        step = self._file.max_append // 2
        for start in range(0, len(view), step):
            piece = view[start:start + step]
            self._staged(self._file.append(piece), len(piece))
        self.size += len(view)
        self._writer.wrote(len(view))

    def fill(self, readinto: Callable[[memoryview], int], limit: int) -> list[memoryview]:
        """Let ``readinto`` read up to ``limit`` bytes of the member straight into the
        bundle's staging buffer (`StagedFile.fill`); returns views of the bytes it read (empty
        at the end of the source). The views stay valid until the next call."""
        staged = self._file.fill(readinto, limit)
        nbytes = sum(len(part) for part in staged)
        if nbytes:
            self._staged(staged, nbytes)
            self.size += nbytes
            self._writer.wrote(nbytes)
        return staged

    def _staged(self, staged: list[memoryview], nbytes: int) -> None:
        """CRC-32 here; SHA-256 where the member's first chunk decided (see the class)."""
        for part in staged:
            self._crc = crc32(part, self._crc)
        if not self._chosen:
            self._choose(nbytes)
        if self._process is not None:
            seq = 0
            for offset, length in self._file.last_spans:
                seq = self._process.update(self._member, offset, length)
            self._file.hold(RangeTicket(self._process, seq))
        elif self._pool is not None and nbytes >= _THREADED_HASH_MIN:
            self._behind = self._pool.submit(update_digest, self._hash, staged)
            self._file.hold(self._behind)
        else:
            self._catch_up()
            update_digest(self._hash, staged)

    def _choose(self, nbytes: int) -> None:
        self._chosen = True
        if nbytes >= _THREADED_HASH_MIN:
            self._process = self._writer.hash_process()
            if self._process is None:
                self._pool = self._writer.hash_pool()

    def _catch_up(self) -> None:
        if self._behind is not None:
            behind, self._behind = self._behind, None
            behind.result()

    def close(self) -> WrittenMember:
        """End the member; its digest, once every queued update is done."""
        return self.close_later().result()

    def close_later(self) -> PendingMember:
        """End the member now (its ZIP header needs only the CRC-32 and size); the digest
        follows from the helper, so the caller can go on to the next member meanwhile."""
        self._writer.end_member(self._entry, self._crc, self.size)
        if self._process is not None:
            seq = self._process.request_digest(self._member)
            return _PendingDigest(self._process, self._member, seq, self.name, self.size)
        if self._behind is None or self._pool is None:
            return _Done(WrittenMember(self.name, self._hash.hexdigest(), self.size))
        self._behind = None
        return self._pool.submit(_written, self.name, self._hash, self.size)


class _Done:
    """A digest already computed (Future-shaped): a small member hashed on the calling
    thread. A ``Future`` with its lock and condition cost ~7% of a 200k-file collection."""

    __slots__ = ("_member",)

    def __init__(self, member: WrittenMember) -> None:
        self._member = member

    def done(self) -> bool:
        return True

    def result(self) -> WrittenMember:
        return self._member


def _written(name: str, digest: Any, size: int) -> WrittenMember:  # noqa: ANN401
    return WrittenMember(name, digest.hexdigest(), size)


class _PendingDigest:
    """A member's `WrittenMember` once the helper process has its digest (Future-shaped)."""

    __slots__ = ("_member", "_name", "_process", "_seq", "_size")

    def __init__(self, process: HashProcess, member: int, seq: int, name: str,
                 size: int) -> None:
        self._process, self._member, self._seq = process, member, seq
        self._name, self._size = name, size

    def done(self) -> bool:
        return self._process.done(self._seq)

    def result(self) -> WrittenMember:
        return WrittenMember(self._name, self._process.digest(self._member, self._seq),
                             self._size)


def update_digest(digest: Any, parts: Sequence[memoryview | bytes]) -> None:  # noqa: ANN401
    """Feed ``parts`` to a hashlib object, in order."""
    for part in parts:
        digest.update(part)


class BundleWriter:
    """Builds ``<bundles_dir>/<bundle_id>.stb``; see the module docstring for the invariants."""

    def __init__(self, bundles_dir: Path, bundle_id: str) -> None:
        self.bundle_id = bundle_id
        self.bundles_dir = bundles_dir
        self.partial_path = bundles_dir / f"{bundle_id}{PARTIAL_SUFFIX}"
        self.final_path = bundles_dir / f"{bundle_id}{BUNDLE_SUFFIX}"
        if self.final_path.exists():
            raise CollectionError(f"bundle {self.final_path} already exists")
        try:
            self.file = StagedFile(self.partial_path)
        except OSError as exc:
            raise CollectionError(f"cannot create {self.partial_path}: {exc.strerror}") from exc
        self._zip = StoredZip(self.file)
        self._folded: set[str] = set()
        self._sealed = False
        self._process: HashProcess | None = None
        self._process_failed = False
        self.hash_process()  # started now: it is up by the time the first large chunk comes
        self._pool: ThreadPoolExecutor | None = None  # only where no helper process starts
        self._members = 0
        self._unsynced = 0  # bytes written since the last write-back request
        self._wb_done = 0  # [0, _wb_done) written back and dropped from the page cache
        self._wb_asked = 0  # [_wb_done, _wb_asked) write-back requested, not waited for
        # O_DIRECT leaves no dirty pages behind: write-back requests only for the ordinary path
        self._writeback = _sync_file_range is not None and not self.file.direct

    def _unique_name(self, relpath: bytes) -> str:
        base = encode_member_name(relpath)
        name, n = base, 1
        while fold_name(name) in self._folded:
            n += 1
            name = f"{base}~{n}"
        self._folded.add(fold_name(name))
        return name

    def open_member(self, relpath: bytes) -> MemberSink:
        """Start a member for the source path ``relpath``; write to it, then close it."""
        name = self._unique_name(relpath)
        entry = self._zip.begin(name, _READ_ONLY_FILE, zip64=True)
        self._members += 1
        return MemberSink(name, entry, self, self._members)

    def hash_process(self) -> HashProcess | None:
        """The hashing helper process (started with the writer, so it is up by the first
        large chunk); None where it cannot run (no memfd, ``USE_HASH_PROCESS`` off, or it
        failed to start: then the hash thread does its work)."""
        if self._process is None and not self._process_failed:
            shared = self.file.shared_fd
            if USE_HASH_PROCESS and shared is not None:
                try:
                    self._process = HashProcess(shared, self.file.shared_size)
                except OSError:
                    self._process_failed = True  # e.g. no processes left
            else:
                self._process_failed = True
        return self._process

    def hash_pool(self) -> ThreadPoolExecutor:
        """The hash thread, started at the first call."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="sealtrail-hash")
        return self._pool

    def end_member(self, entry: ZipEntry, crc: int, size: int) -> None:
        """Called by `MemberSink.close`: the member's CRC-32 and size into its ZIP header."""
        self._zip.end(entry, crc, size)

    def wrote(self, nbytes: int) -> None:
        """Count bytes written into the bundle; past ``WRITEBACK_STEP``, start write-back."""
        self._unsynced += nbytes
        if self._unsynced >= WRITEBACK_STEP:
            self._unsynced = 0
            self.start_writeback()

    def start_writeback(self) -> None:
        """Start writing what is in the file so far to disk; wait for the previous request.

        Only an optimisation (the seal's fsync is what makes the bundle durable), except that
        an I/O error is raised here: once waited for, the kernel would not report it again.
        """
        if not self._writeback or _sync_file_range is None:
            return
        end = self.file.on_disk  # bytes handed to the kernel; the rest is still staged
        fd = self.file.fileno()
        if end <= self._wb_asked:
            return
        if not self._sync_range(fd, self._wb_asked, end, _SFR_WRITE):
            return
        if self._wb_asked > self._wb_done:
            wait = _SFR_WAIT_BEFORE | _SFR_WRITE | _SFR_WAIT_AFTER
            if not self._sync_range(fd, self._wb_done, self._wb_asked, wait):
                return
            os.posix_fadvise(fd, self._wb_done, self._wb_asked - self._wb_done,
                             os.POSIX_FADV_DONTNEED)
            self._wb_done = self._wb_asked
        self._wb_asked = end

    def _sync_range(self, fd: int, start: int, end: int, flags: int) -> bool:
        assert _sync_file_range is not None
        if _sync_file_range(fd, start, end - start, flags) == 0:
            return True
        err = ctypes.get_errno()
        if err in _UNSUPPORTED:
            self._writeback = False  # e.g. a file system without it: the seal's fsync does all
            return False
        raise OSError(err, f"writing {self.partial_path} to disk: {os.strerror(err)}")

    def add_bytes(self, name: str, data: bytes) -> WrittenMember:
        """Store a member given whole (volatile captures); ``name`` is already a member name."""
        if fold_name(name) in self._folded:
            raise CollectionError(f"member {name} is already in the bundle")
        self._folded.add(fold_name(name))
        self._members += 1
        sink = MemberSink(name, self._zip.begin(name, _READ_ONLY_FILE, zip64=True), self,
                          self._members)
        sink.write(data)
        return sink.close()

    def seal(self, manifest: dict[str, object], key: SigningKey) -> tuple[Path, bytes]:
        """Sign and write the manifest, make the bundle durable and give it its final name.

        Returns the final path and the manifest payload bytes (whose SHA-256 the ledger records).
        """
        payload = canonical_json(manifest)
        envelope = sign_envelope_parts(MANIFEST_TYPE, payload, key)  # no joined copy
        size = sum(len(part) for part in envelope)
        if size > MAX_ENVELOPE_BYTES:
            members = manifest.get("members")
            count = len(members) if isinstance(members, list) else "?"
            raise ManifestTooLarge(
                f"the signed manifest of {count} members is {size} bytes; a bundle's "
                f"manifest may have at most {MAX_ENVELOPE_BYTES} (docs/bundle-format.md "
                "section 3): collect the source in parts (one --path per top folder)",
                expected=MAX_ENVELOPE_BYTES, observed=size)
        crc = 0
        for part in envelope:
            crc = crc32(part, crc)
        self._zip.add(MANIFEST_MEMBER, envelope, _READ_ONLY_FILE, crc)
        del envelope
        crash_point("manifest_written")
        self._stop_hashing()
        self._zip.finish()
        self.file.finish()  # the staged tail written, then fsync
        self.file.close()
        crash_point("bundle_fsynced")
        os.rename(self.partial_path, self.final_path)
        crash_point("bundle_renamed")
        fsync_dir(self.bundles_dir)
        crash_point("bundle_dir_fsynced")
        self._sealed = True
        return self.final_path, payload

    def _stop_hashing(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
        if self._process is not None:
            self._process.close()

    def abandon(self) -> Path:
        """Close what was written without sealing; the ``.partial`` file is kept as a record."""
        self._stop_hashing()
        if not self._sealed:
            # the members ended so far get a central directory (none while one is open)
            closers = (self.file.close,) if self._zip.writing else (
                self._zip.finish, self.file.write_tail, self.file.close)
            for closer in closers:
                try:
                    closer()
                except (OSError, ValueError):
                    pass
        return self.partial_path
