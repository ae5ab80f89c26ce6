"""The disk images in fixtures/images/ match SOURCES.json and hold the files put in.

Contents are read back with sleuthkit's ``fls``/``icat`` (independent of our code); those tests
skip, naming the reason, when the sleuthkit CLI is not installed.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from fixtures import build_images
from tests.shared_data import tool_absent

IMAGES = Path(__file__).resolve().parent.parent / "fixtures" / "images"
SOURCES = json.loads((IMAGES / "SOURCES.json").read_text())["images"]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_sha256(path: Path) -> str:
    return sha256(path.read_bytes())


def volumes() -> list[tuple[str, int, list[dict[str, Any]]]]:
    """(image name, byte offset of the file system, files put in) for every file system."""
    out = []
    for name, record in SOURCES.items():
        if "partitions" in record:
            out += [(name, p["offset"], p["files"]) for p in record["partitions"]]
        else:
            out.append((name, 0, record["files"]))
    return out


def require_sleuthkit(image: str) -> None:
    if shutil.which("fls") is None or shutil.which("icat") is None:
        tool_absent("sleuthkit CLI (fls, icat) is not installed: run scripts/setup as root")
    if image.endswith(".E01"):
        types = subprocess.run(["fls", "-i", "list"], capture_output=True, text=True,
                               check=False)
        if "ewf" not in types.stdout + types.stderr:
            tool_absent("this sleuthkit build has no EWF support")


def fls_files(image: Path, offset: int) -> dict[str, str]:
    """Path -> metadata address of every allocated file, from ``fls -r -p -F``."""
    out = subprocess.run(
        ["fls", "-r", "-p", "-F", "-u", "-o", str(offset // 512), str(image)],
        capture_output=True, text=True, check=True,
    ).stdout
    files = {}
    for line in out.splitlines():
        meta, _, path = line.partition("\t")
        addr = meta.split()[-1].rstrip(":")
        files["/" + path] = addr
    return files


def test_sources_json_lists_every_image_file() -> None:
    listed = {name for name in SOURCES}
    for record in SOURCES.values():
        listed.update(s["file"] for s in record.get("segments", []))
    present = {p.name for p in IMAGES.iterdir() if p.name != "SOURCES.json"}
    assert present == listed


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_image_matches_sources_json(name: str) -> None:
    record = SOURCES[name]
    path = IMAGES / name
    assert path.stat().st_size == record["size"]
    assert file_sha256(path) == record["sha256"]
    for segment in record.get("segments", []):
        assert file_sha256(IMAGES / segment["file"]) == segment["sha256"]
    assert record["tools"], "tool versions are recorded"


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_image_is_small_enough_to_commit(name: str) -> None:
    for file in [name, *(s["file"] for s in SOURCES[name].get("segments", []))]:
        assert (IMAGES / file).stat().st_size < 2_000_000


@pytest.mark.parametrize(
    ("name", "offset", "files"), volumes(), ids=[f"{n}@{o}" for n, o, _ in volumes()]
)
def test_fls_lists_the_files_put_in_with_their_bytes(
    name: str, offset: int, files: list[dict[str, Any]]
) -> None:
    require_sleuthkit(name)
    image = IMAGES / name
    found = fls_files(image, offset)
    assert files, "each file system has files"
    for item in files:
        assert item["path"] in found, f"{item['path']} not listed by fls in {name}"
        data = subprocess.run(["icat", "-o", str(offset // 512), str(image),
                               found[item["path"]]], capture_output=True, check=True).stdout
        assert sha256(data) == item["sha256"], item["path"]
        assert len(data) == item["size"]


def test_web01_ext4_carries_the_story_mtimes() -> None:
    pytsk3 = pytest.importorskip("pytsk3")
    fs = pytsk3.FS_Info(pytsk3.Img_Info(str(IMAGES / "web01.ext4.img")))
    for item in SOURCES["web01.ext4.img"]["files"]:
        meta = fs.open(item["path"]).info.meta
        assert meta.mtime == item["mtime"], item["path"]
    auth = fs.open("/var/log/auth.log").info.meta
    assert auth.mtime > 1773100000  # 2026-03-10: after the break-in, not the build time


def test_web01_truth_files_are_all_in_the_ext4_image() -> None:
    truth = json.loads((IMAGES.parent / "hosts" / "web01.truth.json").read_text())["files"]
    put_in = {f["path"].lstrip("/"): f["sha256"] for f in SOURCES["web01.ext4.img"]["files"]}
    assert {rel: info["sha256"] for rel, info in truth.items()} == put_in


def test_e01_media_equals_the_raw_image_and_its_stored_hashes() -> None:
    pyewf = pytest.importorskip("pyewf")
    record = SOURCES["web01.ext4.E01"]
    handle = pyewf.handle()
    handle.open(pyewf.glob(str(IMAGES / "web01.ext4.E01")))
    try:
        data = handle.read_buffer_at_offset(handle.get_media_size(), 0)
        stored = {"md5": handle.get_hash_value("MD5"), "sha1": handle.get_hash_value("SHA1")}
    finally:
        handle.close()
    assert len(record["segments"]) == 2  # E01 + E02: readers must follow segments
    assert sha256(data) == record["media"]["sha256"] == SOURCES["web01.ext4.img"]["sha256"]
    assert stored == {"md5": record["media"]["md5"], "sha1": record["media"]["sha1"]}


def _tools_present() -> str | None:
    missing = [cmd for cmd in build_images.TOOLS if shutil.which(cmd) is None]
    if build_images.libfaketime() is None:
        missing.append("libfaketime")
    return ", ".join(missing) or None


def test_rebuild_is_byte_identical(tmp_path: Path) -> None:
    missing = _tools_present()
    if missing:
        tool_absent(f"image tools missing ({missing}); run scripts/setup as root")
    rebuilt = build_images.build(tmp_path)["images"]
    for name, record in SOURCES.items():
        now = rebuilt[name]
        if now["tools"] != record["tools"]:
            # Another mke2fs/mkntfs/libewf may lay bytes out differently: contents still count.
            assert now.get("files") == record.get("files"), name
            continue
        assert now["sha256"] == record["sha256"], f"{name} did not rebuild byte for byte"


def test_edge_images_rebuild_byte_for_byte(tmp_path: Path) -> None:
    from fixtures import build_edge_images

    stored = IMAGES.parent / "edge-images"
    record = json.loads((stored / "SOURCES.json").read_text())
    listed = {image["stored_as"] for image in record["images"].values()}
    assert {p.name for p in stored.iterdir()} == {"SOURCES.json", *listed}
    assert all((stored / name).stat().st_size < 2_000_000 for name in listed)
    if shutil.which("mkfs.ext4") is None:
        pytest.skip("mkfs.ext4 is not installed (Debian e2fsprogs)")
    rebuilt = build_edge_images.build(tmp_path)
    if rebuilt["tools"] != record["tools"]:
        pytest.skip(f"another e2fsprogs ({rebuilt['tools']}) lays the file systems out "
                    "differently")
    assert rebuilt == record
    for name in listed:
        assert (tmp_path / name).read_bytes() == (stored / name).read_bytes(), name
