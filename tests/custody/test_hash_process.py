"""The SHA-256 helper process: digests of shared staging memory, failures never silent."""

from __future__ import annotations

import hashlib
import mmap
import os
import random
import signal
from collections.abc import Iterator

import pytest

from sealtrail.custody.hash_process import HashProcess, HashProcessFailed

SIZE = 1 << 20


@pytest.fixture
def shared() -> Iterator[tuple[int, mmap.mmap]]:
    fd = os.memfd_create("test-stage", os.MFD_CLOEXEC)
    os.ftruncate(fd, SIZE)
    mapping = mmap.mmap(fd, SIZE)
    mapping[:] = random.Random(7).randbytes(SIZE)
    yield fd, mapping
    mapping.close()
    os.close(fd)


def test_interleaved_members_get_the_digests_of_their_own_ranges(
    shared: tuple[int, mmap.mmap],
) -> None:
    fd, mapping = shared
    rng = random.Random(3)
    process = HashProcess(fd, SIZE)
    expected = {m: hashlib.sha256() for m in range(1, 6)}
    for _ in range(300):
        member = rng.randint(1, 5)
        start = rng.randrange(SIZE)
        length = rng.randint(0, min(70_000, SIZE - start))
        process.update(member, start, length)
        expected[member].update(mapping[start:start + length])
    seqs = {m: process.request_digest(m) for m in expected}
    assert {m: process.digest(m, seq) for m, seq in seqs.items()} == {
        m: h.hexdigest() for m, h in expected.items()}
    empty = process.request_digest(99)  # a member that never had a byte
    assert process.digest(99, empty) == hashlib.sha256().hexdigest()
    process.close()


def test_thousands_of_commands_queued_without_waiting_do_not_stall(
    shared: tuple[int, mmap.mmap],
) -> None:
    """Both pipes fill (commands one way, acknowledgements the other): neither side blocks."""
    fd, mapping = shared
    process = HashProcess(fd, SIZE)
    expected = hashlib.sha256()
    last = 0
    for i in range(20_000):
        last = process.update(1, i, 3)
        expected.update(mapping[i:i + 3])
    process.wait(last)
    assert process.acked >= last
    assert process.digest(1, process.request_digest(1)) == expected.hexdigest()
    process.close()


def test_a_range_outside_the_mapping_stops_the_helper_and_is_reported(
    shared: tuple[int, mmap.mmap],
) -> None:
    fd, _ = shared
    process = HashProcess(fd, SIZE)
    seq = process.update(1, SIZE - 10, 11)
    with pytest.raises(HashProcessFailed, match=r"exited with status 1: range 1048566\+11 "
                       r"outside the staging mapping \(1048576 bytes\)$"):
        process.wait(seq)
    process.close()


def test_after_close_waits_return_and_no_digest_is_made_up(
    shared: tuple[int, mmap.mmap],
) -> None:
    fd, _ = shared
    process = HashProcess(fd, SIZE)
    seq = process.update(1, 0, 1000)
    process.close()
    process.wait(seq)  # the helper has exited: it reads nothing any more
    assert process.done(seq)
    with pytest.raises(HashProcessFailed, match="no digest for member 1"):
        process.digest(1, seq)
    with pytest.raises(HashProcessFailed, match="closed"):
        process.update(1, 0, 1)


def test_ctrl_c_is_left_to_the_collecting_process(shared: tuple[int, mmap.mmap]) -> None:
    """SIGINT goes to the whole process group; the helper carries on until its pipe closes."""
    fd, mapping = shared
    process = HashProcess(fd, SIZE)
    process.wait(process.update(1, 0, 10))  # the helper is up and has set its handlers
    os.kill(process._proc.pid, signal.SIGINT)
    seq = process.request_digest(1)
    assert process.digest(1, seq) == hashlib.sha256(mapping[:10]).hexdigest()
    process.close()
    assert process._proc.returncode == 0
