"""A sparse file over the limit for files with holes ends ``too_large`` with its apparent and
allocated sizes, instead of filling the bundle's disk with zeros (issue 10: a 1.25 TB
``var/log/lastlog`` of a host with high uids is in the default Linux triage set)."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import time
from pathlib import Path

from sealtrail.acquisition.collection import SPARSE_LIMIT
from sealtrail.acquisition.session import requested_fields, run_collection
from sealtrail.collectors.plan import plan_collection
from sealtrail.collectors.source import DirectorySource
from sealtrail.custody.case import Case
from sealtrail.custody.verify import check_case
from tests.acquisition.test_collection import manifest_of
from tests.acquisition.test_damaged_metadata import by_path
from tests.acquisition.test_image_collection import collect_image
from tests.conftest import make_linux_host

EDGE = Path(__file__).resolve().parents[2] / "fixtures" / "edge-images"
APPARENT = 100 << 30


def _case(tmp_path, keyring) -> Case:
    return Case.init(tmp_path / "case", title="t", examiner="Alice", key=keyring.alice.key)


def _collect_triage(case, key, host, max_file_size=None):
    source = DirectorySource(host)
    plan = plan_collection(source, max_file_size=max_file_size)  # the default triage set
    return run_collection(case, key, source, plan, source_label=str(host),
                          requested=requested_fields((), (), plan.os_name, max_file_size))


def _sparse(path: Path, size: int, records: dict[int, bytes]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        handle.truncate(size)
        for offset, data in records.items():
            handle.seek(offset)
            handle.write(data)
    return path


def test_100_gb_sparse_lastlog_in_the_triage_set_is_too_large(tmp_path, keyring):
    host = make_linux_host(tmp_path / "host")
    lastlog = _sparse(host / "var" / "log" / "lastlog", APPARENT,
                      {292 * 1000: b"\x01" * 292, 292 * 300_000_000: b"\x02" * 292})
    allocated = lastlog.stat().st_blocks * 512
    assert allocated < 1 << 20  # the tmp file system keeps the holes
    case = _case(tmp_path, keyring)

    started = time.monotonic()
    result = _collect_triage(case, keyring.alice.key, host)
    assert time.monotonic() - started < 30

    assert check_case(case.root, [keyring.alice.key.public]).ok
    assert Path(result.bundle_path).stat().st_size < 1 << 20
    record = by_path(manifest_of(Path(result.bundle_path), keyring.alice.key))["/var/log/lastlog"]
    assert record["outcome"] == "too_large"
    assert record["artifacts"] == ["LinuxLastlogFile"]
    assert (record["source"]["size"], record["source"]["allocated_size"]) == (APPARENT, allocated)
    assert record["reason"] == (
        f"sparse file: {APPARENT} bytes apparent size, {allocated} allocated (the rest is "
        f"holes), over the {SPARSE_LIMIT}-byte limit for files with holes; not copied "
        "(--max-file-size raises the limit)")


def test_sparse_file_under_the_limit_and_dense_files_are_copied_whole(tmp_path, keyring):
    host = make_linux_host(tmp_path / "host")
    lastlog = _sparse(host / "var" / "log" / "lastlog", 292 * 1003, {292 * 1002: b"\x03" * 292})
    case = _case(tmp_path, keyring)
    result = _collect_triage(case, keyring.alice.key, host)
    record = by_path(manifest_of(Path(result.bundle_path), keyring.alice.key))["/var/log/lastlog"]
    assert record["outcome"] == "collected"
    assert record["sha256"] == hashlib.sha256(lastlog.read_bytes()).hexdigest()


def test_max_file_size_is_the_limit_for_sparse_files_too(tmp_path, keyring):
    host = make_linux_host(tmp_path / "host")
    _sparse(host / "var" / "log" / "lastlog", 8 << 20, {0: b"\x04" * 292})
    case = _case(tmp_path, keyring)
    result = _collect_triage(case, keyring.alice.key, host, max_file_size=4 << 20)
    record = by_path(manifest_of(Path(result.bundle_path), keyring.alice.key))["/var/log/lastlog"]
    assert record["outcome"] == "too_large"
    assert record["reason"] == f"{8 << 20} bytes, over the limit of {4 << 20} bytes"
    os.truncate(host / "var" / "log" / "lastlog", 6 << 20)
    result = _collect_triage(case, keyring.alice.key, host, max_file_size=16 << 20)
    record = by_path(manifest_of(Path(result.bundle_path), keyring.alice.key))["/var/log/lastlog"]
    assert (record["outcome"], record["size"]) == ("collected", 6 << 20)


def test_sparse_lastlog_in_an_ext4_image_is_too_large_with_its_allocated_size(tmp_path,
                                                                              keyring):
    image = tmp_path / "sparse.ext4.img"
    image.write_bytes(gzip.decompress((EDGE / "sparse.ext4.img.gz").read_bytes()))
    known = json.loads((EDGE / "SOURCES.json").read_text())["images"]["sparse.ext4.img"]
    case = _case(tmp_path, keyring)
    result = collect_image(case, keyring.alice.key, image, paths=(), os_name="linux")
    assert check_case(case.root, [keyring.alice.key.public]).ok
    records = by_path(manifest_of(Path(result.bundle_path), keyring.alice.key))
    record = records["/var/log/lastlog"]
    assert record["outcome"] == "too_large"
    assert record["source"]["size"] == known["sparse_file"]["size"]
    assert record["source"]["allocated_size"] == 2 * 4096  # the two blocks with records
    assert record["source"]["partition"]["fs_type"] == "ext4"
    assert records["/etc/hostname"]["outcome"] == "collected"
