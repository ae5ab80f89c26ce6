"""The image worker process and its channel to the collecting process.

TSK, libewf and libqcow parse hostile bytes in C: a crafted image can crash the process, hang
it, or (at worst) corrupt its memory. `Worker` runs such work in another process; the parent
(the collecting process, which holds the signing key and the bundle) only reads messages:

- Start: from the fork server (`sealtrail.worker_start`), never as a fork of the parent, so
  the worker holds no copy of the parent's memory and its key.
- Framing: that of `multiprocessing.Connection.send_bytes` (a signed 4-byte big-endian length,
  then the message), at most 16 MiB a message. The first byte says what follows: ``M`` a JSON
  object with a ``"t"`` type (never pickle: a worker whose memory was corrupted must not be able
  to run code in the parent), ``D`` file bytes inline (small generated members), ``S`` a
  shared-memory slot holding file bytes (slot index, length).
- File bytes: `SharedSlots`, eight 1 MiB slots of one memfd (an anonymous memory file; its
  descriptor is passed to the worker as it starts) mapped by both processes. A slot belongs to
  the worker until it names it, then to the parent until the parent gives it back on a second
  pipe. The parent copies a slot before hashing its copy, so the worker can never change bytes
  being hashed.
- Limits: the worker is killed when it reports nothing for ``stall_limit`` seconds or runs past
  ``time_limit``; a crash, a kill or a malformed message raises `WorkerFailed` naming the image.
  An ``error`` message from the worker becomes a `UsageError` or a `CollectionError`.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import faulthandler
import math
import mmap
import os
import select
import signal
import tempfile
import time
from collections.abc import Callable, Iterator
from multiprocessing.reduction import DupFd
from typing import Any

from sealtrail.acquisition.collection import CHUNK
from sealtrail.custody.canonical import NotCanonicalError, json_text, parse_json
from sealtrail.errors import CollectionError, SealtrailError, UsageError
from sealtrail.worker_start import worker_context

__all__ = [
    "DEFAULT_STALL_LIMIT",
    "TAG_DATA",
    "TAG_MSG",
    "TAG_SLOT",
    "Channel",
    "SharedSlots",
    "Worker",
    "WorkerFailed",
    "b64",
    "unb64",
]

#: Seconds the worker may go without reporting anything before it is killed.
DEFAULT_STALL_LIMIT = 300.0
_MAX_MESSAGE = 16 << 20
TAG_MSG = b"M"
TAG_DATA = b"D"  # file bytes inside the message (small generated members: the bodyfile)
TAG_SLOT = b"S"  # file bytes in a shared-memory slot: slot index (1 byte), length (4 bytes)
#: Shared-memory slots: enough that the worker reads ahead while the parent copies and
#: the parent gives them back in batches of half.
_SLOTS = 8


class WorkerFailed(CollectionError):
    """The image worker crashed, hung, or broke the protocol.

    Attributes:
        image: the image path.
        reason: what happened (a signal, a time limit, a bad message).
    """

    def __init__(self, image: str, reason: str) -> None:
        self.image = image
        self.reason = reason
        super().__init__(f"{image}: image worker {reason}")

    def with_context(self, context: str) -> WorkerFailed:
        return WorkerFailed(self.image, f"{self.reason}; {context}")


# -- the channel between worker and parent ------------------------------------------------


class SharedSlots:
    """Shared memory for file bytes, in ``_SLOTS`` slots of ``CHUNK`` bytes, and the pipe on
    which the parent gives slots back to the worker.

    Created by the parent; pickling it (as the worker starts) passes the descriptors of the
    memory file and of the free pipe's read end, and the worker maps the same pages
    (`_attach_slots`). A slot belongs to the worker until it names it in a slot message, then
    to the parent until the parent writes its index back on the free pipe. The parent copies a
    slot before giving it back and never hashes or writes the shared pages themselves.
    """

    def __init__(self) -> None:
        self._fd = _memory_file(_SLOTS * CHUNK)
        self.memory = mmap.mmap(self._fd, _SLOTS * CHUNK)
        self.view = memoryview(self.memory)
        self.free_read, self.free_write = os.pipe()
        self._free = list(range(_SLOTS))  # the worker's own list of slots it may fill

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        """What the worker receives: its two descriptors (`multiprocessing` passes them)."""
        if self._fd < 0:
            raise ValueError("shared slots already handed to a worker")
        return _attach_slots, (DupFd(self._fd), DupFd(self.free_read))

    def started(self) -> None:
        """The worker has its descriptors: close the parent's copies of them (its end of the
        free pipe, so the worker's read sees EOF when the parent goes; the memory file, which
        stays mapped)."""
        for fd in (self._fd, self.free_read):
            os.close(fd)
        self._fd = self.free_read = -1

    def slot(self, index: int) -> memoryview:
        return self.view[index * CHUNK:(index + 1) * CHUNK]

    # -- the worker's side

    def take(self) -> int:
        """A free slot; waits for the parent to give one back (EOF: the parent is gone)."""
        if not self._free:
            returned = os.read(self.free_read, _SLOTS)
            if not returned:
                raise OSError(errno.EPIPE, "the collecting process went away")
            self._free.extend(returned)
        return self._free.pop()

    def keep(self, index: int) -> None:
        """Put back a slot taken but not sent."""
        self._free.append(index)

    # -- the parent's side

    def give_back(self, indexes: bytes) -> None:
        try:
            os.write(self.free_write, indexes)
        except BrokenPipeError:
            pass  # the worker is gone; its end of the main pipe says how

    def close(self) -> None:
        for fd in (self._fd, self.free_read, self.free_write):
            if fd >= 0:
                os.close(fd)
        self._fd = self.free_read = self.free_write = -1
        self.view.release()
        self.memory.close()


def _memory_file(size: int) -> int:
    """A descriptor of ``size`` bytes of memory another process can map: a memfd (Linux), else
    an unlinked temporary file."""
    try:
        fd = os.memfd_create("sealtrail-image-slots", os.MFD_CLOEXEC)
    except (AttributeError, OSError):
        with tempfile.TemporaryFile() as handle:
            fd = os.dup(handle.fileno())
    try:
        os.ftruncate(fd, size)
    except OSError:
        os.close(fd)
        raise
    return fd


def _attach_slots(memory: Any, free_read: Any) -> SharedSlots:  # noqa: ANN401 - DupFd
    """The worker's `SharedSlots`: map the parent's memory file, keep the free pipe's read end
    (the worker never has the write end)."""
    slots = SharedSlots.__new__(SharedSlots)
    fd = memory.detach()
    try:
        slots.memory = mmap.mmap(fd, _SLOTS * CHUNK)
    finally:
        os.close(fd)
    slots.view = memoryview(slots.memory)
    slots._fd, slots.free_read, slots.free_write = -1, free_read.detach(), -1
    slots._free = list(range(_SLOTS))
    return slots


class Channel:
    """The worker's end of the pipe (and of the shared slots, when the job moves file bytes)."""

    def __init__(self, conn: Any, slots: SharedSlots | None = None) -> None:  # noqa: ANN401
        self._conn = conn
        self.slots = slots

    def msg(self, obj: dict[str, Any]) -> None:
        self._conn.send_bytes(TAG_MSG + json_text(obj).encode())

    def data(self, chunk: bytes | memoryview) -> None:
        self._conn.send_bytes(TAG_DATA + bytes(chunk))

    def slot_filled(self, index: int, nbytes: int) -> None:
        """Tell the parent that slot ``index`` holds ``nbytes`` of the current member."""
        self._conn.send_bytes(TAG_SLOT + bytes((index,)) + nbytes.to_bytes(4, "big"))


