"""Collecting from disk images: the worker process, the manifest, the ledger, hostile images."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import time
import zipfile
from pathlib import Path

import pytest

from sealtrail.acquisition import image_collection
from sealtrail.acquisition.image_collection import (
    ImageJob,
    WorkerFailed,
    image_requested,
    run_image_collection,
)
from sealtrail.acquisition.image_worker import TAG_SLOT
from sealtrail.analysis.parsers.bodyfile import _SNIFF
from sealtrail.custody.case import Case
from sealtrail.custody.verify import check_case
from sealtrail.errors import CollectionError, UsageError
from tests.acquisition.test_collection import manifest_of
from tests.conftest import collect
from tests.shared_data import upstream_path

FIXTURE_IMAGES = Path(__file__).resolve().parents[2] / "fixtures" / "images"
WEB01 = Path(__file__).resolve().parents[2] / "fixtures" / "hosts" / "web01"


@pytest.fixture
def case(tmp_path, keyring):
    return Case.init(tmp_path / "case", title="t", examiner="Alice", key=keyring.alice.key)


def collect_image(case, key, image, **options):
    job = ImageJob(image=str(image), **{"paths": ("**",), **options})
    return run_image_collection(
        case, key, job, requested=image_requested(job.artifacts, job.paths, job.os_name,
                                                  job.max_file_size, job))


def members_by_path(manifest):
    return {m["source"]["path"]: m for m in manifest["members"] if "path" in m["source"]}


def actions(case):
    return [e.action for e in case.ledger().entries()]


def test_collect_from_ext2_raw_verifies_and_records_image_fields(case, keyring):
    image = upstream_path("disk/ext2.raw")
    result = collect_image(case, keyring.alice.key, image, bodyfile=True)
    report = check_case(case.root, [keyring.alice.key.public])
    assert report.ok, report.problems
    manifest = manifest_of(Path(result.bundle_path), keyring.alice.key)
    source = manifest["collection"]["source"]
    assert source["kind"] == "image"
    assert source["path"] == str(image.resolve())
    assert (source["format"], source["size"], source["volume_system"]) == ("raw", 4194304, None)
    assert "sha256" not in source
    assert source["partitions"] == [{
        "index": 0, "start_offset": 0, "length": 4194304, "type_desc": "whole image",
        "fs_type": "ext2", "fs_error": None, "fs_note": None, "outcome": "collected",
        "reason": ""}]
    members = members_by_path(manifest)
    record = members["/passwords.txt"]
    data = zipfile.ZipFile(result.bundle_path).read(record["name"])
    assert record["sha256"] == hashlib.sha256(data).hexdigest()
    assert record["name"] == "data/passwords.txt"
    src = record["source"]
    assert (src["inode"], src["size"], src["mode"], src["uid"]) == ("14", 116, "100664", 1000)
    assert src["partition"] == {"index": 0, "offset": 0, "type": "whole image",
                                "fs_type": "ext2"}
    assert (src["allocated"], src["deleted"]) == (True, False)
    assert src["mtime"] == "2021-07-22T14:07:32.000000000Z"
    link = next(e for e in manifest["entries"] if e["source"]["path"] == "/a_link")
    assert (link["outcome"], link["source"]["link_target"]) == (
        "symlink", "a_directory/another_file")
    assert actions(case) == ["case_opened", "collection_started", "bundle_sealed"]


def test_member_hashes_are_the_same_from_raw_e01_and_qcow2(case, keyring):
    digests = {}
    for name in ("ext2.raw", "ext2.E01", "ext2.qcow2"):
        result = collect_image(case, keyring.alice.key, upstream_path(f"disk/{name}"))
        manifest = manifest_of(Path(result.bundle_path), keyring.alice.key)
        digests[name] = {p: m["sha256"] for p, m in members_by_path(manifest).items()}
        if name == "ext2.E01":
            source = manifest["collection"]["source"]
            assert source["stored_hashes"] == {"md5": "196066add11fb71c4c49cf1bb50d6d24"}
            assert source["metadata"]["case_number"] == "case"
    assert set(digests["ext2.raw"]) == {"/passwords.txt", "/a_directory/a_file",
                                        "/a_directory/another_file"}
    assert digests["ext2.raw"] == digests["ext2.E01"] == digests["ext2.qcow2"]
    assert check_case(case.root, [keyring.alice.key.public]).ok


def test_bodyfile_member_is_written_first_and_flagged_generated(case, keyring):
    result = collect_image(case, keyring.alice.key, upstream_path("disk/image.E01"),
                           bodyfile=True)
    manifest = manifest_of(Path(result.bundle_path), keyring.alice.key)
    first = manifest["members"][0]
    assert first["name"] == "data/%24sealtrail/bodyfile-p0.body"
    assert first["source"]["kind"] == "generated"
    assert first["source"]["generator"] == "bodyfile"
    assert first["source"]["entries"] == 8
    lines = zipfile.ZipFile(result.bundle_path).read(first["name"]).decode().splitlines()
    assert len(lines) == 8
    assert all(_SNIFF.match(line) for line in lines)
    assert any(line.startswith("0|/passwords.txt~ (deleted)|") for line in lines)


def test_include_deleted_records_what_is_recoverable(case, keyring):
    result = collect_image(case, keyring.alice.key, upstream_path("disk/image.E01"),
                           include_deleted=True)
    manifest = manifest_of(Path(result.bundle_path), keyring.alice.key)
    deleted = {e["source"]["path"]: e for e in manifest["entries"] if e["source"]["deleted"]}
    # The three deleted names of image.E01 have lost their inodes: none is recoverable,
    # each is recorded (not silently dropped), flagged deleted.
    assert set(deleted) == {"/passwords.txt~", "/a_directory/another_file~",
                            "/a_directory/.another_file.swp"}
    assert {e["outcome"] for e in deleted.values()} == {"unrecoverable"}
    assert all(e["source"]["allocated"] is None for e in deleted.values())
    assert not any(m["source"].get("deleted") for m in manifest["members"])
    assert manifest["collection"]["requested"]["include_deleted"] is True


def test_deleted_file_with_intact_inode_is_collected_and_flagged(case, keyring, tmp_path):
    """ext2 keeps a deleted file's block pointers; unlinking by hand (clearing the name's
    allocation and the inode's) leaves a recoverable file."""
    data = bytearray(upstream_path("disk/ext2.raw").read_bytes())
    original = data[:]
    _unlink_in_place(data, b"passwords.txt", inode=14)
    image = tmp_path / "deleted.raw"
    image.write_bytes(bytes(data))
    result = collect_image(case, keyring.alice.key, image, include_deleted=True)
    manifest = manifest_of(Path(result.bundle_path), keyring.alice.key)
    record = members_by_path(manifest)["/passwords.txt"]
    assert record["source"]["deleted"] is True
    assert record["source"]["allocated"] is False
    content = zipfile.ZipFile(result.bundle_path).read(record["name"])
    raw_result = collect_image(case, keyring.alice.key, upstream_path("disk/ext2.raw"))
    raw = members_by_path(manifest_of(Path(raw_result.bundle_path), keyring.alice.key))
    assert hashlib.sha256(content).hexdigest() == raw["/passwords.txt"]["sha256"]
    assert bytes(original) != bytes(data)


