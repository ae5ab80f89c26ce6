"""``sealtrail image info`` and ``sealtrail collect --source IMAGE``: output and exit codes."""

from __future__ import annotations

import json
import os

import pytest
from click.testing import CliRunner

from sealtrail.cli import image as image_cli
from sealtrail.cli.main import cli
from tests.shared_data import upstream_path

if "image" not in cli.commands:  # registered in cli/main.py by the lead
    cli.add_command(image_cli.command)


@pytest.fixture
def run():
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(cli, [str(a) for a in args], catch_exceptions=False)

    return invoke


@pytest.fixture
def case(tmp_path, run):
    keys = tmp_path / "keys"
    assert run("keys", "generate", "--name", "alice", "--out", keys).exit_code == 0
    case = tmp_path / "case"
    result = run("case", "init", case, "--title", "t", "--examiner", "Alice",
                 "--key", keys / "alice.key")
    assert result.exit_code == 0, result.output
    return {"case": case, "key": keys / "alice.key", "pub": keys / "alice.pub"}


def test_image_info_e01_shows_metadata_hashes_and_file_system(run):
    result = run("image", "info", upstream_path("disk/ext2.E01"))
    assert result.exit_code == 0, result.output
    assert "format    ewf" in result.output
    assert "size      4,194,304 bytes" in result.output
    assert "case_number               case" in result.output
    assert "stored md5                196066add11fb71c4c49cf1bb50d6d24" in result.output
    assert "ext2 (block 1024, 4096 blocks)" in result.output


def test_image_info_json_lists_partitions_with_and_without_file_systems(run):
    result = run("image", "info", upstream_path("disk/tsk_volume_system.raw"), "--json")
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert info["volume_system"] == "mbr"
    parts = {p["index"]: p for p in info["partitions"]}
    assert parts[2]["fs_type"] is None and parts[2]["fs_error"]
    assert parts[6]["fs"]["type"] == "ext2"
    assert parts[6]["start_offset"] == 352 * 512


def test_image_info_gpt(run):
    result = run("image", "info", upstream_path("disk/gpt-disk.img"))
    assert result.exit_code == 0, result.output
    assert "volume system: gpt" in result.output
    assert "(unnamed)" in result.output


def test_image_info_on_random_bytes_is_one_error_line(tmp_path, run):
    fake = tmp_path / "x.E01"
    fake.write_bytes(os.urandom(4096))
    result = run("image", "info", fake)
    assert result.exit_code == 3
    assert result.output.count("\n") == 1
    assert result.output.startswith(f"Error: {fake}: named like an EWF image")


def test_image_info_on_vmdk_is_a_usage_error(tmp_path, run):
    vmdk = tmp_path / "disk.vmdk"
    vmdk.write_bytes(b"KDMV" + bytes(8192))
    result = run("image", "info", vmdk)
    assert result.exit_code == 2
    assert result.output == (f"Error: {vmdk}: VMDK images are not supported yet: convert with "
                             "qemu-img convert -O raw\n")


def test_collect_from_an_image_then_verify(case, run):
    result = run("collect", case["case"], "--source", upstream_path("disk/ext2.qcow2"),
                 "--key", case["key"], "--path", "**", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["outcomes"] == {"collected": 4, "symlink": 1}  # 3 files + the bodyfile
    result = run("verify", case["case"], "--trust", case["pub"])
    assert result.exit_code == 0, result.output


def test_collect_image_with_partition_deleted_and_bodyfile(case, run):
    result = run("collect", case["case"], "--source", upstream_path("disk/image.E01"),
                 "--key", case["key"], "--path", "**", "--include-deleted", "--bodyfile",
                 "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["outcomes"] == {"collected": 4, "unrecoverable": 3}
    result = run("collect", case["case"], "--source",
                 upstream_path("disk/tsk_volume_system.raw"), "--key", case["key"],
                 "--partition", "2", "--path", "**")
    assert result.exit_code == 2
    assert "partition 2 has no file system sealtrail can read" in result.output


def test_collect_from_an_image_without_file_system_exits_2(case, run):
    result = run("collect", case["case"], "--source", upstream_path("disk/gpt-disk.img"),
                 "--key", case["key"])
    assert result.exit_code == 2
    assert result.output.startswith("Error: ")
    assert "no partition holds a file system sealtrail can read" in result.output


def test_image_options_on_a_folder_source_are_refused(case, run, tmp_path):
    result = run("collect", case["case"], "--source", tmp_path, "--key", case["key"],
                 "--include-deleted")
    assert result.exit_code == 2
    assert "apply to image sources only" in result.output
