"""StagedFile: the bundle's file, appended through staging buffers, written with O_DIRECT."""

from __future__ import annotations

import errno
import io
import random
import threading
from concurrent.futures import Future
from pathlib import Path

import pytest

from sealtrail.custody import direct_file
from sealtrail.custody.direct_file import StagedFile

SMALL_STAGE = 64 << 10  # aligned for O_DIRECT, small enough to cross many block boundaries


@pytest.fixture(params=["direct", "page cache"])
def mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr(direct_file, "STAGE", SMALL_STAGE)
    monkeypatch.setattr(direct_file, "USE_DIRECT_IO", request.param == "direct")
    return str(request.param)


def test_appends_and_patches_give_the_same_bytes_as_an_in_memory_file(
    tmp_path: Path, mode: str
) -> None:
    rng = random.Random(1234)
    model = io.BytesIO()
    path = tmp_path / "out.bin"
    staged = StagedFile(path)
    if mode == "page cache":
        assert not staged.direct  # (with "direct", a tmpfs may still refuse O_DIRECT)
    for step in range(400):
        size = rng.choice([0, 1, 7, 511, 4096, SMALL_STAGE - 3, SMALL_STAGE])
        data = rng.randbytes(size)
        views = staged.append(data)
        assert b"".join(bytes(v) for v in views) == data  # the views are of the staged copy
        model.write(data)
        if step % 5 == 0 and model.tell():  # patch a range already appended
            end = model.tell()
            start = rng.randrange(end)
            patch = rng.randbytes(rng.randint(1, min(300, end - start)))
            staged.patch(start, patch)
            model.seek(start)
            model.write(patch)
            model.seek(end)
        assert staged.end == model.tell()
    staged.finish()
    staged.close()
    assert path.read_bytes() == model.getvalue()


def test_a_patch_straddling_the_disk_and_the_staging_buffer(tmp_path: Path, mode: str) -> None:
    path = tmp_path / "out.bin"
    staged = StagedFile(path)
    staged.append(b"a" * (SMALL_STAGE - 100))
    staged.append(b"a" * 110)  # one block handed to disk, 10 bytes staged
    assert staged.on_disk == SMALL_STAGE
    staged.patch(SMALL_STAGE - 5, b"XXXXXXXXXX")
    staged.append(b"end")
    staged.finish()
    staged.close()
    assert path.read_bytes() == b"a" * (SMALL_STAGE - 5) + b"X" * 10 + b"a" * 5 + b"end"


def test_patch_outside_what_was_appended_is_refused(tmp_path: Path) -> None:
    staged = StagedFile(tmp_path / "x")
    staged.append(b"abc")
    with pytest.raises(ValueError, match="outside"):
        staged.patch(2, b"xy")
    staged.close()


def test_an_append_larger_than_a_buffer_is_refused(tmp_path: Path, mode: str) -> None:
    staged = StagedFile(tmp_path / "x")
    with pytest.raises(ValueError, match="at most"):
        staged.append(b"x" * (SMALL_STAGE + 1))
    staged.close()


def test_a_held_buffer_is_not_refilled_until_its_reader_is_done(
    tmp_path: Path, mode: str
) -> None:
    staged = StagedFile(tmp_path / "x")
    first = staged.append(b"1" * SMALL_STAGE)  # fills buffer 0, handed to disk
    reader: Future[None] = Future()
    staged.hold(reader)
    others = direct_file.BUFFERS - 1
    for _ in range(others):
        staged.append(b"2" * SMALL_STAGE)  # fills the other buffers; buffer 0 comes next
    refilled = threading.Event()

    def refill() -> None:
        staged.append(b"3")  # must wait: buffer 0 is still held
        refilled.set()

    thread = threading.Thread(target=refill)
    thread.start()
    assert not refilled.wait(0.3)
    assert bytes(first[0]) == b"1" * SMALL_STAGE  # the reader still sees what it was given
    reader.set_result(None)
    thread.join(5)
    assert refilled.is_set()
    staged.finish()
    staged.close()
    assert (tmp_path / "x").read_bytes() == (b"1" * SMALL_STAGE + b"2" * SMALL_STAGE * others
                                             + b"3")


