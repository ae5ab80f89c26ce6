"""Damaged metadata (a corrupt inode) ends that item with outcome ``damaged_metadata``; the
collection goes on, seals and verifies (issue 10: one inode with a size beyond 2**53 used to
abort a whole image collection with NotCanonicalError)."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import struct
import zipfile
from pathlib import Path

import pytest

from sealtrail.acquisition.collection import damage_checked, stat_fields
from sealtrail.collectors.plan import PlannedItem
from sealtrail.collectors.source import FileInfo
from sealtrail.collectors.tsk import tsk
from sealtrail.custody.case import Case
from sealtrail.custody.verify import check_case
from tests.acquisition.test_collection import manifest_of
from tests.acquisition.test_image_collection import collect_image
from tests.conftest import collect
from tests.mounts import tmpfs

ROOT = Path(__file__).resolve().parents[2]
EDGE = ROOT / "fixtures" / "edge-images"
WEB01_IMG = ROOT / "fixtures" / "images" / "web01.ext4.img"
HUGE = 7860525790276485382  # the root inode's size in fixtures/edge-images/damaged.ext4.img.gz


@pytest.fixture
def case(tmp_path, keyring):
    return Case.init(tmp_path / "case", title="t", examiner="Alice", key=keyring.alice.key)


def test_corrupt_inode_table_image_is_collected_with_damaged_metadata(case, keyring, tmp_path):
    """The case of issue 10: ``--os linux --include-deleted --bodyfile --path '**'`` over
    web01's ext4 with blocks 41..240 (its inode table) overwritten."""
    image = tmp_path / "damaged.ext4.img"
    image.write_bytes(gzip.decompress((EDGE / "damaged.ext4.img.gz").read_bytes()))
    record = json.loads((EDGE / "SOURCES.json").read_text())["images"]["damaged.ext4.img"]
    assert hashlib.sha256(image.read_bytes()).hexdigest() == record["sha256"]

    result = collect_image(case, keyring.alice.key, image, os_name="linux",
                           include_deleted=True, bodyfile=True)

    report = check_case(case.root, [keyring.alice.key.public])
    assert report.ok, report.problems
    manifest = manifest_of(Path(result.bundle_path), keyring.alice.key)
    damaged = [e for e in manifest["entries"] if e["outcome"] == "damaged_metadata"]
    assert [e["source"]["path"] for e in damaged] == ["/"]
    source = damaged[0]["source"]
    assert source["size"] is None
    assert source["damaged"] == {"size": str(HUGE)}
    assert f"size {HUGE} cannot be represented" in damaged[0]["reason"]
    assert manifest["totals"]["outcomes"]["damaged_metadata"] == 1
    # the rest went on: every other item and artifact has its outcome, the bodyfile is there
    assert {e["outcome"] for e in manifest["entries"]} == {"damaged_metadata", "unreadable"}
    assert [m["source"]["generator"] for m in manifest["members"]] == ["bodyfile"]


def _ext4_inode_offset(image: bytes, inode: int) -> int:
    """Byte offset of ``inode``'s record in an ext4 image (superblock and group descriptors)."""
    sb = 1024
    block = 1024 << struct.unpack_from("<I", image, sb + 24)[0]
    per_group = struct.unpack_from("<I", image, sb + 40)[0]
    inode_size = struct.unpack_from("<H", image, sb + 88)[0]
    is64 = struct.unpack_from("<I", image, sb + 96)[0] & 0x80
    desc_size = struct.unpack_from("<H", image, sb + 254)[0] if is64 else 32
    group, index = divmod(inode - 1, per_group)
    gdt = (2 if block == 1024 else 1) * block + group * desc_size
    table = struct.unpack_from("<I", image, gdt + 8)[0]
    if is64 and desc_size >= 64:
        table |= struct.unpack_from("<I", image, gdt + 0x28)[0] << 32
    return table * block + index * inode_size


def _with_huge_size(tmp_path: Path, path: str, size: int) -> Path:
    """A copy of web01.ext4.img whose ``path`` inode records ``size`` (i_size_lo/high)."""
    image = tmp_path / "web01-damaged.img"
    shutil.copyfile(WEB01_IMG, image)
    inode = int(tsk.FS_Info(tsk.Img_Info(str(WEB01_IMG))).open(path).info.meta.addr)
    data = bytearray(image.read_bytes())
    at = _ext4_inode_offset(bytes(data), inode)
    struct.pack_into("<I", data, at + 4, size & 0xFFFFFFFF)
    struct.pack_into("<I", data, at + 108, size >> 32)
    image.write_bytes(data)
    return image


def test_one_corrupt_inode_among_good_files_only_ends_that_file(case, keyring, tmp_path):
    huge = (1 << 60) + 5
    image = _with_huge_size(tmp_path, "/etc/passwd", huge)
    result = collect_image(case, keyring.alice.key, image, os_name="linux", bodyfile=True)

    assert check_case(case.root, [keyring.alice.key.public]).ok
    bundle = Path(result.bundle_path)
    records = by_path(manifest_of(bundle, keyring.alice.key))
    passwd = records["/etc/passwd"]
    assert (passwd["outcome"], passwd["source"]["damaged"]) == ("damaged_metadata",
                                                                 {"size": str(huge)})
    assert "name" not in passwd  # no bytes were read through the damaged entry
    hostname = records["/etc/hostname"]
    assert hostname["outcome"] == "collected"
    host_file = ROOT / "fixtures" / "hosts" / "web01" / "etc" / "hostname"
    assert hostname["sha256"] == hashlib.sha256(host_file.read_bytes()).hexdigest()
    # the bodyfile keeps the raw value: it is text, and a timeline should show the damage
    body = zipfile.ZipFile(bundle).read("data/%24sealtrail/bodyfile-p0.body").decode()
    line = next(x for x in body.splitlines() if x.split("|")[1] == "/etc/passwd")
    assert line.split("|")[6] == str(huge)


