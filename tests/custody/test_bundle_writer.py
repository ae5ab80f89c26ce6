"""BundleWriter: digests of the staged copy, hashing behind, buffers held until hashed."""

from __future__ import annotations

import base64
import hashlib
import random
import zipfile
import zlib
from pathlib import Path

import orjson
import pytest

from sealtrail.custody import bundle_writer, direct_file
from sealtrail.custody.bundle_writer import BundleWriter
from sealtrail.errors import CollectionError
from tests.conftest import Keyring

SMALL_STAGE = 64 << 10


@pytest.mark.parametrize("hashing", ["process", "thread"])
@pytest.mark.parametrize("path", ["direct", "page cache"])
def test_many_members_of_every_size_keep_exact_digests(
    tmp_path: Path, keyring: Keyring, monkeypatch: pytest.MonkeyPatch, path: str, hashing: str
) -> None:
    """Members from empty to several staging buffers long, written in chunks of every size
    (some straight into the staging buffer with `fill`), digests taken before the next
    member: every SHA-256 and CRC-32 equals one computed independently over the source,
    whether the helper process or the hash thread computed it."""
    monkeypatch.setattr(direct_file, "STAGE", SMALL_STAGE)
    monkeypatch.setattr(direct_file, "USE_DIRECT_IO", path == "direct")
    monkeypatch.setattr(bundle_writer, "USE_HASH_PROCESS", hashing == "process")
    rng = random.Random(99)
    writer = BundleWriter(tmp_path, "stress")
    expected: dict[str, tuple[str, int]] = {}
    pending = []
    for i in range(60):
        data = rng.randbytes(rng.choice([0, 1, 100, 20_000, SMALL_STAGE - 1, SMALL_STAGE + 1,
                                         3 * SMALL_STAGE + 17]))
        sink = writer.open_member(f"f{i}".encode())
        chunk = memoryview(bytearray(70_000))  # one buffer reused for every chunk
        offset = 0
        while offset < len(data):
            take = rng.choice([1, 500, 17_000, 70_000])
            piece = data[offset:offset + take]
            if rng.random() < 0.5:
                chunk[:len(piece)] = piece
                sink.write(chunk[:len(piece)])
                chunk[:len(piece)] = b"\xff" * len(piece)  # reused at once: must not matter
                offset += len(piece)
            else:
                def read(view: memoryview, piece: bytes = piece) -> int:
                    n = min(len(view), len(piece))
                    view[:n] = piece[:n]
                    return n
                offset += sum(len(p) for p in sink.fill(read, len(piece)))  # may stop short
        pending.append(sink.close_later())
        expected[f"data/f{i}"] = (hashlib.sha256(data).hexdigest(), zlib.crc32(data))
    written = {w.name: w for w in (p.result() for p in pending)}
    assert (writer._process is not None) == (hashing == "process")
    assert (writer._pool is not None) == (hashing == "thread")
    writer.seal({"members": []}, keyring.alice.key)
    assert {n: w.sha256 for n, w in written.items()} == {n: e[0] for n, e in expected.items()}
    with zipfile.ZipFile(tmp_path / "stress.stb") as bundle:
        assert bundle.testzip() is None
        for name, (sha256, crc) in expected.items():
            info = bundle.getinfo(name)
            assert info.CRC == crc
            assert hashlib.sha256(bundle.read(name)).hexdigest() == sha256


def test_a_helper_that_dies_fails_the_member_instead_of_giving_a_digest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(direct_file, "STAGE", SMALL_STAGE)
    writer = BundleWriter(tmp_path, "dead")
    sink = writer.open_member(b"big")
    sink.write(b"x" * 50_000)  # large first chunk: the helper process hashes this member
    process = writer.hash_process()
    assert process is not None
    process._proc.kill()
    process._proc.wait()
    with pytest.raises(CollectionError, match="SHA-256 helper process: .*killed by signal 9"):
        sink.write(b"y" * 5 * SMALL_STAGE)  # refilling a buffer waits for the dead helper
    partial = writer.abandon()
    assert partial.exists()
    assert not (tmp_path / "dead.stb").exists()


def test_members_with_a_small_first_chunk_are_hashed_here(tmp_path: Path,
                                                           keyring: Keyring) -> None:
    writer = BundleWriter(tmp_path, "small")
    for i in range(5):
        sink = writer.open_member(f"s{i}".encode())
        sink.write(b"a" * 1000)
        sink.write(b"b" * 100_000)  # later chunks follow the first one's choice
        assert sink.close().sha256 == hashlib.sha256(b"a" * 1000 + b"b" * 100_000).hexdigest()
    assert writer._process is None or writer._process._seq == 0  # nothing sent to a helper
    assert writer._pool is None
    writer.seal({"members": []}, keyring.alice.key)


def test_the_helper_imports_nothing_from_the_working_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, keyring: Keyring
) -> None:
    """A ``sealtrail`` package planted in the folder the examiner runs from is not what the
    hashing helper runs (it is started with ``python -P``)."""
    planted = tmp_path / "cwd" / "sealtrail" / "custody"
    planted.mkdir(parents=True)
    marker = tmp_path / "planted-code-ran"
    for folder in (planted.parent, planted):
        (folder / "__init__.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    monkeypatch.chdir(tmp_path / "cwd")
    (tmp_path / "out").mkdir()
    writer = BundleWriter(tmp_path / "out", "planted")
    sink = writer.open_member(b"big")
    sink.write(b"z" * 100_000)
    assert sink.close().sha256 == hashlib.sha256(b"z" * 100_000).hexdigest()
    assert writer._process is not None
    writer.seal({"members": []}, keyring.alice.key)
    assert not marker.exists()


def test_without_a_python_to_start_the_helper_the_hash_thread_does_the_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, keyring: Keyring
) -> None:
    monkeypatch.setattr("sys.executable", "")
    writer = BundleWriter(tmp_path, "embedded")
    sink = writer.open_member(b"big")
    sink.write(b"q" * 100_000)
    assert sink.close().sha256 == hashlib.sha256(b"q" * 100_000).hexdigest()
    assert writer._process is None and writer._pool is not None
    writer.seal({"members": []}, keyring.alice.key)


def test_a_manifest_larger_than_a_staging_buffer_is_sealed(
    tmp_path: Path, keyring: Keyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The envelope of a large tree's manifest spans many staging buffers: it used to go into
    one append and fail the seal (``append of N bytes: at most 8388608 at once``), after the
    whole walk, leaving a ``.partial``."""
    monkeypatch.setattr(direct_file, "STAGE", SMALL_STAGE)
    writer = BundleWriter(tmp_path, "big-manifest")
    sink = writer.open_member(b"f")
    sink.write(b"x")
    sink.close()
    manifest = {"type": "t", "padding": ["p" * 100] * (10 * SMALL_STAGE // 100)}
    path, payload = writer.seal(manifest, keyring.alice.key)
    assert path.name == "big-manifest.stb"
    assert not writer.partial_path.exists()
    with zipfile.ZipFile(path) as archive:
        assert archive.testzip() is None
        envelope = archive.read("manifest.dsse.json")
    assert len(envelope) > 10 * SMALL_STAGE
    assert base64.b64decode(orjson.loads(envelope)["payload"]) == payload
