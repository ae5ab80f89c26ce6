"""Tests for sealtrail/acquisition/acquire.py and the ``acquire`` command."""

from __future__ import annotations

import ctypes
import errno
import hashlib
import json
import os
import shutil
import subprocess
import tracemalloc
import zipfile
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from sealtrail.acquisition import acquire
from sealtrail.acquisition.acquire import CHUNK, AcquisitionResult, acquire_image
from sealtrail.cli.acquire import command as acquire_command
from sealtrail.collectors.images import ImageError
from sealtrail.custody import bundle_writer, direct_file
from sealtrail.custody.bundle_reader import BundleFile, open_manifest
from sealtrail.custody.case import Case, declared_keys
from sealtrail.custody.verify import check_case
from sealtrail.errors import CollectionError, UsageError
from tests.conftest import Keyring
from tests.shared_data import upstream_path

IMAGES = Path(__file__).resolve().parents[2] / "fixtures" / "images"
SOURCES = json.loads((IMAGES / "SOURCES.json").read_text())["images"]
EXT2_MD5 = "196066add11fb71c4c49cf1bb50d6d24"  # stored in ext2.E01 (upstream SOURCES.md)


@pytest.fixture
def case(tmp_path: Path, keyring: Keyring) -> Case:
    return Case.init(tmp_path / "case", title="disk", examiner="Alice", key=keyring.alice.key)


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def manifest_of(result: AcquisitionResult) -> dict[str, Any]:
    """The manifest, verified with the key that signed it (the only key in these cases)."""
    bundle = BundleFile(result.bundle_path)
    try:
        case = Case.load(Path(result.bundle_path).parents[1])
        keys = list(declared_keys(case.ledger().entries()).values())
        return open_manifest(bundle, keys)[0]
    finally:
        bundle.close()


def actions(case: Case) -> list[str]:
    return [e.fields.get("action") for e in case.ledger().entries()]


def random_image(path: Path, size: int) -> Path:
    """Incompressible bytes of an awkward size: several chunks and a short last one."""
    with path.open("wb") as out:
        left = size
        while left:
            n = min(left, 1 << 20)
            out.write(os.urandom(n))
            left -= n
    return path


def test_raw_image_member_sha256_equals_hashlib_over_the_file(
    case: Case, keyring: Keyring, tmp_path: Path
) -> None:
    image = random_image(tmp_path / "disk.raw", 2 * CHUNK + 12345)
    result = acquire_image(case, keyring.alice.key, image)
    assert result.hashes == {"sha256": sha256_file(image)}
    assert result.size == image.stat().st_size
    assert result.member == "data/disk.raw"
    assert result.stored_hashes_match is None
    manifest = manifest_of(result)
    (member,) = manifest["members"]
    assert member["sha256"] == sha256_file(image)
    assert "md5" not in member and "sha1" not in member
    assert manifest["collection"]["source"] == {
        "kind": "acquisition", "path": str(image), "format": "raw", "size": result.size,
    }
    assert member["source"]["kind"] == "file"
    assert member["source"]["size"] == result.size
    assert member["source"]["inode"] == str(image.stat().st_ino)
    assert member["outcome"] == "collected"
    assert actions(case) == ["case_opened", "collection_started", "bundle_sealed"]


def test_md5_and_sha1_are_computed_when_asked(case: Case, keyring: Keyring) -> None:
    image = IMAGES / "web01.ext4.img"
    result = acquire_image(case, keyring.alice.key, image, md5=True, sha1=True)
    data = image.read_bytes()
    expected = {
        "sha256": hashlib.sha256(data).hexdigest(),
        "md5": hashlib.md5(data).hexdigest(),  # noqa: S324 - parity with EWF
        "sha1": hashlib.sha1(data).hexdigest(),  # noqa: S324
    }
    assert result.hashes == expected
    (member,) = manifest_of(result)["members"]
    assert {k: member[k] for k in expected} == expected
    assert expected["md5"] == SOURCES["web01.ext4.E01"]["media"]["md5"]