def _widen_pipe(conn: Any) -> None:  # noqa: ANN401 - multiprocessing Connection
    """Give the pipe a 1 MiB buffer (Linux; the default is 64 KiB), so a 1 MiB chunk crosses
    in one or two reads instead of sixteen, with as many fewer wake-ups of either process."""
    try:
        import fcntl

        fcntl.fcntl(conn.fileno(), fcntl.F_SETPIPE_SZ, CHUNK)
    except (ImportError, AttributeError, OSError):
        pass  # another OS, or over the user's pipe-buffer quota: the default still works


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def unb64(text: object) -> bytes:
    if not isinstance(text, str):
        raise ValueError("expected base64 text")
    return base64.b64decode(text, validate=True)


def _signal_name(code: int | None) -> str:
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"died with signal {signal.Signals(-code).name}"
        except ValueError:
            return f"died with signal {-code}"
    return f"exited with status {code}"


class Worker:
    """The parent's handle on one worker process."""

    def __init__(self, image: str, entry: Callable[[Channel, Any], None], job: Any,  # noqa: ANN401
                 *, shared_slots: bool = False) -> None:
        ctx = worker_context()
        self.image = image
        self.slots = SharedSlots() if shared_slots else None
        self._lent: set[int] = set()  # slots the worker named and the parent has not given back
        self._reader, writer = ctx.Pipe(duplex=False)
        _widen_pipe(writer)
        self._pipe = open(self._reader.fileno(), "rb", buffering=0, closefd=False)  # noqa: SIM115
        os.set_blocking(self._reader.fileno(), False)  # read what is there; poll only when empty
        self._buffer = bytearray(2 * CHUNK)  # [_rx_start, _rx_end): received, not yet used
        self._rx_start = self._rx_end = 0
        self._to_give = bytearray()  # copied slots not yet given back (sent in batches)
        self._poller = select.poll()  # one poll object, not a new selector per read
        self._poller.register(self._reader.fileno(), select.POLLIN)
        self._process = ctx.Process(
            target=_worker_main, args=(writer, entry, job, self.slots),
            name="sealtrail-image", daemon=True,
        )
        self._process.start()
        writer.close()
        if self.slots is not None:
            self.slots.started()

    def messages(self, stall_limit: float, time_limit: float | None
                 ) -> Iterator[tuple[bytes, Any]]:
        """Yield (tag, JSON object or bytes) until the worker's ``done`` message.

        File bytes are yielded as a memoryview of a buffer this method reuses (tag ``D``),
        or as (slot index, length) (tag ``S``): copy the slot through `lent_slot` before asking
        for the next message.

        Raises:
            WorkerFailed: the worker died, timed out or sent a malformed message.
        """
        start = time.monotonic()
        while True:
            size = int.from_bytes(self._read_exact(4, start, stall_limit, time_limit),
                                  "big", signed=True)
            if size < 0 or size > _MAX_MESSAGE:
                self.kill()
                raise WorkerFailed(self.image, "sent a malformed message (bad message length)")
            raw = self._read_exact(size, start, stall_limit, time_limit)
            tag = bytes(raw[:1])
            if tag == TAG_DATA:
                yield tag, raw[1:]  # no copy of the file bytes
                continue
            if tag == TAG_SLOT:
                yield tag, self._slot_message(raw)
                continue
            body = bytes(raw[1:])
            if tag != TAG_MSG:
                self.kill()
                raise WorkerFailed(self.image, "sent a message of unknown kind")
            try:
                obj = parse_json(body)
            except NotCanonicalError as exc:
                self.kill()
                raise WorkerFailed(self.image, "sent a message that is not JSON") from exc
            if not isinstance(obj, dict) or not isinstance(obj.get("t"), str):
                self.kill()
                raise WorkerFailed(self.image, "sent a message without a type")
            if obj["t"] == "error":
                self._process.join(5)
                text = str(obj.get("message") or "unknown error")
                if obj.get("kind") == "usage":
                    raise UsageError(text)
                raise CollectionError(text)
            yield tag, obj
            if obj["t"] == "done":
                self._process.join(5)
                return

    def _slot_message(self, raw: memoryview) -> tuple[int, int]:
        index, nbytes = raw[1] if len(raw) == 6 else -1, int.from_bytes(raw[2:6], "big")
        if (self.slots is None or not 0 <= index < _SLOTS or index in self._lent
                or not 0 < nbytes <= CHUNK):
            self.kill()
            raise WorkerFailed(self.image, "sent a malformed message (bad shared-memory slot)")
        self._lent.add(index)
        return index, nbytes

    @contextlib.contextmanager
    def lent_slot(self, index: int, nbytes: int) -> Iterator[memoryview]:
        """The ``nbytes`` in slot ``index``, to be copied (not hashed) inside the block; then
        the slot goes back to the worker with the next batch, at the latest before the parent
        waits for the pipe (so the worker is never left without a slot while the parent waits
        for it)."""
        assert self.slots is not None
        view = self.slots.slot(index)[:nbytes]
        try:
            yield view
        finally:
            view.release()
            self._to_give.append(index)
            if len(self._to_give) >= _SLOTS // 2:  # in batches: fewer wake-ups of the worker
                self._give_back()

    def _wait(self, start: float, stall_limit: float, time_limit: float | None) -> None:
        """Return once the pipe has something to read (data or end of file), else kill the
        worker and raise."""
        wait = stall_limit
        if time_limit is not None:
            left = start + time_limit - time.monotonic()
            if left <= 0:
                self.kill()
                raise WorkerFailed(self.image, f"ran past the time limit of {time_limit:g} s "
                                               "and was killed")
            wait = min(wait, left)
        if not self._poller.poll(max(0, math.ceil(wait * 1000))):
            self.kill()
            if time_limit is not None and time.monotonic() - start >= time_limit:
                raise WorkerFailed(self.image, f"ran past the time limit of "
                                               f"{time_limit:g} s and was killed")
            raise WorkerFailed(self.image, f"reported nothing for {stall_limit:g} s and was "
                                           "killed (a hang on this image?)")

    def _read_exact(self, size: int, start: float, stall_limit: float,
                    time_limit: float | None) -> memoryview:
        """The next ``size`` bytes of the pipe, as a view of the receive buffer that stays
        valid until the next call (the framing is that of `multiprocessing.Connection`'s
        ``send_bytes``, which the worker uses: a signed 4-byte big-endian length, then the
        message). Each read takes whatever the pipe holds, often many messages at once; the
        process waits (poll, with the stall and time limits) only when the pipe is empty."""
        buffer = self._buffer
        if self._rx_end - self._rx_start < size:
            held = self._rx_end - self._rx_start
            if size > len(buffer):
                self._buffer = buffer = buffer[self._rx_start:self._rx_end] + bytearray(size)
            elif self._rx_start:
                buffer[:held] = buffer[self._rx_start:self._rx_end]
            self._rx_start, self._rx_end = 0, held
            view = memoryview(buffer)
            while self._rx_end < size:
                try:
                    n = self._pipe.readinto(view[self._rx_end:])
                except OSError as exc:
                    self.kill()
                    raise WorkerFailed(self.image, f"sent a malformed message ({exc})") from exc
                if n is None:  # empty for now: give back the slots copied, then wait
                    self._give_back()
                    self._wait(start, stall_limit, time_limit)
                    continue
                if not n:
                    self._process.join(5)
                    raise WorkerFailed(
                        self.image, f"{_signal_name(self._process.exitcode)} before finishing "
                                    "(a crash while parsing the image?)")
                self._rx_end += n
        first = self._rx_start
        self._rx_start += size
        return memoryview(buffer)[first:first + size]

    def _give_back(self) -> None:
        if self._to_give and self.slots is not None:
            self._lent.difference_update(self._to_give)
            self.slots.give_back(bytes(self._to_give))
            self._to_give.clear()

    def kill(self) -> None:
        if self._process.is_alive():
            self._process.kill()
        self._process.join(5)

    def close(self) -> None:
        self.kill()
        self._pipe.close()
        self._reader.close()
        if self.slots is not None:
            self.slots.close()
            self.slots = None


def _worker_main(conn: Any, entry: Callable[[Channel, Any], None], job: Any,  # noqa: ANN401
                 slots: SharedSlots | None) -> None:
    """The worker process: run one entry point, report a failure as one error message."""
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # no core dump of evidence bytes
    except (ImportError, OSError, ValueError):
        pass
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides; it kills us on Ctrl-C
    faulthandler.disable()  # a crash is reported by the parent in one line, not a C stack dump
    channel = Channel(conn, slots)
    try:
        entry(channel, job)
    except UsageError as exc:
        _try_send(channel, {"t": "error", "kind": "usage", "message": str(exc)})
    except SealtrailError as exc:
        _try_send(channel, {"t": "error", "kind": "collection", "message": str(exc)})
    except BaseException as exc:  # noqa: BLE001 - the parent must hear about anything
        _try_send(channel, {"t": "error", "kind": "internal",
                            "message": f"internal error in the image worker: "
                                       f"{type(exc).__name__}: {exc}"})
    finally:
        conn.close()


def _try_send(channel: Channel, obj: dict[str, Any]) -> None:
    try:
        channel.msg(obj)
    except OSError:
        pass
