"""StoredZip writes the bytes Python's zipfile writes for the same stored members."""

from __future__ import annotations

import io
import random
import zipfile
import zlib
from pathlib import Path

import pytest

from sealtrail.custody import direct_file, zip_writer
from sealtrail.custody.direct_file import StagedFile
from sealtrail.custody.zip_writer import StoredZip

ATTR = 0o100444 << 16
MEMBERS = [("data/empty", b""), ("data/a.txt", b"hello\n"), ("data/%C3%A9t%C3%A9", b"x" * 5000),
           ("data/big", random.Random(3).randbytes(300_000)), ("volatile/ps.json", b"[]")]


def with_zipfile(members: list[tuple[str, bytes]], manifest: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, data in members:
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = ATTR
            with archive.open(info, "w", force_zip64=True) as member:
                for start in range(0, len(data), 65536):
                    member.write(data[start:start + 65536])
        info = zipfile.ZipInfo("manifest.dsse.json", date_time=(1980, 1, 1, 0, 0, 0))
        info.external_attr = ATTR
        archive.writestr(info, manifest, compress_type=zipfile.ZIP_STORED)
    return out.getvalue()


def with_stored_zip(path: Path, members: list[tuple[str, bytes]], manifest: bytes) -> bytes:
    staged = StagedFile(path)
    archive = StoredZip(staged)
    for name, data in members:
        entry = archive.begin(name, ATTR, zip64=True)
        crc = 0
        for start in range(0, len(data), 65536):
            for part in staged.append(data[start:start + 65536]):
                crc = zlib.crc32(part, crc)
        archive.end(entry, crc, len(data))
    archive.add("manifest.dsse.json", manifest, ATTR, zlib.crc32(manifest))
    archive.finish()
    staged.finish()
    staged.close()
    return path.read_bytes()


@pytest.fixture(autouse=True)
def small_stage(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(direct_file, "STAGE", 64 << 10)  # headers patched on disk and staged


def test_same_bytes_as_zipfile(tmp_path: Path) -> None:
    manifest = b'{"payload":"..."}'
    ours = with_stored_zip(tmp_path / "b.zip", MEMBERS, manifest)
    assert ours == with_zipfile(MEMBERS, manifest)
    with zipfile.ZipFile(tmp_path / "b.zip") as archive:
        assert archive.testzip() is None
        assert [i.filename for i in archive.infolist()] == \
            [n for n, _ in MEMBERS] + ["manifest.dsse.json"]


def test_same_bytes_as_zipfile_when_offsets_and_counts_need_zip64(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Lowered limits stand in for a 2 GiB member and a 65,535-member bundle.
    monkeypatch.setattr(zip_writer, "ZIP64_LIMIT", 4000)
    monkeypatch.setattr(zipfile, "ZIP64_LIMIT", 4000)
    monkeypatch.setattr(zip_writer, "_FILECOUNT_LIMIT", 3)
    monkeypatch.setattr(zipfile, "ZIP_FILECOUNT_LIMIT", 3)
    manifest = b"m" * 100
    ours = with_stored_zip(tmp_path / "b.zip", MEMBERS, manifest)
    assert ours == with_zipfile(MEMBERS, manifest)


def test_a_member_must_end_with_the_size_written(tmp_path: Path) -> None:
    staged = StagedFile(tmp_path / "b.zip")
    archive = StoredZip(staged)
    entry = archive.begin("data/x", ATTR, zip64=True)
    staged.append(b"abc")
    with pytest.raises(ValueError, match="4 bytes declared"):
        archive.end(entry, 0, 4)
    with pytest.raises(ValueError, match="still being written"):
        archive.finish()
    staged.close()
