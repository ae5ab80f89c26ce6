"""Disk images: format detection, partitions, and the TSK-backed source, on upstream images.

What each image holds is documented in ../shared/fixtures/upstream/SOURCES.md (disk/); these
tests assert exactly that, through `ImageSource` (the same calls the collection plan makes).
"""

from __future__ import annotations

import errno
import hashlib
import struct
from pathlib import Path

import pytest

from sealtrail.collectors.bodyfile import write_bodyfile
from sealtrail.collectors.image_source import MAX_DEPTH, ImageSource
from sealtrail.collectors.images import ImageError, UnsupportedImage, open_image
from sealtrail.collectors.plan import plan_collection
from sealtrail.collectors.source import FileInfo
from sealtrail.collectors.tsk import list_partitions, read_layout
from sealtrail.errors import UsageError
from tests.shared_data import upstream_path


def disk(name: str) -> Path:
    return upstream_path(f"disk/{name}")


def source_of(name: str, *, include_deleted: bool = False, index: int | None = None):
    handle = open_image(disk(name))
    partitions = list_partitions(handle)
    partition = partitions[0] if index is None else next(
        p for p in partitions if p.index == index)
    return ImageSource(handle, partition, include_deleted=include_deleted)


def read_all(source: ImageSource, relpath: bytes) -> bytes:
    info = source.lstat(relpath)
    with source.open_regular(relpath, info) as stream:
        return stream.read()


def files_of(source: ImageSource) -> dict[bytes, str]:
    """Every regular file below the root -> SHA-256 of its content."""
    out = {}
    for info in source.walk():
        if not isinstance(info, FileInfo):
            continue
        if info.kind == "file" and not info.deleted:
            out[info.relpath] = hashlib.sha256(read_all(source, info.relpath)).hexdigest()
    return out


# -- formats ------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "fmt", "size"), [
    ("ext2.raw", "raw", 4194304),
    ("ext2.E01", "ewf", 4194304),
    ("ext2.qcow2", "qcow", 4194304),
    ("image.E01", "ewf", 102400),
    ("fat12.img", "raw", 1024000),
    ("windows_volume.qcow2", "qcow", 35913728),
    ("tsk_volume_system.raw", "raw", 1474560),
    ("gpt-disk.img", "raw", 36864),
])
def test_every_upstream_image_opens_with_its_format_and_media_size(name, fmt, size):
    with open_image(disk(name)) as handle:
        assert (handle.format, handle.size) == (fmt, size)


def test_e01_header_metadata_and_stored_hashes():
    with open_image(disk("ext2.E01")) as handle:
        assert handle.stored_hashes == {"md5": "196066add11fb71c4c49cf1bb50d6d24"}
        assert handle.metadata["case_number"] == "case"
        assert handle.metadata["examiner_name"] == "examiner"
        assert "acquiry_date" in handle.metadata
    with open_image(disk("image.E01")) as handle:
        assert handle.stored_hashes["md5"] == "d73c51f10c7ee6a681b7b619ccc6f1c4"
        assert (handle.metadata["case_number"], handle.metadata["examiner_name"]) == (
            "PyVFS", "John Doe")


def test_stored_md5_matches_the_raw_image_it_was_made_from():
    raw = disk("ext2.raw").read_bytes()
    with open_image(disk("ext2.E01")) as handle:
        assert hashlib.md5(raw).hexdigest() == handle.stored_hashes["md5"]  # noqa: S324
        assert handle.read(0, len(raw)) == raw


def test_split_raw_given_the_first_segment_reads_as_one_image(tmp_path):
    raw = disk("ext2.raw").read_bytes()
    (tmp_path / "ext2.001").write_bytes(raw[:1_000_000])
    (tmp_path / "ext2.002").write_bytes(raw[1_000_000:3_000_001])
    (tmp_path / "ext2.003").write_bytes(raw[3_000_001:])
    with open_image(tmp_path / "ext2.001") as handle:
        assert handle.format == "split_raw"
        assert handle.size == len(raw)
        assert len(handle.segments) == 3
        assert handle.read(999_990, 20) == raw[999_990:1_000_010]  # across a segment edge
        source = ImageSource(handle, list_partitions(handle)[0])
        assert files_of(source) == files_of(source_of("ext2.raw"))


# -- the same volume in three containers --------------------------------------------------


