"""Read another process's memory (Linux ``/proc/PID/mem``) and say which secrets it holds.

Used to show that worker processes that parse evidence hold no copy of the signing key: the
test loads a real key in its own process, starts the worker, and scans the worker's readable
mappings. The control, `forked_holder`, is a child forked after the key was loaded (as the
workers once were): the same scan must find the seed there, or the scan proves nothing.
"""

from __future__ import annotations

import base64
import multiprocessing
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sealtrail.custody.keys import SigningKey, _nacl_signing_key, load_private_key, write_key_pair

_CHUNK = 16 << 20
_SKIP = ("[vvar]", "[vsyscall]", "[vvar_vclock]")  # kernel pages that cannot be read


def key_secrets(key: SigningKey) -> dict[str, bytes]:
    """The byte strings that would give the key away: the seed, PyNaCl's 64-byte secret key
    (seed || public key) and the seed as written in the key file."""
    return {"seed": key.seed, "secret key": bytes(_nacl_signing_key(key.seed)._signing_key),
            "base64 seed": base64.b64encode(key.seed)}


def loaded_key(folder: Path) -> SigningKey:
    """A fresh key, written to a file and loaded from it as the CLI does, then used once (so
    PyNaCl's key object exists too)."""
    private, _ = write_key_pair(SigningKey.generate("alice"), folder)
    key = load_private_key(private)
    key.sign(b"warm up")
    return key


def held_secrets(pid: int, secrets: dict[str, bytes]) -> set[str]:
    """The names of the ``secrets`` found anywhere in the readable memory of process ``pid``."""
    found: set[str] = set()
    longest = max(len(value) for value in secrets.values())
    maps = Path(f"/proc/{pid}/maps").read_text().splitlines()
    with open(f"/proc/{pid}/mem", "rb", buffering=0) as mem:
        for line in maps:
            fields = line.split()
            if "r" not in fields[1] or (len(fields) > 5 and fields[5] in _SKIP):
                continue
            start, end = (int(x, 16) for x in fields[0].split("-"))
            tail = b""
            for offset in range(start, end, _CHUNK):
                try:
                    mem.seek(offset)
                    block = tail + mem.read(min(_CHUNK, end - offset))
                except OSError:
                    break  # a mapping that cannot be read (a guard page, a device)
                found.update(name for name, value in secrets.items() if value in block)
                tail = block[-longest:]
    return found


@contextmanager
def forked_holder() -> Iterator[int]:
    """The pid of a child forked from this process (which holds the key), while it runs."""
    child = multiprocessing.get_context("fork").Process(target=time.sleep, args=(60,),
                                                         daemon=True)
    child.start()
    try:
        yield child.pid
    finally:
        child.kill()
        child.join()
