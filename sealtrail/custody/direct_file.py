"""The bundle file: appended through staging buffers and written to disk with ``O_DIRECT``.

Why: a bundle is written once and read again much later, so passing its bytes through the page
cache only costs a copy per byte, kernel write-back work and, for a large image, gigabytes of
dirty pages. ``O_DIRECT`` hands a staging buffer to the disk as it is; and the staged bytes are
the writer's private copy, so the CRC-32 and SHA-256 are computed over exactly the bytes that
go to disk (bench/bench_acquire.py and bench/bench_images.py measure the difference;
docs/benchmarks.md has the figures).

Invariants:
- The file's content is every `append` in order, with `patch` applied to bytes already
  appended (the ZIP writer patches a member's local header once its size and CRC are known).
  Blocks are handed to disk in order and each waits for the one before, so only the block in
  flight can still be overtaken by a patch.
- There are ``BUFFERS`` staging buffers of ``STAGE`` bytes, filled in turn. A full one is
  handed to disk at a ``STAGE``-aligned offset, exactly once: queued on one writer thread
  (``O_DIRECT``), which writes blocks in the order they were queued, while the next buffers
  fill; several blocks can wait in that queue, so a slow moment of the disk does not stop the
  copy. ``on_disk`` counts the bytes handed to disk; from ``on_disk`` to ``end`` they are
  staged.
- A buffer is filled again only after (a) the write of the block it held returned and (b)
  the reader given to `hold` while it held appended bytes is done (readers are given in
  order: a later one is done after an earlier), both waited for at the first byte appended
  into it again: readers of the views `append` returned (the hashing helper) can never see
  them change.
- A patch of a range still staged changes the staging buffer. A patch of a range already
  handed to disk goes through a second, ordinary descriptor (``pwrite``), queued on the writer
  thread behind every block queued before it, so it can never be overtaken by the block that
  holds its bytes. The tail (the last, partial block) is written the ordinary way by
  `finish`, after every queued write and patch returned, and then fsynced: only after
  `finish` returns is the content durable.
- Where ``O_DIRECT`` is refused (tmpfs, some FUSE file systems; ``EINVAL`` at open or at the
  first block) the blocks go through the ordinary descriptor instead: a first block refused
  is written again that way by the writer thread before anything queued after it. The
  content is the same, only the path to the disk differs (``direct`` says which).
- An I/O error is raised by the call that met it or, for a write or patch on the writer
  thread, by the next call that finds it done or waits for it (an append, a patch, `finish`);
  nothing is retried.
"""

from __future__ import annotations

import errno
import mmap
import os
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Protocol

__all__ = ["STAGE", "Reader", "StagedFile"]

#: Staging buffer size, and the unit (and alignment) of every write to disk. A multiple of
#: every logical block size O_DIRECT can require.
STAGE = 8 << 20
#: Staging buffers: one being filled, the others being hashed or waiting for the disk.
BUFFERS = 4
#: Whether to try O_DIRECT at all (tests switch it off to exercise the ordinary path).
USE_DIRECT_IO = hasattr(os, "O_DIRECT")
#: Whether to put the staging buffers in a memfd another process can map (`shared_fd`).
USE_SHARED_STAGE = True


class Reader(Protocol):
    """Someone still reading staged bytes: a Future, or a hashing helper's ticket."""

    def done(self) -> bool: ...

    def result(self) -> Any: ...  # noqa: ANN401 - waits; the value is not used