def test_folder_file_dated_after_9999_is_damaged_metadata(case, keyring, tmp_path):
    """tmpfs keeps 64-bit seconds: a time past the year 9999 has no RFC 3339 text."""
    with tmpfs(tmp_path / "host", size="1m") as host:
        (host / "etc").mkdir()
        (host / "etc" / "hostname").write_bytes(b"web01\n")
        odd = host / "etc" / "odd.conf"
        odd.write_bytes(b"x\n")
        far = 300_000_000_000 * 1_000_000_000  # year 11476
        os.utime(odd, ns=(far, far))
        result = collect(case, keyring.alice.key, host, paths=("etc/*",))
    assert check_case(case.root, [keyring.alice.key.public]).ok
    records = by_path(manifest_of(Path(result.bundle_path), keyring.alice.key))
    odd_record = records["/etc/odd.conf"]
    assert odd_record["outcome"] == "damaged_metadata"
    assert odd_record["source"]["damaged"] == {"atime": str(far), "mtime": str(far)}
    assert odd_record["source"]["mtime"] is None
    assert records["/etc/hostname"]["outcome"] == "collected"


def by_path(manifest):
    return {r["source"]["path"]: r for r in manifest["members"] + manifest["entries"]
            if "path" in r["source"]}


def _info(**changes: int) -> FileInfo:
    base = FileInfo(relpath=b"x", kind="file", mode=0o100644, size=1, uid=0, gid=0, inode=1,
                    device=1, nlink=1, atime_ns=0, mtime_ns=0, ctime_ns=0,
                    birthtime_ns=None, link_target=None)
    return base._replace(**changes)


@pytest.mark.parametrize(("field", "value"), [
    ("size", 2**53), ("uid", 2**63), ("nlink", -1), ("ctime_ns", -(2**80)),
])
def test_every_unrepresentable_field_is_named_with_its_value(field, value):
    item = damage_checked(PlannedItem(b"x", _info(**{field: value}), ("path:x",), None, ""))
    name = field.removesuffix("_ns")
    assert item.outcome == "damaged_metadata"
    assert f"{name} {value} cannot be represented" in item.reason
    assert stat_fields(item.info)["damaged"] == {name: str(value)}


def test_sound_metadata_is_left_alone():
    item = PlannedItem(b"x", _info(size=2**53 - 1, inode=2**64 - 1), ("path:x",), None, "")
    assert damage_checked(item) is item


def test_ntfs_file_name_time_out_of_range_is_named_as_fn_times():
    info = _info()._replace(fn_times=(0, 2**70, None, 5))
    item = damage_checked(PlannedItem(b"x", info, ("path:x",), None, ""))
    assert item.outcome == "damaged_metadata"
    assert f"fn_times.mtime {2**70} cannot be represented" in item.reason


def test_times_in_the_first_millennium_keep_four_year_digits():
    record = stat_fields(_info(mtime_ns=-62_135_596_800 * 10**9, atime_ns=-10**19))
    assert record["mtime"] == "0001-01-01T00:00:00.000000000Z"
    assert record["atime"] == "1653-02-10T06:13:20.000000000Z"


def test_image_source_record_carries_damaged_file_name_times():
    from sealtrail.acquisition.image_collection import _source_record

    record = _source_record(_info(size=2**60)._replace(fn_times=(0, 2**70, None, 5)), None)
    assert record["damaged"] == {"size": str(2**60), "fn_times.mtime": str(2**70)}
    assert record["fn_times"]["mtime"] is None
    assert record["fn_times"]["crtime"] == "1970-01-01T00:00:00.000000005Z"


def test_partition_offsets_beyond_2_53_are_kept_as_text(case, keyring):
    """A damaged GPT can put a partition at any 64-bit sector: the manifest still seals."""
    from datetime import UTC, datetime

    from sealtrail.acquisition.image_collection import _manifest, _Received
    from sealtrail.custody.canonical import canonical_json

    start = 2**64 * 512
    got = _Received(layout={"image": {"format": "raw", "size": 1024}, "vs_type": "gpt",
                            "partitions": [{"index": 2, "start_offset": start, "length": 512,
                                            "type_desc": "Linux", "fs_type": None,
                                            "fs_error": "starts beyond the end of the image",
                                            "fs_note": None}]})
    now = datetime.now(UTC)
    manifest = _manifest(case, keyring.alice.key, "b1", "/x.img", got, {}, now, now)
    canonical_json(manifest.to_json_obj())  # raised NotCanonicalError before
    partition = manifest.collection.source["partitions"][0]
    assert (partition["start_offset"], partition["length"]) == (None, 512)
    assert partition["damaged"] == {"start_offset": str(start)}