def test_ext2_raw_e01_qcow2_hold_the_same_files_and_bytes():
    listings = {name: files_of(source_of(name))
                for name in ("ext2.raw", "ext2.E01", "ext2.qcow2")}
    assert set(listings["ext2.raw"]) == {
        b"passwords.txt", b"a_directory/a_file", b"a_directory/another_file"}
    assert listings["ext2.raw"] == listings["ext2.E01"] == listings["ext2.qcow2"]
    raw = source_of("ext2.raw")
    link = raw.lstat(b"a_link")
    assert (link.kind, link.link_target) == ("symlink", b"a_directory/another_file")
    assert raw.lstat(b"lost+found").kind == "dir"


def test_metadata_comes_from_tsk():
    source = source_of("ext2.raw")
    info = source.lstat(b"passwords.txt")
    assert info.kind == "file"
    assert info.size == 116
    assert info.inode == 14
    assert info.mode == 0o100664
    assert (info.uid, info.gid) == (1000, 1000)
    assert info.mtime_ns == 1626962852 * 10**9
    assert info.allocated is True and info.deleted is False
    assert info.partition == 0
    with pytest.raises(FileNotFoundError):
        source.lstat(b"nope")
    with pytest.raises(NotADirectoryError):
        source.lstat(b"passwords.txt/x")


# -- deleted files ------------------------------------------------------------------------


def test_deleted_entries_are_hidden_unless_asked_for():
    assert not source_of("image.E01").exists(b"passwords.txt~")
    source = source_of("image.E01", include_deleted=True)
    deleted = {i.relpath: i for i in source.walk() if isinstance(i, FileInfo) and i.deleted}
    assert set(deleted) == {b"passwords.txt~", b"a_directory/another_file~",
                            b"a_directory/.another_file.swp"}
    # ext2 zeroed the inode numbers of these entries: only the names survive.
    for info in deleted.values():
        assert (info.kind, info.inode, info.allocated, info.size) == ("file", 0, None, 0)


def test_deleted_names_without_content_are_planned_unrecoverable():
    source = source_of("image.E01", include_deleted=True)
    plan = plan_collection(source, path_globs=["**"])
    outcomes = {i.relpath: i.outcome for i in plan.items}
    assert outcomes[b"passwords.txt~"] == "unrecoverable"
    assert outcomes[b"passwords.txt"] is None
    reason = next(i.reason for i in plan.items if i.relpath == b"passwords.txt~")
    assert "only the name survives" in reason


# -- FAT and NTFS -------------------------------------------------------------------------


def test_fat12_long_file_names():
    files = files_of(source_of("fat12.img"))
    assert {b"long.txt", b"short.txt", b"very/long/path/test.txt",
            b"very-long-dir-name/very-long-file-name.txt"} <= set(files)
    source = source_of("fat12.img")
    assert source.lstat(b"long.txt").size == 14000
    assert source.case_insensitive
    assert source.find_path_ci(b"VERY-LONG-DIR-NAME") == b"very-long-dir-name"


def test_ntfs_syslog_mft_and_case_insensitive_lookup():
    source = source_of("windows_volume.qcow2")
    assert source.detect_os() == "windows"
    assert source.find_path_ci(b"windows/SYSTEM32/Config") == b"Windows/System32/config"
    data = read_all(source, b"Windows/System32/config/syslog")
    assert len(data) == 1247
    mft = source.lstat(b"$MFT")
    assert (mft.inode, mft.size) == (0, 69632)
    assert read_all(source, b"$MFT")[:4] == b"FILE"
    info = source.lstat(b"Windows/System32/config/syslog")
    assert info.fn_times is not None
    assert info.fn_times[3] == 1470486732662754800  # $FILE_NAME crtime (100 ns precision)
    assert info.birthtime_ns == 1470486732662754800
    assert info.mtime_ns % 100 == 0 and info.mtime_ns % 10**9 != 0  # nanoseconds kept


def test_windows_triage_plan_over_ntfs_runs():
    source = source_of("windows_volume.qcow2")
    plan = plan_collection(source, path_globs=["Windows/System32/config/*"])
    assert plan.os_name == "windows"
    paths = {i.relpath for i in plan.files}
    assert b"Windows/System32/config/syslog" in paths


# -- volume systems -----------------------------------------------------------------------


def test_mbr_with_extended_partition_reports_both_partitions():
    with open_image(disk("tsk_volume_system.raw")) as handle:
        layout = read_layout(handle)
    assert layout.vs_type == "mbr"
    parts = {p.index: p for p in layout.partitions}
    assert set(parts) == {2, 6}
    assert (parts[2].start_offset, parts[2].length) == (512, 350 * 512)
    assert parts[2].fs_type is None and "Cannot determine file system type" in parts[2].fs_error
    assert (parts[6].start_offset, parts[6].length, parts[6].fs_type) == (
        352 * 512, 2528 * 512, "ext2")
    assert parts[6].type_desc == "Linux (0x83)"
    source = source_of("tsk_volume_system.raw", index=6)
    assert source.listdir(b"") == [b"lost+found"]