def test_empty_image_is_refused_before_the_ledger_is_touched(
    case: Case, keyring: Keyring, tmp_path: Path
) -> None:
    empty = tmp_path / "empty.raw"
    empty.write_bytes(b"")
    with pytest.raises(ImageError, match="empty file"):
        acquire_image(case, keyring.alice.key, empty)
    with pytest.raises(UsageError, match="does not exist"):
        acquire_image(case, keyring.alice.key, tmp_path / "absent.raw")
    assert actions(case) == ["case_opened"]


def test_upstream_e01_media_hashes_match_the_stored_ones(case: Case, keyring: Keyring) -> None:
    e01 = upstream_path("disk/ext2.E01")
    raw = upstream_path("disk/ext2.raw")
    result = acquire_image(case, keyring.alice.key, e01)
    assert result.format == "ewf"
    assert result.member == "data/ext2.E01.raw"
    assert result.hashes["md5"] == EXT2_MD5 == result.stored_hashes["md5"]
    assert result.hashes["sha256"] == sha256_file(raw)
    assert result.stored_hashes_match is True
    source = manifest_of(result)["collection"]["source"]
    assert source["stored_hashes"] == result.stored_hashes
    assert source["stored_hashes_match"] is True
    assert source["metadata"]["case_number"] == "case"


def test_two_segment_e01_media_equals_the_raw_image(case: Case, keyring: Keyring) -> None:
    result = acquire_image(case, keyring.alice.key, IMAGES / "web01.ext4.E01")
    media = SOURCES["web01.ext4.E01"]["media"]
    assert result.hashes == {k: media[k] for k in ("sha256", "md5", "sha1")}
    assert result.stored_hashes == {"md5": media["md5"], "sha1": media["sha1"]}
    assert result.stored_hashes_match is True
    source = manifest_of(result)["collection"]["source"]
    assert source["segments"] == ["web01.ext4.E01", "web01.ext4.E02"]
    sealed = case.ledger().entries()[-1].fields
    assert sealed["details"]["stored_hashes_match"] is True
    assert sealed["details"]["sha256"] == media["sha256"]


def tampered_e01(tmp_path: Path) -> Path:
    """A copy of web01.ext4.E01 with one byte flipped inside a stored (uncompressed) chunk."""
    for seg in ("web01.ext4.E01", "web01.ext4.E02"):
        shutil.copy(IMAGES / seg, tmp_path / seg)
    raw = (IMAGES / "web01.ext4.img").read_bytes()
    data = bytearray((tmp_path / "web01.ext4.E01").read_bytes())
    text = raw[raw.find(b"Accepted password for deploy"):][:64]
    at = data.find(text)
    assert at > 0 and data.count(text) == 1
    data[at + 10] ^= 0xFF
    (tmp_path / "web01.ext4.E01").write_bytes(bytes(data))
    return tmp_path / "web01.ext4.E01"


def test_flipped_byte_in_an_e01_chunk_is_sealed_as_a_stored_hash_mismatch(
    case: Case, keyring: Keyring, tmp_path: Path
) -> None:
    # libewf does not raise on a chunk whose Adler-32 fails: it returns the chunk (zeroed), so
    # the media hashes differ from the stored ones, and that is what acquisition records.
    result = acquire_image(case, keyring.alice.key, tampered_e01(tmp_path))
    media = SOURCES["web01.ext4.E01"]["media"]
    assert result.stored_hashes == {"md5": media["md5"], "sha1": media["sha1"]}
    assert result.hashes["md5"] != media["md5"]
    assert result.stored_hashes_match is False
    assert manifest_of(result)["collection"]["source"]["stored_hashes_match"] is False
    assert case.ledger().entries()[-1].fields["details"]["stored_hashes_match"] is False
    assert check_case(case.root, [keyring.alice.key.public]).ok  # the bundle itself is sound


