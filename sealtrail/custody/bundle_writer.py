"""Writing a bundle: every member hashed while it is copied, the manifest signed at the seal.

Invariants:
- Until ``seal`` returns, the only file on disk is ``<id>.stb.partial``; it has no manifest and
  a name no reader accepts, so an interrupted collection cannot pass for a complete bundle.
- ``seal`` writes the signed manifest as the last member, closes the ZIP, fsyncs the file,
  renames it to ``<id>.stb`` and fsyncs the folder: a sealed bundle survives power loss.
- The SHA-256 and size of a member are of exactly the bytes written into the bundle.

Speed: a large chunk is hashed (SHA-256) on a helper thread while the calling thread has
zipfile compute its CRC-32 and write the same chunk; both release the GIL on large buffers, so
on two cores the two passes overlap. ``write`` returns only when both are done, so the caller
may reuse its buffer at once and the hash still covers exactly the bytes written.

Write-back: every ``WRITEBACK_STEP`` bytes the writer asks the kernel to start writing the new
range to disk (Linux ``sync_file_range(SYNC_FILE_RANGE_WRITE)``, asynchronous), then waits for
the range before that one and drops it from the page cache (``POSIX_FADV_DONTNEED``). The disk
works while the copy goes on, so the seal's fsync has at most two steps left to write, and a
large bundle never piles up gigabytes of dirty pages. The seal's fsync is still what makes the
bundle durable; an I/O error seen while waiting is raised at once (the kernel reports it once).
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import os
import sys
import zipfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from sealtrail.custody.bundle_format import (
    BUNDLE_SUFFIX,
    MANIFEST_MEMBER,
    MANIFEST_TYPE,
    PARTIAL_SUFFIX,
    encode_member_name,
    fold_name,
)
from sealtrail.custody.canonical import canonical_json
from sealtrail.custody.durable import fsync_dir
from sealtrail.custody.envelope import sign_envelope
from sealtrail.custody.keys import SigningKey
from sealtrail.errors import CollectionError

_FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # real times live in the manifest, not in ZIP headers
# Below this a thread hand-off costs more than the overlap saves; hash on the calling thread.
_THREADED_HASH_MIN = 256 * 1024
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


class MemberSink:
    """One member being written: ``write`` hashes and stores, ``close`` returns its digest."""

    __slots__ = ("_hash", "_out", "_pool", "_writer", "name", "size")

    def __init__(
        self, name: str, out: zipfile.ZipExtFile, pool: ThreadPoolExecutor | None = None,
        writer: BundleWriter | None = None,
    ) -> None:
        self.name = name
        self._out = out
        self._pool = pool
        self._writer = writer
        self._hash = hashlib.sha256()
        self.size = 0

    def write(self, chunk: memoryview | bytes) -> None:
        if self._pool is not None and len(chunk) >= _THREADED_HASH_MIN:
            hashed = self._pool.submit(self._hash.update, chunk)
            try:
                self._out.write(chunk)  # CRC-32 + write, overlapping the SHA-256
            finally:
                hashed.result()  # never return (or raise) while the chunk is still being read
        else:
            self._hash.update(chunk)
            self._out.write(chunk)
        self.size += len(chunk)
        if self._writer is not None:
            self._writer.wrote(len(chunk))

    def close(self) -> WrittenMember:
        self._out.close()
        return WrittenMember(self.name, self._hash.hexdigest(), self.size)


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
            fd = os.open(self.partial_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except OSError as exc:
            raise CollectionError(f"cannot create {self.partial_path}: {exc.strerror}") from exc
        self._file = os.fdopen(fd, "wb", buffering=1 << 20)
        self._zip = zipfile.ZipFile(self._file, "w", compression=zipfile.ZIP_STORED)
        self._folded: set[str] = set()
        self._sealed = False
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="sealtrail-hash")
        self._unsynced = 0  # bytes written since the last write-back request
        self._wb_done = 0  # [0, _wb_done) written back and dropped from the page cache
        self._wb_asked = 0  # [_wb_done, _wb_asked) write-back requested, not waited for
        self._writeback = _sync_file_range is not None

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
        info = zipfile.ZipInfo(name, date_time=_FIXED_ZIP_TIME)
        info.compress_type = zipfile.ZIP_STORED
        info.external_attr = 0o100444 << 16
        return MemberSink(name, self._zip.open(info, "w", force_zip64=True), self._pool, self)

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
        self._file.flush()
        end = self._file.tell()
        fd = self._file.fileno()
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
        info = zipfile.ZipInfo(name, date_time=_FIXED_ZIP_TIME)
        info.compress_type = zipfile.ZIP_STORED
        info.external_attr = 0o100444 << 16
        sink = MemberSink(name, self._zip.open(info, "w", force_zip64=True), writer=self)
        sink.write(data)
        return sink.close()

    def seal(self, manifest: dict[str, object], key: SigningKey) -> tuple[Path, bytes]:
        """Sign and write the manifest, make the bundle durable and give it its final name.

        Returns the final path and the manifest payload bytes (whose SHA-256 the ledger records).
        """
        payload = canonical_json(manifest)
        envelope = sign_envelope(MANIFEST_TYPE, payload, key)
        info = zipfile.ZipInfo(MANIFEST_MEMBER, date_time=_FIXED_ZIP_TIME)
        info.external_attr = 0o100444 << 16
        self._zip.writestr(info, envelope, compress_type=zipfile.ZIP_STORED)
        self._pool.shutdown()
        self._zip.close()
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        os.rename(self.partial_path, self.final_path)
        fsync_dir(self.bundles_dir)
        self._sealed = True
        return self.final_path, payload

    def abandon(self) -> Path:
        """Close what was written without sealing; the ``.partial`` file is kept as a record."""
        self._pool.shutdown()
        if not self._sealed:
            for closer in (self._zip.close, self._file.close):
                try:
                    closer()
                except (OSError, ValueError, zipfile.BadZipFile):
                    pass
        return self.partial_path