def test_gpt_partitions_are_reported_without_file_systems():
    with open_image(disk("gpt-disk.img")) as handle:
        layout = read_layout(handle)
    assert layout.vs_type == "gpt"
    assert [(p.index, p.start_offset, p.length, p.fs_type) for p in layout.partitions] == [
        (4, 34 * 512, 512, None), (5, 35 * 512, 4 * 512, None)]
    assert all(p.fs_error for p in layout.partitions)
    handle = open_image(disk("gpt-disk.img"))
    with pytest.raises(UsageError, match="partition 4 has no readable file system"):
        ImageSource(handle, layout.partitions[0])


# -- hostile input ------------------------------------------------------------------------


def test_truncated_raw_image_is_flagged_and_reads_short(tmp_path):
    cut = tmp_path / "cut.raw"
    cut.write_bytes(disk("ext2.raw").read_bytes()[:300_000])
    with open_image(cut) as handle:
        (partition,) = list_partitions(handle)
        assert partition.fs_type == "ext2"
        assert "claims 4194304 bytes but only 300000" in partition.fs_note
        source = ImageSource(handle, partition)
        info = source.lstat(b"passwords.txt")
        with source.open_regular(b"passwords.txt", info) as stream, \
                pytest.raises(OSError, match="TSK read error") as caught:
            stream.read()  # its block is past the end: an I/O error the copy records
        assert caught.value.errno == errno.EIO
        assert "Offset missing in partial image" in str(caught.value)


def test_random_bytes_named_e01_is_one_clear_error(tmp_path):
    fake = tmp_path / "evidence.E01"
    fake.write_bytes(bytes(range(256)) * 64)
    with pytest.raises(ImageError) as caught:
        open_image(fake)
    assert caught.value.path == str(fake)
    assert "no EWF signature" in str(caught.value)
    assert str(fake) in str(caught.value)


def test_truncated_e01_is_one_clear_error(tmp_path):
    cut = tmp_path / "cut.E01"
    cut.write_bytes(disk("ext2.E01").read_bytes()[:6000])
    with pytest.raises(ImageError, match="truncated or damaged ewf image") as caught:
        open_image(cut)
    assert caught.value.path == str(cut)


@pytest.mark.parametrize(("head", "fmt"), [
    (b"KDMV" + bytes(508), "vmdk"),
    (b"# Disk DescriptorFile\nversion=1\n", "vmdk"),
    (b"conectix" + bytes(504), "vhd"),
    (b"vhdxfile" + bytes(504), "vhdx"),
])
def test_vmdk_and_vhd_are_refused_with_how_to_convert(tmp_path, head, fmt):
    path = tmp_path / f"disk.{fmt}"
    path.write_bytes(head + bytes(4096))
    with pytest.raises(UnsupportedImage, match="qemu-img convert -O raw") as caught:
        open_image(path)
    assert caught.value.format == fmt


def test_folder_empty_file_and_missing_file(tmp_path):
    with pytest.raises(UsageError, match="is a folder"):
        open_image(tmp_path)
    (tmp_path / "empty.raw").write_bytes(b"")
    with pytest.raises(ImageError, match="empty file"):
        open_image(tmp_path / "empty.raw")
    with pytest.raises(UsageError, match="does not exist"):
        open_image(tmp_path / "missing.raw")


def test_zeroed_mbr_signature_leaves_no_file_system(tmp_path):
    image = tmp_path / "nosig.raw"
    data = bytearray(disk("tsk_volume_system.raw").read_bytes())
    data[510:512] = b"\0\0"
    image.write_bytes(bytes(data))
    with open_image(image) as handle:
        layout = read_layout(handle)
    assert layout.vs_type is None
    assert [(p.index, p.fs_type) for p in layout.partitions] == [(0, None)]


def test_bogus_partition_entry_is_reported_per_partition(tmp_path):
    image = tmp_path / "bogus.raw"
    data = bytearray(disk("tsk_volume_system.raw").read_bytes())
    # The primary partition now runs past the end of the disk; the logical one is intact.
    data[446 + 8 : 446 + 12] = struct.pack("<I", 2800)
    image.write_bytes(bytes(data))
    with open_image(image) as handle:
        layout = read_layout(handle)
    by_start = {p.start_offset: p for p in layout.partitions}
    assert set(by_start) == {352 * 512, 2800 * 512}
    assert by_start[352 * 512].fs_type == "ext2"
    bogus = by_start[2800 * 512]
    assert bogus.fs_type is None and bogus.fs_error
    assert "past the end of the image" in bogus.fs_note