def _unlink_in_place(data: bytearray, name: bytes, inode: int) -> None:
    """Mark a root entry deleted the way ext2 does (merged into the previous entry's record)
    and clear the inode's bit in the inode bitmap and its link count."""
    import struct

    block = 1024
    # group descriptor table at block 2 (1 KiB blocks): inode bitmap, inode table
    _bb, inode_bitmap, inode_table = struct.unpack_from("<III", data, 2 * block)
    inode_size = struct.unpack_from("<H", data, 1024 + 88)[0] or 128
    at = data.find(name)
    while at != -1:
        entry = at - 8
        ino, rec_len, name_len, _t = struct.unpack_from("<IHBB", data, entry)
        if ino == inode and name_len == len(name):
            break
        at = data.find(name, at + 1)
    assert at != -1
    start = entry - entry % block
    prev = start
    while True:
        _i, prev_len, _n, _tt = struct.unpack_from("<IHBB", data, prev)
        if prev + prev_len == entry:
            break
        prev += prev_len
    struct.pack_into("<H", data, prev + 4, prev_len + rec_len)
    bit = inode - 1
    data[inode_bitmap * block + bit // 8] &= ~(1 << (bit % 8)) & 0xFF
    node = inode_table * block + (inode - 1) * inode_size
    struct.pack_into("<H", data, node + 26, 0)  # i_links_count
    struct.pack_into("<I", data, node + 20, 1626962900)  # i_dtime


def test_partition_prefix_for_disks_with_a_volume_system(case, keyring):
    result = collect_image(case, keyring.alice.key, upstream_path("disk/tsk_volume_system.raw"),
                           bodyfile=True)
    manifest = manifest_of(Path(result.bundle_path), keyring.alice.key)
    parts = {p["index"]: p for p in manifest["collection"]["source"]["partitions"]}
    assert manifest["collection"]["source"]["volume_system"] == "mbr"
    assert parts[6]["outcome"] == "collected"
    assert parts[2]["outcome"] == "not_collected"
    assert parts[2]["fs_type"] is None and "Cannot determine" in parts[2]["fs_error"]
    assert [m["name"] for m in manifest["members"]] == ["data/%24sealtrail/bodyfile-p6.body"]


def test_image_with_no_file_system_is_a_usage_error_recorded_in_the_ledger(case, keyring):
    with pytest.raises(UsageError, match="no partition holds a file system") as caught:
        collect_image(case, keyring.alice.key, upstream_path("disk/gpt-disk.img"))
    assert "partition 4:" in str(caught.value) and "partition 5:" in str(caught.value)
    assert actions(case) == ["case_opened", "collection_started", "collection_failed"]


def test_unknown_partition_number(case, keyring):
    with pytest.raises(UsageError, match=r"no partition 3 \(partitions: 2, 6\)"):
        collect_image(case, keyring.alice.key, upstream_path("disk/tsk_volume_system.raw"),
                      partition=3)


# -- hostile images -----------------------------------------------------------------------


def test_random_bytes_named_e01_fail_with_one_line_and_keep_the_ledger_whole(
        case, keyring, tmp_path):
    fake = tmp_path / "disk.E01"
    fake.write_bytes(os.urandom(100_000))
    with pytest.raises(CollectionError) as caught:
        collect_image(case, keyring.alice.key, fake)
    text = str(caught.value)
    assert "\n" not in text
    assert str(fake) in text and "no EWF signature" in text
    assert actions(case) == ["case_opened", "collection_started", "collection_failed"]
    failed = case.ledger().entries()[-1]
    assert "no EWF signature" in failed.fields["details"]["reason"]
    assert len(list(case.bundles_dir.glob("*.stb.partial"))) == 1
    assert check_case(case.root, [keyring.alice.key.public]).ok


def test_truncated_image_collects_what_it_can_and_flags_the_rest(case, keyring, tmp_path):
    cut = tmp_path / "cut.raw"
    cut.write_bytes(upstream_path("disk/ext2.raw").read_bytes()[:300_000])
    result = collect_image(case, keyring.alice.key, cut)
    manifest = manifest_of(Path(result.bundle_path), keyring.alice.key)
    (partition,) = manifest["collection"]["source"]["partitions"]
    assert "truncated" in partition["fs_note"]
    outcomes = {m["source"]["path"]: m["outcome"] for m in manifest["members"]}
    assert "partial" in outcomes.values()
    partial = next(m for m in manifest["members"] if m["outcome"] == "partial")
    assert partial["reason"].startswith("EIO after 0 of")


def _hang(channel, job):
    channel.msg({"t": "layout", "image": {"format": "raw", "size": 1}, "vs_type": None,
                 "partitions": []})
    time.sleep(60)


def _crash(channel, job):
    os.kill(os.getpid(), signal.SIGSEGV)


def _bad_message(channel, job):
    channel.data(b"bytes outside any member")


def _slot_outside_member(channel, job):
    index = channel.slots.take()
    channel.slots.slot(index)[:5] = b"bytes"
    channel.slot_filled(index, 5)


def _bad_slot(channel, job):
    channel.msg({"t": "begin", "relpath": "ZmlsZQ=="})  # base64 of "file"
    channel.slot_filled(200, 5)


def _slot_not_given_back(channel, job):
    channel.msg({"t": "begin", "relpath": "ZmlsZQ=="})
    index = channel.slots.take()
    # Both notices in one write: the parent reads the second before it can give the slot back
    # (it gives slots back when the pipe runs empty), so it still holds the slot named again.
    frame = TAG_SLOT + bytes((index,)) + (5).to_bytes(4, "big")
    framed = len(frame).to_bytes(4, "big", signed=True) + frame
    os.write(channel._conn.fileno(), framed + framed)


def _runs_outside_image(channel, job):
    channel.msg({"t": "ranged", "relpath": "ZmlsZQ==", "runs": [[0, 512], [1 << 40, 512]],
                 "record": {"source": {}, "outcome": "collected", "reason": ""}})


def _oversized_slot(channel, job):
    channel.msg({"t": "begin", "relpath": "ZmlsZQ=="})
    channel.slot_filled(channel.slots.take(), 1 << 30)


def test_a_hanging_worker_is_killed_after_the_limit(case, keyring, monkeypatch):
    monkeypatch.setattr(image_collection, "_collect_in_child", _hang)
    job = ImageJob(image=str(upstream_path("disk/ext2.raw")))
    started = time.monotonic()
    with pytest.raises(WorkerFailed, match=r"reported nothing for 1 s and was killed") as caught:
        run_image_collection(case, keyring.alice.key, job, requested={}, stall_limit=1)
    assert time.monotonic() - started < 10
    assert str(Path(job.image).resolve()) in str(caught.value)  # custody records the real path
    assert actions(case) == ["case_opened", "collection_started", "collection_failed"]
    reason = case.ledger().entries()[-1].fields["details"]["reason"]
    assert "killed" in reason
    assert check_case(case.root, [keyring.alice.key.public]).ok


def test_total_time_limit(case, keyring, monkeypatch):
    monkeypatch.setattr(image_collection, "_collect_in_child", _hang)
    job = ImageJob(image=str(upstream_path("disk/ext2.raw")))
    with pytest.raises(WorkerFailed, match="ran past the time limit of 1 s"):
        run_image_collection(case, keyring.alice.key, job, requested={}, time_limit=1)
    assert actions(case)[-1] == "collection_failed"


def test_a_crashing_worker_is_reported_with_its_signal(case, keyring, monkeypatch):
    monkeypatch.setattr(image_collection, "_collect_in_child", _crash)
    job = ImageJob(image=str(upstream_path("disk/ext2.raw")))
    with pytest.raises(WorkerFailed, match="died with signal SIGSEGV"):
        run_image_collection(case, keyring.alice.key, job, requested={})
    assert actions(case)[-1] == "collection_failed"
    assert len(list(case.bundles_dir.glob("*.stb.partial"))) == 1
    assert not list(case.bundles_dir.glob("*.stb"))


@pytest.mark.parametrize(("worker", "reason"), [
    (_bad_message, "sent file bytes outside a member"),
    (_slot_outside_member, "sent file bytes outside a member"),
    (_bad_slot, "bad shared-memory slot"),
    (_oversized_slot, "bad shared-memory slot"),
    (_runs_outside_image, "outside the image"),
    (_slot_not_given_back, "bad shared-memory slot"),
])
def test_a_worker_breaking_the_protocol_is_stopped(case, keyring, monkeypatch, worker, reason):
    monkeypatch.setattr(image_collection, "_collect_in_child", worker)
    job = ImageJob(image=str(upstream_path("disk/ext2.raw")))
    with pytest.raises(WorkerFailed, match=reason):
        run_image_collection(case, keyring.alice.key, job, requested={})
    assert actions(case)[-1] == "collection_failed"
    assert not list(case.bundles_dir.glob("*.stb"))


# -- project fixtures: the same host as a folder and as an ext4 image ------------------------


def _web01_digests(manifest):
    return {p: m["sha256"] for p, m in members_by_path(manifest).items()}


@pytest.mark.parametrize("image", ["web01.ext4.img", "web01.ext4.E01"])
def test_ext4_image_of_web01_gives_the_folder_hashes(case, keyring, image):
    path = FIXTURE_IMAGES / image
    if not path.exists() or not WEB01.is_dir():
        pytest.skip(f"{path} or {WEB01} is absent (run fixtures/build_images.py)")
    folder = collect(case, keyring.alice.key, WEB01)
    folder_manifest = manifest_of(Path(folder.bundle_path), keyring.alice.key)
    job = ImageJob(image=str(path))  # default triage, bodyfile off to compare like with like
    result = run_image_collection(case, keyring.alice.key, job, requested={})
    image_manifest = manifest_of(Path(result.bundle_path), keyring.alice.key)
    assert image_manifest["collection"]["host"] == folder_manifest["collection"]["host"]
    assert image_manifest["collection"]["os"] == "linux"
    assert _web01_digests(image_manifest) == _web01_digests(folder_manifest)
    assert len(_web01_digests(image_manifest)) > 10
    assert check_case(case.root, [keyring.alice.key.public]).ok


def test_folder_collection_with_bodyfile(case, keyring, linux_host):
    from sealtrail.acquisition.session import requested_fields, run_collection
    from sealtrail.collectors.plan import plan_collection
    from sealtrail.collectors.source import DirectorySource

    source = DirectorySource(linux_host)
    plan = plan_collection(source)
    result = run_collection(case, keyring.alice.key, source, plan, source_label=str(linux_host),
                            requested=requested_fields((), (), "linux", None, bodyfile=True),
                            bodyfile=True)
    manifest = manifest_of(Path(result.bundle_path), keyring.alice.key)
    first = manifest["members"][0]
    assert first["name"] == "data/%24sealtrail/bodyfile.body"
    assert first["source"]["kind"] == "generated"
    text = zipfile.ZipFile(result.bundle_path).read(first["name"]).decode()
    st = os.lstat(linux_host / "etc/passwd")
    line = next(x for x in text.splitlines() if x.split("|")[1] == "/etc/passwd")
    assert line.split("|")[2] == str(st.st_ino)
    assert line.split("|")[8] == str(st.st_mtime_ns // 10**9)
    assert first["source"]["entries"] == sum(1 for _ in linux_host.rglob("*"))
    assert check_case(case.root, [keyring.alice.key.public]).ok
    assert json.loads(json.dumps(manifest["collection"]["requested"]))["bodyfile"] is True


def test_ranges_the_collecting_process_reads_short_make_the_member_partial(
        case, keyring, monkeypatch):
    """A raw image's files are read by the collecting process from their byte ranges; if
    the image gives fewer bytes than the ranges promise (it changed underneath), the member
    keeps what was read, is recorded partial with the reason, and the bundle still verifies."""
    real = os.preadv
    image = FIXTURE_IMAGES / "web01.ext4.img"
    cut = image.stat().st_size // 2

    def short_after_half(fd, buffers, offset, *rest):
        if offset >= cut:
            return 0
        return real(fd, buffers, offset, *rest)

    monkeypatch.setattr(os, "preadv", short_after_half)
    result = collect_image(case, keyring.alice.key, image)
    manifest = manifest_of(Path(result.bundle_path), keyring.alice.key)
    partial = [m for m in manifest["members"] if m["outcome"] == "partial"]
    collected = [m for m in manifest["members"] if m["outcome"] == "collected"]
    assert partial and collected
    assert all(m["reason"].startswith("short read after ") for m in partial)
    assert all(m["size"] < m["source"]["size"] for m in partial)
    assert check_case(case.root, [keyring.alice.key.public]).ok
