"""The typed manifest (custody/manifest.py): lossless lenient reading, totals computed, shapes."""

from __future__ import annotations

import copy
from datetime import UTC, datetime

import pytest

from sealtrail.custody.canonical import canonical_json
from sealtrail.custody.manifest import CollectionContext, Manifest
from sealtrail.errors import ManifestInvalid
from tests.acquisition.test_collection import manifest_of

WHERE = "bundle B.stb"


def test_a_sealed_manifest_reads_and_serialises_back_to_the_same_bytes(sealed_case):
    obj = manifest_of(sealed_case.bundle, sealed_case.keyring.alice.key)
    manifest = Manifest.from_json_obj(copy.deepcopy(obj), WHERE)
    assert canonical_json(manifest.to_json_obj()) == canonical_json(obj)
    assert manifest.bundle_id == sealed_case.result.bundle_id
    assert manifest.collection.examiner == "Alice"
    assert manifest.collection.finished_at == sealed_case.result.finished.replace(
        microsecond=manifest.collection.finished_at.microsecond)
    assert manifest.totals() == obj["totals"]


def test_fields_of_another_writer_are_kept_and_written_back(sealed_case):
    obj = manifest_of(sealed_case.bundle, sealed_case.keyring.alice.key)
    obj["future_top"] = {"a": 1}
    obj["collection"]["future_field"] = [1, 2]
    manifest = Manifest.from_json_obj(copy.deepcopy(obj), WHERE)
    assert manifest.extra == {"future_top": {"a": 1}}
    assert manifest.collection.extra == {"future_field": [1, 2]}
    assert canonical_json(manifest.to_json_obj()) == canonical_json(obj)


def test_totals_are_computed_never_stored():
    context = CollectionContext.here(
        examiner="A", key_id="0" * 16, key_name="a", host=None, os_name="linux",
        source={"kind": "directory", "path": "/x"}, requested={},
        started=datetime(2026, 1, 1, tzinfo=UTC), finished=datetime(2026, 1, 1, tzinfo=UTC))
    manifest = Manifest("b", "c", context, members=[
        {"name": "data/a", "sha256": "0" * 64, "size": 3, "outcome": "collected"},
        {"name": "data/b", "sha256": "0" * 64, "size": 4, "outcome": "partial"}],
        entries=[{"outcome": "missing"}, {"outcome": "partial"}])
    assert manifest.to_json_obj()["totals"] == {
        "members": 2, "bytes": 7, "outcomes": {"collected": 1, "missing": 1, "partial": 2}}
    manifest.members.pop()
    assert manifest.to_json_obj()["totals"]["members"] == 1
    assert "oses" not in manifest.to_json_obj()["collection"]
    assert manifest.collection.started_at == datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(("edit", "message"), [
    (lambda m: m.update(type="x"), "not a sealtrail bundle manifest"),
    (lambda m: m.update(version=2), "unsupported version"),
    (lambda m: m.update(members={}), "has no member list"),
    (lambda m: m.update(entries={}), "entries is not a list"),
    (lambda m: m.update(collection=[]), "collection is not an object"),
    (lambda m: m["collection"].update(source="x"), "collection.source is not an object"),
    (lambda m: m.update(totals={"outcomes": []}), "totals.outcomes is not an object"),
    (lambda m: m["members"].insert(0, 1), "members[0] is not an object"),
    (lambda m: m["members"][0].update(size=True), "members[0].size is not an integer"),
    (lambda m: m["members"][0].update(source=[]), "members[0].source is not an object"),
    (lambda m: m.update(entries=[{"outcome": 3}]), "entries[0].outcome is not a string"),
    (lambda m: m.update(case_id=5), "case_id is not a string"),
])
def test_hostile_shapes_are_reported_not_crashed_on(sealed_case, edit, message):
    obj = manifest_of(sealed_case.bundle, sealed_case.keyring.alice.key)
    edit(obj)
    with pytest.raises(ManifestInvalid, match=message.replace("[", r"\[").replace("]", r"\]")):
        Manifest.from_json_obj(obj, WHERE)


def test_a_read_manifest_can_be_shown_with_the_totals_it_stated(sealed_case):
    obj = manifest_of(sealed_case.bundle, sealed_case.keyring.alice.key)
    obj["totals"]["members"] += 1  # wrong, as a tampered manifest may be
    manifest = Manifest.from_json_obj(copy.deepcopy(obj), WHERE)
    assert manifest.to_json_obj(as_read=True) == obj
    assert manifest.to_json_obj()["totals"]["members"] == obj["totals"]["members"] - 1