def test_e01_with_a_missing_segment_is_refused_before_the_ledger_is_touched(
    case: Case, keyring: Keyring, tmp_path: Path
) -> None:
    shutil.copy(IMAGES / "web01.ext4.E01", tmp_path / "web01.ext4.E01")
    with pytest.raises(ImageError, match="web01.ext4.E01"):
        acquire_image(case, keyring.alice.key, tmp_path / "web01.ext4.E01")
    assert actions(case) == ["case_opened"]


def test_check_case_passes_after_acquisitions(
    case: Case, keyring: Keyring, tmp_path: Path
) -> None:
    acquire_image(case, keyring.alice.key, IMAGES / "two-part.gpt.img", md5=True)
    acquire_image(case, keyring.alice.key, IMAGES / "web01.ext4.E01")
    report = check_case(case.root, [keyring.alice.key.public])
    assert report.ok, report.problems
    assert report.checked["bundles"] == 2
    assert report.checked["members"] == 2


def test_read_error_midway_leaves_collection_failed_and_no_bundle(
    case: Case, keyring: Keyring, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    image = random_image(tmp_path / "failing.raw", 3 * CHUNK)
    real = acquire._read_into
    calls = []

    def failing(fd: int, view: memoryview) -> int:
        calls.append(len(view))
        if len(calls) == 2:
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        return real(fd, view)

    monkeypatch.setattr(acquire, "_read_into", failing)
    with pytest.raises(CollectionError, match="Input/output error; unsealed data kept in"):
        acquire_image(case, keyring.alice.key, image)
    assert not list(case.bundles_dir.glob("*.stb"))
    assert len(list(case.bundles_dir.glob("*.stb.partial"))) == 1
    assert actions(case) == ["case_opened", "collection_started", "collection_failed"]
    failed = case.ledger().entries()[-1].fields
    assert "Input/output error" in failed["details"]["reason"]
    report = check_case(case.root, [keyring.alice.key.public])
    assert report.ok
    assert any("unsealed collection" in n for n in report.notices)


def test_image_shorter_than_its_size_fails_the_acquisition(
    case: Case, keyring: Keyring, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    image = random_image(tmp_path / "short.raw", CHUNK + 100)
    real = acquire._read_into
    monkeypatch.setattr(acquire, "_read_into",
                        lambda fd, view: 0 if os.lseek(fd, 0, os.SEEK_CUR) else real(fd, view))
    with pytest.raises(CollectionError, match=f"image ended after {CHUNK:,} of {CHUNK + 100:,}"):
        acquire_image(case, keyring.alice.key, image)
    assert actions(case)[-1] == "collection_failed"
    assert not list(case.bundles_dir.glob("*.stb"))


def test_peak_memory_does_not_grow_with_the_image(
    case: Case, keyring: Keyring, tmp_path: Path
) -> None:
    image = random_image(tmp_path / "big.raw", 64 << 20)
    tracemalloc.start()
    try:
        acquire_image(case, keyring.alice.key, image, md5=True)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * CHUNK  # two read buffers and change, not 64 MiB


def test_untrusted_key_cannot_acquire(case: Case, keyring: Keyring) -> None:
    with pytest.raises(UsageError, match="is not trusted in case"):
        acquire_image(case, keyring.mallory.key, IMAGES / "small.fat.img")
    assert actions(case) == ["case_opened"]


# -- the command ---------------------------------------------------------------------------


def test_command_prints_json_with_hashes(case: Case, keyring: Keyring) -> None:
    result = CliRunner().invoke(acquire_command, [
        str(case.root), "--source", str(IMAGES / "small.ntfs.img"),
        "--key", str(keyring.alice.private), "--md5", "--json",
    ])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["hashes"]["sha256"] == SOURCES["small.ntfs.img"]["sha256"]
    assert set(summary["hashes"]) == {"sha256", "md5"}
    assert summary["member"] == "data/small.ntfs.img"
    assert "stored_hashes" not in summary


def test_command_reports_stored_hash_mismatch_with_status_1(
    case: Case, keyring: Keyring, tmp_path: Path
) -> None:
    result = CliRunner().invoke(acquire_command, [
        str(case.root), "--source", str(tampered_e01(tmp_path)),
        "--key", str(keyring.alice.private),
    ])
    assert result.exit_code == 1
    assert "stored hashes (md5 " in result.output
    assert ": MISMATCH" in result.output
    assert ("Error: the media read does not match the hashes stored in the image "
            "(recorded in the sealed manifest)") in result.output


# -- write-back while writing (BundleWriter.start_writeback) ---------------------------------

needs_sync_file_range = pytest.mark.skipif(bundle_writer._sync_file_range is None,
                                           reason="no sync_file_range (Linux only)")


@pytest.fixture
def page_cache_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """The path taken where O_DIRECT is refused: blocks of one CHUNK through the page cache."""
    monkeypatch.setattr(direct_file, "USE_DIRECT_IO", False)
    monkeypatch.setattr(direct_file, "STAGE", CHUNK)
    monkeypatch.setattr(bundle_writer, "WRITEBACK_STEP", CHUNK)  # a request per chunk


@needs_sync_file_range
@pytest.mark.usefixtures("page_cache_path")
def test_writeback_ranges_cover_the_member_and_the_bundle_stays_a_standard_zip(
    case: Case, keyring: Keyring, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = bundle_writer._sync_file_range
    calls: list[tuple[int, int, int]] = []

    def spy(fd: int, offset: int, nbytes: int, flags: int) -> int:
        calls.append((offset, nbytes, flags))
        return real(fd, offset, nbytes, flags)

    monkeypatch.setattr(bundle_writer, "_sync_file_range", spy)
    image = random_image(tmp_path / "disk.raw", 5 * CHUNK + 4321)
    result = acquire_image(case, keyring.alice.key, image)
    assert result.hashes["sha256"] == sha256_file(image)
    started = [(o, n) for o, n, f in calls if f == 2]  # SYNC_FILE_RANGE_WRITE
    waited = [(o, n) for o, n, f in calls if f == 7]  # WAIT_BEFORE | WRITE | WAIT_AFTER
    assert len(started) >= 4 and len(waited) == len(started) - 1
    assert started[0][0] == 0 and all(  # back to back, each waited for one step later
        a[0] + a[1] == b[0] for a, b in zip(started, started[1:], strict=False))
    assert waited == started[:-1]
    assert started[-1][0] + started[-1][1] >= 5 * CHUNK
    with zipfile.ZipFile(result.bundle_path) as bundle:
        assert bundle.testzip() is None
        info = bundle.getinfo("data/disk.raw")
        assert info.compress_type == zipfile.ZIP_STORED and info.file_size == result.size
    if shutil.which("unzip"):
        subprocess.run(["unzip", "-tq", result.bundle_path], check=True, capture_output=True)


@pytest.mark.usefixtures("page_cache_path")
def test_io_error_seen_by_writeback_fails_the_acquisition(
    case: Case, keyring: Keyring, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:

    def failing(fd: int, offset: int, nbytes: int, flags: int) -> int:
        ctypes.set_errno(errno.EIO)
        return -1

    monkeypatch.setattr(bundle_writer, "_sync_file_range", failing)
    image = random_image(tmp_path / "disk.raw", 3 * CHUNK)
    with pytest.raises(CollectionError, match="Input/output error"):
        acquire_image(case, keyring.alice.key, image)
    assert actions(case)[-1] == "collection_failed"
    assert not list(case.bundles_dir.glob("*.stb"))


@pytest.mark.usefixtures("page_cache_path")
def test_file_system_without_writeback_falls_back_to_the_seal_fsync(
    case: Case, keyring: Keyring, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []

    def unsupported(fd: int, offset: int, nbytes: int, flags: int) -> int:
        calls.append(offset)
        ctypes.set_errno(errno.EINVAL)
        return -1

    monkeypatch.setattr(bundle_writer, "_sync_file_range", unsupported)
    image = random_image(tmp_path / "disk.raw", 3 * CHUNK)
    result = acquire_image(case, keyring.alice.key, image)
    assert result.hashes["sha256"] == sha256_file(image)
    assert len(calls) == 1  # tried once, then left to the seal's fsync