def _loop_image(tmp_path: Path) -> Path:
    """ext2.raw with a_directory's entry pointing at the root inode (2): a directory loop."""
    data = bytearray(disk("ext2.raw").read_bytes())
    at = data.find(b"a_directory", 1024 * 5)
    while at != -1:
        inode, _rec, name_len, _type = struct.unpack_from("<IHBB", data, at - 8)
        if inode == 12 and name_len == len(b"a_directory"):
            struct.pack_into("<I", data, at - 8, 2)
            break
        at = data.find(b"a_directory", at + 1)
    assert at != -1, "directory entry not found"
    image = tmp_path / "loop.raw"
    image.write_bytes(bytes(data))
    return image


def test_directory_loop_terminates(tmp_path):
    handle = open_image(_loop_image(tmp_path))
    source = ImageSource(handle, list_partitions(handle)[0])
    assert source.lstat(b"a_directory").inode == 2
    with pytest.raises(OSError, match="directory loop") as caught:
        source.listdir(b"a_directory")
    assert caught.value.errno == errno.ELOOP
    walked = list(source.walk())
    assert len(walked) < 50
    plan = plan_collection(source, path_globs=["**"])
    assert len(plan.items) < 50
    lines = []
    write_bodyfile(source, lines.append)
    assert b"".join(lines).count(b"\n") < 50


def test_paths_deeper_than_the_limit_are_refused():
    source = source_of("ext2.raw")
    with pytest.raises(OSError, match="deeper than 64 levels") as caught:
        source.lstat(b"/".join([b"d"] * (MAX_DEPTH + 1)))
    assert caught.value.errno == errno.ELOOP


def test_bodyfile_of_an_image_lists_deleted_entries():
    source = source_of("image.E01")
    chunks: list[bytes] = []
    stats = write_bodyfile(source, chunks.append)
    text = b"".join(chunks).decode()
    lines = text.splitlines()
    assert stats.entries == len(lines) == 8
    assert "0|/passwords.txt|15|r/rr--------|151107|5000|116|1337961653|1337961653|1337961663|0" \
        in lines
    assert "0|/passwords.txt~ (deleted)|0|r/r---------|0|0|0|0|0|0|0" in lines


# -- data runs: a raw image's files as byte ranges the collecting process reads itself ------


PROJECT_IMAGES = Path(__file__).resolve().parents[2] / "fixtures" / "images"


def _runs_and_tsk_agree(path: Path) -> tuple[int, int]:
    """For every regular file of every partition: the bytes at its data runs equal TSK's
    read. Returns (files read through runs, files left to TSK)."""
    handle = open_image(path)
    via_runs = via_tsk = 0
    with path.open("rb") as raw:
        for partition in read_layout(handle).partitions:
            if partition.fs_type is None:
                continue
            source = ImageSource(handle, partition, include_deleted=True)
            for info in source.walk():
                if not isinstance(info, FileInfo) or info.kind != "file":
                    continue
                runs = source.data_runs(info)
                if runs is None:
                    via_tsk += 1
                    continue
                via_runs += 1
                pieces = []
                for start, length in runs:
                    raw.seek(start)
                    pieces.append(raw.read(length))
                assert sum(length for _, length in runs) == info.size
                assert b"".join(pieces) == read_all(source, info.relpath), info.relpath
    return via_runs, via_tsk


@pytest.mark.parametrize("name", ["web01.ext4.img", "small.fat.img", "small.ntfs.img",
                                  "two-part.mbr.img", "two-part.gpt.img"])
def test_data_runs_read_the_same_bytes_as_tsk_on_project_images(name):
    via_runs, _ = _runs_and_tsk_agree(PROJECT_IMAGES / name)
    assert via_runs > 0  # the fast path is taken, not only the fallback


@pytest.mark.parametrize("name", ["ext2.raw", "fat12.img", "gpt-disk.img",
                                  "tsk_volume_system.raw"])
def test_data_runs_read_the_same_bytes_as_tsk_on_upstream_images(name):
    _runs_and_tsk_agree(disk(name))


def test_ntfs_resident_files_are_left_to_tsk():
    via_runs, via_tsk = _runs_and_tsk_agree(PROJECT_IMAGES / "small.ntfs.img")
    assert via_runs > 0 and via_tsk > 0  # small files live in the MFT record itself


def test_no_data_runs_for_container_formats():
    source = source_of("ext2.E01")
    files = [i for i in source.walk() if isinstance(i, FileInfo) and i.kind == "file"]
    assert files and all(source.data_runs(i) is None for i in files)
