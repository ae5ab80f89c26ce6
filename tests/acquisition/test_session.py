"""The one custody sequence (`acquisition.session.run_sealed`) for every kind of collection.

Each kind (folder, disk image, whole-image acquisition) is made to fail at the seal, with the
ledger refusing the ``collection_failed`` entry too: the error must say both, and the
``.partial`` file must be kept. Before the sequence was shared, the image path extended its
reason string with the ledger failure and never showed it.
"""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from sealtrail.acquisition.acquire import acquire_image
from sealtrail.acquisition.image_collection import ImageJob, image_requested, run_image_collection
from sealtrail.custody.bundle_writer import BundleWriter
from sealtrail.custody.case import Case
from sealtrail.custody.ledger import Ledger
from sealtrail.errors import CollectionError
from tests.conftest import collect, make_linux_host

IMAGES = Path(__file__).resolve().parents[2] / "fixtures" / "images"


def _folder(case: Case, key, tmp_path: Path):
    return collect(case, key, make_linux_host(tmp_path / "host"), paths=("etc/**",))


def _image(case: Case, key, tmp_path: Path):
    job = ImageJob(image=str(IMAGES / "small.fat.img"), paths=("**",))
    return run_image_collection(case, key, job, requested=image_requested(
        job.artifacts, job.paths, job.os_name, job.max_file_size, job))


def _acquisition(case: Case, key, tmp_path: Path):
    image = tmp_path / "disk.raw"
    image.write_bytes(b"\x5a" * 300_000)
    return acquire_image(case, key, image)


KINDS = {"folder": _folder, "image": _image, "acquisition": _acquisition}


@pytest.fixture
def case(tmp_path, keyring):
    return Case.init(tmp_path / "case", title="t", examiner="Alice", key=keyring.alice.key)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_failed_seal_and_failed_ledger_record_are_both_reported(kind, case, keyring, tmp_path,
                                                               monkeypatch):
    def disk_error(self, manifest, key):  # not ENOSPC: out of space removes the .partial
        raise OSError(errno.EIO, "Input/output error")

    real_append = Ledger.append

    def refuse_failure_record(self, key, action, *args, **kwargs):
        if action == "collection_failed":
            raise OSError(errno.EIO, "Input/output error")
        return real_append(self, key, action, *args, **kwargs)

    monkeypatch.setattr(BundleWriter, "seal", disk_error)
    monkeypatch.setattr(Ledger, "append", refuse_failure_record)
    with pytest.raises(CollectionError) as caught:
        KINDS[kind](case, keyring.alice.key, tmp_path)
    text = str(caught.value)
    assert "failed: Input/output error" in text
    assert "unsealed data kept in" in text
    assert "the ledger could not record the failure either: [Errno 5] Input/output error" in text
    assert [p.name.endswith(".stb.partial") for p in case.bundles_dir.iterdir()] == [True]
    assert [e.action for e in case.ledger().entries()] == ["case_opened", "collection_started"]


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_failed_seal_is_recorded_in_the_ledger_by_every_kind(kind, case, keyring, tmp_path,
                                                            monkeypatch):
    def disk_error(self, manifest, key):  # not ENOSPC: out of space removes the .partial
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(BundleWriter, "seal", disk_error)
    with pytest.raises(CollectionError, match="not sealed|failed") as caught:
        KINDS[kind](case, keyring.alice.key, tmp_path)
    entries = case.ledger().entries()
    assert [e.action for e in entries] == ["case_opened", "collection_started",
                                           "collection_failed"]
    details = entries[-1].fields["details"]
    assert "Input/output error" in details["reason"]
    assert details["partial_file"].endswith(".stb.partial")
    assert "unsealed data kept in" in str(caught.value)