class StagedFile:
    """A new file (created with ``O_EXCL``), written as the module docstring says."""

    def __init__(self, path: os.PathLike[str] | str, mode: int = 0o644) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
        self._plain = os.open(path, flags, mode)  # OSError if it exists: the caller's error
        self._direct = -1
        if USE_DIRECT_IO:
            try:
                self._direct = os.open(path, os.O_WRONLY | os.O_CLOEXEC | os.O_DIRECT)
            except OSError as exc:
                if exc.errno != errno.EINVAL:
                    os.close(self._plain)
                    raise
        self._stage_size = stage = STAGE
        self._count = count = BUFFERS
        # All buffers in one page-aligned mapping (as O_DIRECT needs), backed by a memfd where
        # there is one, so a hashing helper process can map the same bytes (`shared_fd`).
        self.shared_fd = _memfd(count * stage)
        self._mapping = (mmap.mmap(self.shared_fd, count * stage) if self.shared_fd is not None
                         else mmap.mmap(-1, count * stage))
        if hasattr(mmap, "MADV_DONTFORK"):  # a process forked later (a parser worker) gets no
            self._mapping.madvise(mmap.MADV_DONTFORK)  # view of the bytes being hashed
        whole = memoryview(self._mapping)
        self._views = [whole[i * stage:(i + 1) * stage] for i in range(count)]
        self._whole = whole
        self.last_spans: list[tuple[int, int]] = []  # (offset in the mapping, length)
        self._current = 0  # the buffer being filled
        self._fill = 0  # bytes staged in it
        self._held: list[Reader | None] = [None] * count  # readers to wait for, per buffer
        self._blocks: list[Future[None] | None] = [None] * count  # its block's write, per buffer
        self._queued: list[Future[None]] = []  # writes and patches not yet seen to succeed
        self._touched: tuple[int, ...] = ()  # buffers the last append wrote into
        self._writer: ThreadPoolExecutor | None = None
        self.on_disk = 0  # bytes handed to disk (a multiple of the stage size until finish)
        self._finished = False
        self.closed = False

    @property
    def direct(self) -> bool:
        """Whether full blocks currently go to disk with O_DIRECT."""
        return self._direct >= 0

    @property
    def end(self) -> int:
        """The file's length so far (what has been appended)."""
        return self.on_disk + self._fill

    @property
    def shared_size(self) -> int:
        """The size of the staging mapping behind `shared_fd` (offsets in `last_spans`)."""
        return self._count * self._stage_size

    @property
    def max_append(self) -> int:
        """The most bytes one `append` takes (so that its views stay valid until held)."""
        return self._stage_size

    def fileno(self) -> int:
        return self._plain

    def append(self, data: bytes | bytearray | memoryview) -> list[memoryview]:
        """Copy ``data`` to the end of the file; returns views of the staged copy (one, or two
        when it crosses a buffer boundary), valid until the buffer is filled again: pass a
        future to `hold` to keep them valid until it is done."""
        if self._finished:
            raise ValueError("append to a finished StagedFile")
        view = memoryview(data).cast("B")
        if len(view) > self._stage_size:
            raise ValueError(f"append of {len(view)} bytes: at most {self._stage_size} at once")
        staged: list[memoryview] = []
        spans: list[tuple[int, int]] = []
        touched = [self._current]
        done = 0
        while done < len(view):
            if self._fill == 0:
                self._reuse(self._current)
            take = min(len(view) - done, self._stage_size - self._fill)
            target = self._views[self._current][self._fill:self._fill + take]
            target[:] = view[done:done + take]
            staged.append(target)
            spans.append((self._current * self._stage_size + self._fill, take))
            self._fill += take
            done += take
            if self._fill == self._stage_size:
                self._write_block()
                if done < len(view):
                    touched.append(self._current)
        self._touched = tuple(touched)
        self.last_spans = spans
        return staged

    def fill(self, readinto: Callable[[memoryview], int], limit: int) -> list[memoryview]:
        """Let ``readinto`` write up to ``limit`` bytes straight into the staging buffer at the
        end of the file (no copy: e.g. ``os.readv`` from a source); the bytes it reports are
        appended. Returns views of them, as `append` does (at most one: a fill stops at the
        end of a buffer, so it may take fewer than ``limit`` bytes even when more are there).

        Raises:
            ValueError: ``readinto`` reported a count outside 0..the room it was given.
        """
        if self._finished:
            raise ValueError("append to a finished StagedFile")
        if self._fill == 0:
            self._reuse(self._current)
        start = self._fill
        room = min(limit, self._stage_size - start)
        target = self._views[self._current][start:start + room]
        n = readinto(target)
        if not 0 <= n <= room:
            raise ValueError(f"fill reported {n} bytes for a room of {room}")
        self._touched = (self._current,)
        self.last_spans = [(self._current * self._stage_size + start, n)] if n else []
        self._fill += n
        if self._fill == self._stage_size:
            self._write_block()
        return [target[:n]] if n else []

    def hold(self, reader: Reader) -> None:
        """Keep the buffers the last `append` wrote into from being filled again until
        ``reader`` is done (futures given in order: a later one is done after an earlier)."""
        for index in self._touched:
            self._held[index] = reader

    def patch(self, offset: int, data: bytes) -> None:
        """Overwrite ``data`` at ``offset``, all of it inside what was appended."""
        end = self.end
        if not 0 <= offset <= offset + len(data) <= end:
            raise ValueError(f"patch of {offset}..{offset + len(data)} outside 0..{end}")
        view = memoryview(data)
        on_disk = min(len(view), max(0, self.on_disk - offset))
        if on_disk:
            head = memoryview(bytes(view[:on_disk]))
            if self._writer is not None:  # behind the blocks queued before it (see above)
                self._check_queued()
                self._queued.append(self._writer.submit(self._pwrite_plain, head, offset))
            else:  # every block was written on this thread: none can be in flight
                _pwrite_all(self._plain, head, offset)
        if on_disk < len(view):
            start = offset + on_disk - self.on_disk
            self._views[self._current][start:start + len(view) - on_disk] = view[on_disk:]

    def _write_block(self) -> None:
        """Hand the full buffer to the disk and move on to the next one."""
        block = self._views[self._current]
        if self._direct >= 0:
            if self._writer is None:
                self._writer = ThreadPoolExecutor(1, thread_name_prefix="sealtrail-write")
            self._check_queued()
            future = self._writer.submit(self._put_block, block, self.on_disk)
            self._blocks[self._current] = future
            self._queued.append(future)
        else:
            _pwrite_all(self._plain, block, self.on_disk)
        self.on_disk += self._stage_size
        self._current = (self._current + 1) % self._count
        self._fill = 0

    def _put_block(self, block: memoryview, offset: int) -> None:
        """On the writer thread: one block with O_DIRECT, or the ordinary way once refused."""
        fd = self._direct
        if fd >= 0:
            try:
                _pwrite_all(fd, block, offset)
                return
            except OSError as exc:
                if exc.errno != errno.EINVAL or offset:
                    raise
                # accepted at open, refused at the first write: the ordinary path from now on
                self._direct = -1
                os.close(fd)
        _pwrite_all(self._plain, block, offset)

    def _pwrite_plain(self, data: memoryview, offset: int) -> None:
        _pwrite_all(self._plain, data, offset)

    def _reuse(self, index: int) -> None:
        """Before buffer ``index`` is filled again: its block is on disk and nobody still
        reads what it held."""
        block, self._blocks[index] = self._blocks[index], None
        if block is not None:
            block.result()
        reader, self._held[index] = self._held[index], None
        if reader is not None:
            reader.result()

    def _check_queued(self) -> None:
        """Raise the error of a queued write or patch that has failed; forget the done ones."""
        while self._queued and self._queued[0].done():
            self._queued.pop(0).result()

    def write_tail(self) -> None:
        """Write the staged tail through the ordinary descriptor (no fsync); no more appends."""
        if not self._finished:
            self._finished = True
            queued, self._queued = self._queued, []
            for future in queued:
                future.result()
            self._blocks = [None] * self._count
            if self._fill:
                _pwrite_all(self._plain, self._views[self._current][:self._fill], self.on_disk)

    def finish(self) -> None:
        """Write the tail and fsync: when this returns, the whole content is durable."""
        self.write_tail()
        os.fsync(self._plain)

    def close(self) -> None:
        """Release descriptors and buffers; `finish` (or `write_tail`) first keeps the tail."""
        if self.closed:
            return
        self.closed = True
        if self._writer is not None:
            self._writer.shutdown()  # queued writes finish (their errors are not raised here)
        self._queued = []
        self._blocks = [None] * self._count
        self._held = [None] * self._count
        for view in (*self._views, self._whole):
            view.release()
        try:
            self._mapping.close()
        except BufferError:
            pass  # a view is still referenced somewhere: unmapped when it is collected
        for fd in (self._direct, self._plain):
            if fd >= 0:
                os.close(fd)
        self._direct = self._plain = -1
        if self.shared_fd is not None:
            os.close(self.shared_fd)
            self.shared_fd = None


def _memfd(size: int) -> int | None:
    """An anonymous memory file of ``size`` bytes (Linux), or None where there is none."""
    if not USE_SHARED_STAGE or not hasattr(os, "memfd_create"):
        return None
    try:
        fd = os.memfd_create("sealtrail-stage", os.MFD_CLOEXEC)
    except OSError:
        return None
    try:
        os.ftruncate(fd, size)
    except OSError:
        os.close(fd)
        return None
    return fd


def _pwrite_all(fd: int, view: memoryview, offset: int) -> None:
    """Write all of ``view`` at ``offset``; a short write continues where it stopped."""
    done = 0
    while done < len(view):
        n = os.pwrite(fd, view[done:], offset + done)
        if n <= 0:
            raise OSError(errno.EIO, f"write returned {n}")
        done += n
