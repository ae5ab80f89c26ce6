"""Collecting from a folder: every file hashed while copied, every item ends with an outcome."""

from __future__ import annotations

import base64
import hashlib
import os
import threading
import time
import zipfile
from pathlib import Path

import pytest

from sealtrail.custody.bundle_reader import BundleFile, open_manifest
from sealtrail.custody.case import Case
from sealtrail.custody.verify import check_case
from tests.conftest import collect, write


def manifest_of(bundle, key):
    with BundleFile(bundle) as reader:
        manifest, _ = open_manifest(reader, [key.public])
    return manifest


def by_path(manifest):
    out = {}
    for record in manifest["members"] + manifest["entries"]:
        out[record["source"]["path"]] = record
    return out


@pytest.fixture
def case(tmp_path, keyring):
    return Case.init(tmp_path / "case", title="t", examiner="Alice", key=keyring.alice.key)


def test_member_hashes_equal_the_source_files(sealed_case):
    manifest = manifest_of(sealed_case.bundle, sealed_case.keyring.alice.key)
    records = by_path(manifest)
    for rel in ("var/log/auth.log", "var/log/auth.log.2.gz", "srv/data/customers.csv",
                "home/alice/.bash_history", "etc/passwd"):
        data = (sealed_case.host / rel).read_bytes()
        record = records["/" + rel]
        assert record["outcome"] == "collected"
        assert record["sha256"] == hashlib.sha256(data).hexdigest()
        assert record["size"] == len(data)
    with zipfile.ZipFile(sealed_case.bundle) as zf:
        assert zf.read("data/srv/data/customers.csv") == (
            sealed_case.host / "srv/data/customers.csv").read_bytes()


def test_manifest_records_source_metadata_with_full_precision(sealed_case):
    manifest = manifest_of(sealed_case.bundle, sealed_case.keyring.alice.key)
    record = by_path(manifest)["/etc/passwd"]
    st = os.lstat(sealed_case.host / "etc/passwd")
    source = record["source"]
    assert source["inode"] == str(st.st_ino)
    assert source["size"] == st.st_size
    assert source["mode"] == f"{st.st_mode:o}"
    assert source["uid"] == st.st_uid
    assert source["mtime"].endswith(f".{st.st_mtime_ns % 10**9:09d}Z")
    assert "LinuxPasswdFile" in record["artifacts"] or record["artifacts"]
    collection = manifest["collection"]
    assert collection["host"] == "web01"
    assert collection["os"] == "linux"
    assert collection["started"].endswith("Z")
    assert collection["clock"] == "system"


def test_collection_never_changes_the_source(tmp_path, keyring, linux_host, case):
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in linux_host.rglob("*")
              if p.is_file()}
    collect(case, keyring.alice.key, linux_host, paths=("**",))
    after = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in linux_host.rglob("*")
             if p.is_file()}
    assert before == after


def test_hostile_folder_items_each_get_their_outcome(tmp_path, keyring, linux_host, case):
    logs = linux_host / "var/log"
    os.mkfifo(logs / "pipe.log")                       # never opened (would block)
    os.symlink("/etc/shadow", logs / "outside.log")    # points out of the root
    os.symlink("loop-b.log", logs / "loop-a.log")      # a symlink loop
    os.symlink("loop-a.log", logs / "loop-b.log")
    write(linux_host, "var/log/new\nline.log", b"newline name\n")
    (logs / os.fsdecode(b"bad\xff.log")).write_bytes(b"raw\n")
    result = collect(case, keyring.alice.key, linux_host, paths=("var/log/*.log", "var/log/**"))
    manifest = manifest_of(result.bundle_path, keyring.alice.key)
    records = by_path(manifest)
    assert records["/var/log/pipe.log"]["outcome"] == "special"
    outside = records["/var/log/outside.log"]
    assert outside["outcome"] == "symlink"
    assert outside["source"]["link_target"] == "/etc/shadow"
    assert records["/var/log/loop-a.log"]["outcome"] == "symlink"
    assert records["/var/log/new\nline.log"]["outcome"] == "collected"
    bad = [r for r in records.values() if "path_b64" in r["source"]]
    assert len(bad) == 1
    assert base64.b64decode(bad[0]["source"]["path_b64"]) == b"/var/log/bad\xff.log"
    assert bad[0]["name"] == "data/var/log/bad%FF.log"
    assert check_case(case.root, [keyring.alice.key.public]).ok


