"""SHA-256 of the bundle's staged bytes in a helper process: hashing never waits for the GIL.

Why a process: a hash thread shares the interpreter lock with the thread that copies,
checksums and keeps records. Each ``hashlib`` update has to take that lock back before it can
return, so Python work on the collecting thread holds the hashing back
(bench/bench_hash_helper.py measures it; bench/bench_images.py the effect on a collection). A
process has its own interpreter: its SHA-256 runs beside that work instead of against it.

What it sees: the staging buffers of the bundle file (`direct_file.StagedFile`) live in one
``memfd`` mapping that the helper maps read-only; the helper is told, in order, which ranges of
it belong to which member, and answers with how far it got and, at a member's end, its digest.
So the digest is of exactly the staged bytes that go to disk, as with the hash thread; the
writer keeps a buffer from being refilled until the helper has acknowledged every range in it.

The helper (`hash_helper`, a standard-library-only script) is started from
``sys.executable`` in isolated mode, parses nothing from evidence and holds no key; it exits
when its command pipe closes. If it dies, the next wait raises
`HashProcessFailed` (a `CollectionError`): a bundle is then not sealed, never sealed with a
digest that was not computed.

The protocol is in `hash_helper`.
"""

from __future__ import annotations

import errno
import os
import select
import subprocess
import sys
import threading
from pathlib import Path

from sealtrail.custody.hash_helper import COMMAND, REPLY
from sealtrail.errors import CollectionError

HELPER = Path(__file__).with_name("hash_helper.py")
_WAIT_STEP = 5.0  # seconds between checks that the helper is still alive while waiting


