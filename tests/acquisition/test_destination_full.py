"""Running out of space in the case's bundle folder: one clear error naming the folder
(`DestinationFull`), the ``.partial`` bundle removed, and ``collection_failed`` saying so.
Before, the error named only the kept ``.partial`` (which kept the disk full), and a write
error inside a file's copy was taken for a read error of that file (``partial``)."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from sealtrail.acquisition.image_collection import ImageJob, image_requested, run_image_collection
from sealtrail.custody.bundle_writer import BundleWriter
from sealtrail.custody.case import Case
from sealtrail.custody.verify import check_case
from sealtrail.errors import DestinationFull
from tests.acquisition.test_session import KINDS
from tests.conftest import collect, make_linux_host
from tests.mounts import tmpfs

IMAGES = Path(__file__).resolve().parents[2] / "fixtures" / "images"


def _assert_failed_and_removed(case: Case, caught: pytest.ExceptionInfo[DestinationFull]):
    error = caught.value
    assert error.destination == str(case.bundles_dir)
    assert error.partial_removed is True
    assert str(error).startswith(f"no space left in {case.bundles_dir}: collection "
                                 f"{error.bundle_id} not sealed, the partial bundle was removed")
    assert list(case.bundles_dir.iterdir()) == []
    entries = case.ledger().entries()
    assert [e.action for e in entries][-2:] == ["collection_started", "collection_failed"]
    details = entries[-1].fields["details"]
    assert details["partial_removed"] is True
    assert details["partial_file"] == f"{error.bundle_id}.stb.partial"
    assert "No space left on device" in details["reason"]


def test_folder_collection_into_a_full_file_system(tmp_path, keyring):
    host = make_linux_host(tmp_path / "host")
    (host / "var" / "log" / "big.log").write_bytes(os.urandom(6_000_000))
    with tmpfs(tmp_path / "small", size="2m") as small:
        case = Case.init(small / "case", title="t", examiner="Alice", key=keyring.alice.key)
        with pytest.raises(DestinationFull) as caught:
            collect(case, keyring.alice.key, host, paths=("var/log/**",))
        _assert_failed_and_removed(case, caught)
        assert check_case(case.root, [keyring.alice.key.public]).ok


def test_image_collection_into_a_full_file_system(tmp_path, keyring):
    """The parent reads a raw image's ranges into the bundle itself: the bundle's ENOSPC must
    end the run, not pass for a short read of the image (``partial``)."""
    job = ImageJob(image=str(IMAGES / "web01.ext4.img"), paths=("**",))
    with tmpfs(tmp_path / "small", size="256k") as small:
        case = Case.init(small / "case", title="t", examiner="Alice", key=keyring.alice.key)
        with pytest.raises(DestinationFull) as caught:
            run_image_collection(case, keyring.alice.key, job, requested=image_requested(
                job.artifacts, job.paths, job.os_name, job.max_file_size, job))
        _assert_failed_and_removed(case, caught)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_kind_removes_the_partial_when_the_seal_finds_no_space(kind, tmp_path, keyring,
                                                                     monkeypatch):
    def disk_full(self, manifest, key):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(BundleWriter, "seal", disk_full)
    case = Case.init(tmp_path / "case", title="t", examiner="Alice", key=keyring.alice.key)
    with pytest.raises(DestinationFull) as caught:
        KINDS[kind](case, keyring.alice.key, tmp_path)
    _assert_failed_and_removed(case, caught)


def test_cli_says_it_in_one_error_line(tmp_path, keyring):
    from click.testing import CliRunner

    from sealtrail.cli.main import cli

    host = make_linux_host(tmp_path / "host")
    (host / "var" / "log" / "big.log").write_bytes(os.urandom(3_000_000))
    with tmpfs(tmp_path / "small", size="1m") as small:
        Case.init(small / "case", title="t", examiner="Alice", key=keyring.alice.key)
        result = CliRunner().invoke(cli, [
            "collect", str(small / "case"), "--source", str(host), "--key",
            str(keyring.alice.private), "--path", "var/log/**"])
        left = list((small / "case" / "bundles").iterdir())
    assert result.exit_code == 3, result.output
    error_lines = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(error_lines) == 1
    assert error_lines[0].startswith(f"Error: no space left in {small / 'case' / 'bundles'}: ")
    assert error_lines[0].endswith(" not sealed, the partial bundle was removed; free space "
                                   "there or use a case on a larger disk")
    assert left == []
