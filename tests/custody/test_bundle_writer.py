"""BundleWriter: digests of the staged copy, hashing behind, buffers held until hashed."""

from __future__ import annotations

import hashlib
import random
import zipfile
import zlib
from pathlib import Path

import pytest

from sealtrail.custody import direct_file
from sealtrail.custody.bundle_writer import BundleWriter
from tests.conftest import Keyring

SMALL_STAGE = 64 << 10


@pytest.mark.parametrize("path", ["direct", "page cache"])
def test_many_members_of_every_size_keep_exact_digests(
    tmp_path: Path, keyring: Keyring, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    """Members from empty to several staging buffers long, written in chunks of every size
    (some straight into the staging buffer with `fill`), digests taken before the next
    member: every SHA-256 and CRC-32 equals one computed independently over the source."""
    monkeypatch.setattr(direct_file, "STAGE", SMALL_STAGE)
    monkeypatch.setattr(direct_file, "USE_DIRECT_IO", path == "direct")
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
    writer.seal({"members": []}, keyring.alice.key)
    assert {n: w.sha256 for n, w in written.items()} == {n: e[0] for n, e in expected.items()}
    with zipfile.ZipFile(tmp_path / "stress.stb") as bundle:
        assert bundle.testzip() is None
        for name, (sha256, crc) in expected.items():
            info = bundle.getinfo(name)
            assert info.CRC == crc
            assert hashlib.sha256(bundle.read(name)).hexdigest() == sha256