class HashProcessFailed(CollectionError):
    """The hashing helper process died or broke the protocol."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"SHA-256 helper process: {reason}")
        self.reason = reason


class HashProcess:
    """The parent's side: queue updates and digest requests, wait for acknowledgements.

    Used by one thread at a time (a lock makes concurrent use safe, not fast). Sequence numbers
    grow by one per command; ``acked`` is the highest one the helper reported done.
    """

    def __init__(self, memfd: int, size: int) -> None:
        """Start the helper. Raises OSError where it cannot be started (the writer then
        hashes on a thread)."""
        if not sys.executable:  # an embedded interpreter: no Python to start
            raise OSError(errno.ENOENT, "no Python interpreter to start the SHA-256 helper")
        cmd_read, self._cmd = os.pipe()
        self._reply, reply_write = os.pipe()
        try:
            self._proc = subprocess.Popen(
                # -I -S: the standard library only; nothing from the environment, the user's
                # site or the working folder (and no site-packages to scan at start)
                [sys.executable, "-I", "-S", str(HELPER),
                 str(cmd_read), str(reply_write), str(memfd), str(size)],
                pass_fds=(cmd_read, reply_write, memfd), stdin=subprocess.DEVNULL,
                stderr=subprocess.PIPE, close_fds=True)  # a crash's last line goes in the error
        except BaseException:
            for fd in (self._cmd, self._reply):
                os.close(fd)
            raise
        finally:
            os.close(cmd_read)
            os.close(reply_write)
        os.set_blocking(self._cmd, False)
        os.set_blocking(self._reply, False)
        self._lock = threading.RLock()
        self._seq = 0
        self.acked = 0
        self._digests: dict[int, bytes] = {}
        self._partial = b""  # an incomplete reply record
        self._out = bytearray()  # commands not yet written to the pipe
        self._closed = False

    # -- commands -------------------------------------------------------------------------

    def update(self, member: int, offset: int, length: int) -> int:
        """Queue ``length`` bytes at ``offset`` of the mapping for ``member``; returns the seq
        to wait for before those bytes may change."""
        return self._command(b"U", member, offset, length)

    def request_digest(self, member: int) -> int:
        """Queue the end of ``member``; its digest is available once ``seq`` is acked."""
        return self._command(b"D", member, 0, 0)

    def _command(self, kind: bytes, member: int, a: int, b: int) -> int:
        with self._lock:
            if self._closed:
                raise HashProcessFailed("already closed")
            self._seq += 1
            self._out += COMMAND.pack(kind, member, a, b, self._seq)
            self._flush(block=False)
            if not self._seq % 64:  # keep the reply pipe drained, so the helper never stalls
                self._read_replies()
            return self._seq

    # -- waiting --------------------------------------------------------------------------

    def done(self, seq: int) -> bool:
        with self._lock:
            if self._closed:  # the helper has exited: it reads nothing any more
                return True
            if self.acked < seq:
                self._pump(block=False)
            return self.acked >= seq

    def wait(self, seq: int) -> None:
        """Return once the helper has done every command up to ``seq`` (or has exited, after
        `close`: then it reads nothing any more, which is what a waiting writer needs)."""
        with self._lock:
            while self.acked < seq and not self._closed:
                self._pump(block=True)

    def digest(self, member: int, seq: int) -> str:
        """The hex SHA-256 of ``member`` whose digest request had ``seq``."""
        with self._lock:
            self.wait(seq)
            try:
                return self._digests.pop(member).hex()  # after close: only if it came before
            except KeyError:
                raise HashProcessFailed(f"no digest for member {member}") from None

    def _flush(self, block: bool) -> None:
        """Write queued commands; reading replies meanwhile, so neither side can stall."""
        while self._out:
            try:
                n = os.write(self._cmd, self._out)
            except BlockingIOError:
                n = 0
            except BrokenPipeError:
                raise HashProcessFailed(self._exit_reason()) from None
            del self._out[:n]
            if not self._out:
                return
            readable, writable, _ = select.select([self._reply], [self._cmd] if block else [],
                                                  [], _WAIT_STEP if block else 0)
            if readable:
                self._read_replies()
            elif not block:
                return  # the rest goes at the next command or wait
            elif not writable:
                self._check_alive()

    def _pump(self, block: bool) -> None:
        """Send what is queued and read the replies there are (waiting for some if ``block``)."""
        self._flush(block=block)
        if block:
            readable, _, _ = select.select([self._reply], [], [], _WAIT_STEP)
            if not readable:
                self._check_alive()
                return
        self._read_replies()

    def _read_replies(self) -> None:
        try:
            data = os.read(self._reply, 1 << 16)
        except BlockingIOError:
            return
        if not data:
            raise HashProcessFailed(self._exit_reason())
        data = self._partial + data
        whole = len(data) - len(data) % REPLY.size
        self._partial = data[whole:]
        for kind, member, seq, digest in REPLY.iter_unpack(data[:whole]):
            if kind == b"H":
                self._digests[member] = digest
            elif kind == b"A" and seq >= self.acked:
                self.acked = seq
            else:
                raise HashProcessFailed(f"unexpected reply {kind!r} (seq {seq})")

    def _check_alive(self) -> None:
        if self._proc.poll() is not None:
            raise HashProcessFailed(self._exit_reason())

    def _exit_reason(self) -> str:
        try:
            code = self._proc.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            return "stopped answering"
        said = ""
        if self._proc.stderr is not None:
            lines = self._proc.stderr.read().decode("utf-8", "replace").strip().splitlines()
            said = f": {lines[-1]}" if lines else ""
        return (f"exited with status {code}" if code >= 0 else f"killed by signal {-code}") + said

    def close(self) -> None:
        """Stop the helper (what it was doing is dropped) and release the pipes."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            os.close(self._cmd)  # EOF: the helper exits
            os.close(self._reply)
            try:
                self._proc.wait(timeout=5.0)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            if self._proc.stderr is not None:
                self._proc.stderr.close()


class RangeTicket:
    """Ranges queued up to ``seq``: done once the helper acknowledged them."""

    __slots__ = ("_process", "_seq")

    def __init__(self, process: HashProcess, seq: int) -> None:
        self._process = process
        self._seq = seq

    def done(self) -> bool:
        return self._process.done(self._seq)

    def result(self) -> None:
        self._process.wait(self._seq)
