"""The SHA-256 helper process's side (see `hash_process`): standard library only.

Run as a script in isolated mode (``python -I -S hash_helper.py CMD_FD REPLY_FD MEMFD SIZE``),
so it imports nothing from sealtrail's environment. It maps the staging memory read-only,
hashes the ranges it is told, in order, per member, and acknowledges; it exits at EOF on its
command pipe, and on a malformed command with a one-line message (status 1), never by giving
a digest of something else.

Protocol (fixed-size little-endian records):
    command  ``<cQQQQ``: kind, member, a, b, seq; kind ``U`` = update (a = offset in the
             mapping, b = length), ``D`` = digest of the member (a, b unused).
    reply    ``<cQQ32s``: kind, member, seq, digest; ``A`` = every command up to seq is done,
             ``H`` = the digest of member (sent before the ``A`` that covers its command).
"""

from __future__ import annotations

import hashlib
import mmap
import os
import signal
import struct
import sys
from typing import Any

COMMAND = struct.Struct("<cQQQQ")
REPLY = struct.Struct("<cQQ32s")


def serve(cmd_fd: int, reply_fd: int, memfd: int, size: int) -> None:
    """The helper's loop: read commands, hash, acknowledge; exit at EOF."""
    # Ctrl-C reaches the whole process group: the collecting process handles it and closes
    # the pipe, which ends this loop; the helper itself must not die with a traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    mapping = mmap.mmap(memfd, size, prot=mmap.PROT_READ)
    view = memoryview(mapping)
    hashes: dict[int, Any] = {}
    pending = b""
    while True:
        data = os.read(cmd_fd, 1 << 16)
        if not data:
            return
        data = pending + data
        whole = len(data) - len(data) % COMMAND.size
        pending = data[whole:]
        replies = bytearray()
        last = 0
        for kind, member, a, b, seq in COMMAND.iter_unpack(data[:whole]):
            if kind == b"U":
                digest = hashes.get(member)
                if digest is None:
                    digest = hashes[member] = hashlib.sha256()
                if not 0 <= a <= a + b <= size:  # the parent's bug: die, never a wrong digest
                    sys.exit(f"range {a}+{b} outside the staging mapping ({size} bytes)")
                digest.update(view[a:a + b])
            elif kind == b"D":
                digest = hashes.pop(member, None) or hashlib.sha256()
                replies += REPLY.pack(b"H", member, seq, digest.digest())
            else:
                sys.exit(f"unknown command {kind!r}")
            last = seq
            # acknowledge as we go when much is queued, so the parent can refill buffers early
            if kind == b"U" and b >= 1 << 20:
                replies += REPLY.pack(b"A", 0, seq, bytes(32))
                _write_all(reply_fd, replies)
                replies = bytearray()
        if last:
            replies += REPLY.pack(b"A", 0, last, bytes(32))
        if replies:
            _write_all(reply_fd, replies)


def _write_all(fd: int, data: bytes | bytearray) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


if __name__ == "__main__":
    serve(*map(int, sys.argv[1:5]))