def test_blocks_queue_behind_a_slow_disk_and_patches_land_after_their_block(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the disk is busy, appends go on into the next buffers (no wait for the block
    before); a patch of bytes in a block still queued lands after that block, not under it."""
    monkeypatch.setattr(direct_file, "STAGE", SMALL_STAGE)
    real = direct_file._pwrite_all
    disk = threading.Event()

    def slow_disk(fd: int, view: memoryview, offset: int) -> None:
        assert disk.wait(5)
        real(fd, view, offset)

    monkeypatch.setattr(direct_file, "_pwrite_all", slow_disk)
    path = tmp_path / "x"
    staged = StagedFile(path)
    if not staged.direct:
        pytest.skip("this file system refuses O_DIRECT at open already")
    model = bytearray()
    for n in range(direct_file.BUFFERS - 1):  # every block stays queued: the disk is stopped
        chunk = bytes([65 + n]) * SMALL_STAGE
        staged.append(chunk)
        model += chunk
        staged.patch(n * SMALL_STAGE + 10, b"patched%d" % n)
        model[n * SMALL_STAGE + 10:n * SMALL_STAGE + 18] = b"patched%d" % n
    assert staged.on_disk == (direct_file.BUFFERS - 1) * SMALL_STAGE  # handed over, not waited
    disk.set()
    staged.append(b"end")
    model += b"end"
    staged.finish()
    staged.close()
    assert path.read_bytes() == bytes(model)


def test_refuses_an_existing_file(tmp_path: Path) -> None:
    (tmp_path / "x").write_bytes(b"keep")
    with pytest.raises(FileExistsError):
        StagedFile(tmp_path / "x")
    assert (tmp_path / "x").read_bytes() == b"keep"


def test_no_append_after_finish(tmp_path: Path) -> None:
    staged = StagedFile(tmp_path / "x")
    staged.append(b"abc")
    staged.finish()
    with pytest.raises(ValueError, match="finished"):
        staged.append(b"d")
    staged.close()
    assert (tmp_path / "x").read_bytes() == b"abc"


def test_o_direct_refused_at_the_first_write_falls_back_to_the_page_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(direct_file, "STAGE", SMALL_STAGE)
    staged = StagedFile(tmp_path / "x")
    if not staged.direct:
        pytest.skip("this file system refuses O_DIRECT at open already")
    real = direct_file._pwrite_all
    direct_fd = staged._direct

    def refuse_direct(fd: int, view: memoryview, offset: int) -> None:
        if fd == direct_fd:
            raise OSError(errno.EINVAL, "Invalid argument")
        real(fd, view, offset)

    monkeypatch.setattr(direct_file, "_pwrite_all", refuse_direct)
    data = bytearray(random.Random(5).randbytes(3 * SMALL_STAGE + 99))
    for start in range(0, len(data), SMALL_STAGE):
        staged.append(data[start:start + SMALL_STAGE])
        if start == 0:  # the refused first block may still be queued: a patch of it must
            staged.patch(10, b"PATCH")  # survive its rewrite through the page cache
            data[10:15] = b"PATCH"
    staged.write_tail()
    assert not staged.direct
    staged.finish()
    staged.close()
    assert (tmp_path / "x").read_bytes() == data


def test_an_io_error_on_a_block_is_raised(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(direct_file, "STAGE", SMALL_STAGE)

    def failing(fd: int, view: memoryview, offset: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    staged = StagedFile(tmp_path / "x")
    monkeypatch.setattr(direct_file, "_pwrite_all", failing)
    staged.append(b"x" * (SMALL_STAGE - 1))  # still staged: nothing written yet

    def fill_a_block_and_finish() -> None:
        staged.append(b"xx")  # a full block: written now, or on the helper thread
        staged.finish()  # which waits for it and raises its error

    with pytest.raises(OSError, match="Input/output error"):
        fill_a_block_and_finish()
    staged.close()


def test_an_io_error_in_flight_is_raised_before_the_content_is_called_durable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(direct_file, "STAGE", SMALL_STAGE)
    staged = StagedFile(tmp_path / "x")
    real = direct_file._pwrite_all
    calls = []

    def fail_second_block(fd: int, view: memoryview, offset: int) -> None:
        calls.append(offset)
        if offset == SMALL_STAGE:
            raise OSError(errno.EIO, "Input/output error")
        real(fd, view, offset)

    monkeypatch.setattr(direct_file, "_pwrite_all", fail_second_block)
    staged.append(b"y" * SMALL_STAGE)
    staged.append(b"y" * SMALL_STAGE)

    def third_block_and_finish() -> None:
        staged.append(b"y" * SMALL_STAGE)  # the third block waits for the second: its error
        staged.finish()

    with pytest.raises(OSError, match="Input/output error"):
        third_block_and_finish()
    staged.close()
    assert calls[:2] == [0, SMALL_STAGE]