def test_unreadable_file_is_recorded_with_its_errno(tmp_path, keyring, linux_host, case,
                                                    monkeypatch):
    from sealtrail.collectors.source import DirectorySource

    real_open = DirectorySource.open_regular

    def deny_syslog(self, relpath, expected):
        if relpath == b"var/log/syslog":
            raise PermissionError(13, "Permission denied")
        return real_open(self, relpath, expected)

    monkeypatch.setattr(DirectorySource, "open_regular", deny_syslog)
    result = collect(case, keyring.alice.key, linux_host)
    record = by_path(manifest_of(result.bundle_path, keyring.alice.key))["/var/log/syslog"]
    assert record["outcome"] == "unreadable"
    assert record["reason"].startswith("EACCES")
    assert result.outcomes["unreadable"] == 1
    assert result.outcomes["collected"] > 5


def test_real_eacces_as_an_unprivileged_user(keyring):
    """A forked child drops to 'nobody' and collects a file it may not read (root sets up)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to switch to an unprivileged user")
    import json
    import shutil
    import tempfile

    base = Path(tempfile.mkdtemp(prefix="sealtrail-eacces-"))
    try:
        host = base / "host"
        write(host, "etc/hostname", b"h\n")
        write(host, "etc/passwd", b"root:x:0:0::/root:/bin/sh\n")
        secret = write(host, "var/log/auth.log", b"secret\n")
        secret.chmod(0o600)
        case = Case.init(base / "case", title="t", examiner="n", key=keyring.alice.key)
        for path in [base, *base.rglob("*")]:
            if path != secret:
                os.chown(path, 65534, 65534)
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: never returns into pytest
            try:
                os.setgid(65534)
                os.setuid(65534)
                result = collect(case, keyring.alice.key, host)
                os.write(write_end, json.dumps(result.outcomes).encode())
            except BaseException as exc:  # noqa: BLE001 - reported to the parent
                os.write(write_end, json.dumps({"error": repr(exc)}).encode())
            finally:
                os._exit(0)
        os.close(write_end)
        with os.fdopen(read_end, "rb") as pipe:
            outcomes = json.loads(pipe.read() or b"{}")
        os.waitpid(pid, 0)
        assert outcomes.get("unreadable") == 1, outcomes
        manifest = manifest_of(next(case.bundles_dir.glob("*.stb")), keyring.alice.key)
        record = by_path(manifest)["/var/log/auth.log"]
        assert record["outcome"] == "unreadable"
        assert record["reason"].startswith("EACCES")
    finally:
        shutil.rmtree(base)


def test_file_growing_while_read_is_flagged_and_the_bytes_read_kept(tmp_path, keyring, case):
    host = tmp_path / "growhost"
    write(host, "etc/hostname", b"g\n")
    write(host, "etc/passwd", b"root:x:0:0::/root:/bin/sh\n")
    big = write(host, "var/log/syslog", b"x" * (48 << 20))
    stop = threading.Event()

    def grow():
        with open(big, "ab") as handle:
            while not stop.is_set():
                handle.write(b"more\n" * 1000)
                handle.flush()
                time.sleep(0.001)

    thread = threading.Thread(target=grow)
    thread.start()
    try:
        result = collect(case, keyring.alice.key, host, paths=("var/log/syslog",))
    finally:
        stop.set()
        thread.join()
    record = by_path(manifest_of(result.bundle_path, keyring.alice.key))["/var/log/syslog"]
    assert record["outcome"] == "changed"
    assert record["changed"]["after"]["size"] > record["changed"]["before"]["size"] or (
        record["changed"]["before"]["size"] > record["changed"]["listed"]["size"])
    with zipfile.ZipFile(result.bundle_path) as zf:
        kept = zf.read(record["name"])
    assert hashlib.sha256(kept).hexdigest() == record["sha256"]
    assert check_case(case.root, [keyring.alice.key.public]).ok


def test_file_vanishing_between_listing_and_reading(tmp_path, keyring, linux_host, case,
                                                    monkeypatch):
    from sealtrail.collectors import plan as plan_module

    real_plan = plan_module.plan_collection

    def plan_then_delete(*args, **kwargs):
        result = real_plan(*args, **kwargs)
        (linux_host / "var/log/auth.log.1").unlink()
        return result

    monkeypatch.setattr("tests.conftest.plan_collection", plan_then_delete)
    result = collect(case, keyring.alice.key, linux_host)
    record = by_path(manifest_of(result.bundle_path, keyring.alice.key))["/var/log/auth.log.1"]
    assert record["outcome"] == "vanished"
    assert record["reason"] == "gone between listing and reading"


def test_interrupted_collection_leaves_no_bundle_and_records_the_failure(
        tmp_path, keyring, linux_host, case, monkeypatch):
    from sealtrail.acquisition import collection

    def boom(*args, **kwargs):  # not ENOSPC: out of space removes the .partial
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(collection, "copy_item", boom)
    from sealtrail.errors import CollectionError

    with pytest.raises(CollectionError, match="Input/output error"):
        collect(case, keyring.alice.key, linux_host)
    assert not list(case.bundles_dir.glob("*.stb"))
    assert len(list(case.bundles_dir.glob("*.stb.partial"))) == 1
    actions = [e.action for e in case.ledger().entries()]
    assert actions == ["case_opened", "collection_started", "collection_failed"]
    report = check_case(case.root, [keyring.alice.key.public])
    assert report.ok
    assert any("unsealed collection" in n for n in report.notices)


@pytest.mark.slow
def test_200k_members_seal_verify_and_extract(tmp_path, keyring, case):
    """A tree of 200,000 files (a /var/log, a home folder, ``--path '**'`` on an image): its
    manifest spans many staging buffers. It used to fail at the seal, after the whole walk,
    with ``append of N bytes: at most 8388608 at once`` and a ``.stb.partial`` left."""
    from sealtrail.custody.extract import extract_bundle

    host = tmp_path / "host"
    count = 200_000
    for start in range(0, count, 1000):
        folder = host / "var" / "log" / f"d{start // 1000:03d}"
        folder.mkdir(parents=True)
        for i in range(1000):
            os.close(os.open(folder / f"f{i:03d}.log", os.O_WRONLY | os.O_CREAT, 0o644))
    (host / "var" / "log" / "d000" / "f000.log").write_bytes(b"first\n")
    result = collect(case, keyring.alice.key, host, paths=("var/log/**",))
    assert result.members == count
    assert not list(case.bundles_dir.glob("*.partial"))
    report = check_case(case.root, [keyring.alice.key.public])
    assert report.ok, report.problems[:3]
    assert report.checked["members"] == count
    dest = tmp_path / "out"
    extracted = extract_bundle(Path(result.bundle_path), dest, [keyring.alice.key.public])
    assert not extracted.problems
    assert len(extracted.written) == count
    assert (dest / "data/var/log/d000/f000.log").read_bytes() == b"first\n"
    assert (dest / "data/var/log/d199/f999.log").read_bytes() == b""


def test_a_manifest_over_the_format_bound_fails_the_seal_and_keeps_the_partial(
        tmp_path, keyring, linux_host, case, monkeypatch):
    """The writer never seals a manifest a reader must reject (docs/bundle-format.md 3):
    the collection fails with the sizes, the ``.partial`` is kept, the ledger says so."""
    from sealtrail.custody import bundle_writer
    from sealtrail.errors import ManifestTooLarge

    monkeypatch.setattr(bundle_writer, "MAX_ENVELOPE_BYTES", 4000)
    with pytest.raises(ManifestTooLarge, match=r"at most 4000 \(docs/bundle-format.md") as info:
        collect(case, keyring.alice.key, linux_host)
    assert info.value.expected == 4000
    assert info.value.observed > 4000
    assert "not sealed; unsealed data kept in" in str(info.value)
    assert not list(case.bundles_dir.glob("*.stb"))
    assert len(list(case.bundles_dir.glob("*.stb.partial"))) == 1
    actions = [e.action for e in case.ledger().entries()]
    assert actions == ["case_opened", "collection_started", "collection_failed"]
