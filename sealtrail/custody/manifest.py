"""The bundle manifest as a typed object (docs/bundle-format.md section 4).

Collection code builds a `Manifest`; `Manifest.to_json_obj` is the one place it becomes the JSON
object that is signed (``bundle_writer.seal`` turns that into canonical bytes); readers get one
back from `Manifest.from_json_obj`.

Invariants:

- ``totals`` is never stored: `Manifest.totals` computes it from ``members`` and ``entries``
  whenever the manifest is serialised, so a written manifest's totals always agree with its
  records (the rule a verifier checks).
- Reading is lenient and lossless: every documented field goes into its attribute, and any
  field this version does not know is kept in ``extra`` and written back unchanged, so reading
  and re-serialising a manifest of any version-1 writer gives the same object. Nothing about a
  manifest's integrity is decided here: that is ``bundle_reader.check_bundle``'s job, and a
  signed manifest is only ever read after its signature was checked, or shown as unverified.
- Reading raises `ManifestInvalid` only where a field that readers rely on (``bundle show``,
  ``bundle extract``, ingest) has the wrong type, so hostile manifests are reported, never
  crash a reader.

Member and entry records stay JSON objects (``dict``): their ``source`` fields differ by source
kind (folder, image, acquisition, generated) and are written by the collection code that knows
them; `Manifest` checks the fields every record has.
"""

from __future__ import annotations

import socket
import sys
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sealtrail import TOOL_NAME, __version__
from sealtrail.custody.bundle_format import MANIFEST_KIND, utc_text
from sealtrail.errors import ManifestInvalid

MANIFEST_VERSION = 1

#: The fields of ``collection`` in the order the format lists them.
_COLLECTION_FIELDS = (
    "examiner", "key_id", "key_name", "host", "os", "source", "collector_host", "tool",
    "tool_version", "python", "command_line", "requested", "started", "finished", "clock",
    "oses",
)
_TOP_FIELDS = ("type", "version", "bundle_id", "case_id", "collection", "artifacts", "members",
               "entries", "totals")

# What every member and entry record has (checked on reading, so readers may rely on it).
_RECORD_FIELDS: dict[str, dict[str, type]] = {
    "members": {"name": str, "sha256": str, "size": int, "outcome": str},
    "entries": {"outcome": str},
}


def _kind(kind: type) -> str:
    return {dict: "an object", list: "a list", str: "a string", int: "an integer"}[kind]


def _is(value: object, kind: type) -> bool:
    return isinstance(value, kind) and not isinstance(value, bool)


def outcome_counts(members: Iterable[Mapping[str, Any]],
                   entries: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """For each outcome that occurs among the records, how many records have it (sorted)."""
    counts = Counter(m["outcome"] for m in members)
    counts.update(e["outcome"] for e in entries)
    return dict(sorted(counts.items()))


@dataclass(slots=True)
class CollectionContext:
    """The manifest's ``collection`` object: who collected, from where, with what, and when.

    ``started`` and ``finished`` are kept as the UTC text the manifest holds
    (``YYYY-MM-DDTHH:MM:SS.ffffffZ``); `started_at`/`finished_at` parse them.
    """

    examiner: str | None
    key_id: str | None
    key_name: str | None
    host: str | None
    os: str | None
    source: dict[str, Any]
    requested: dict[str, Any]
    started: str | None
    finished: str | None
    collector_host: str | None = None
    tool: str | None = None
    tool_version: str | None = None
    python: str | None = None
    command_line: list[str] = field(default_factory=list)
    clock: str | None = "system"
    oses: list[str] | None = None  # only when partitions hold different systems
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def here(cls, *, examiner: str, key_id: str, key_name: str, host: str | None,
             os_name: str | None, source: dict[str, Any], requested: dict[str, Any],
             started: datetime, finished: datetime) -> CollectionContext:
        """The context of a collection run by this process on this machine."""
        return cls(
            examiner=examiner, key_id=key_id, key_name=key_name, host=host, os=os_name,
            source=source, requested=requested, started=utc_text(started),
            finished=utc_text(finished), collector_host=socket.gethostname(), tool=TOOL_NAME,
            tool_version=__version__, python=sys.version.split()[0],
            command_line=list(sys.argv), clock="system",
        )

    @property
    def started_at(self) -> datetime | None:
        return _parse_time(self.started)

    @property
    def finished_at(self) -> datetime | None:
        return _parse_time(self.finished)

    def to_json_obj(self) -> dict[str, Any]:
        out = {name: getattr(self, name) for name in _COLLECTION_FIELDS}
        if self.oses is None:
            del out["oses"]
        out["command_line"] = list(self.command_line)
        return {**self.extra, **out}

    @classmethod
    def from_json_obj(cls, obj: Mapping[str, Any], where: str) -> CollectionContext:
        values = dict(obj)
        known = {name: values.pop(name, None) for name in _COLLECTION_FIELDS}
        for name in ("source", "requested"):
            if known[name] is None:
                known[name] = {}
            elif not isinstance(known[name], dict):
                raise ManifestInvalid(where, f"collection.{name} is not an object")
        command_line = known.pop("command_line")
        return cls(**known, command_line=list(command_line or []), extra=values)


@dataclass(slots=True)
class Manifest:
    """A bundle manifest (docs/bundle-format.md section 4); see the module docstring."""

    bundle_id: str
    case_id: str
    collection: CollectionContext
    artifacts: list[dict[str, Any]] = field(default_factory=list)
    members: list[dict[str, Any]] = field(default_factory=list)
    entries: list[dict[str, Any]] = field(default_factory=list)
    version: int = MANIFEST_VERSION
    extra: dict[str, Any] = field(default_factory=dict)
    #: ``totals`` as a read manifest stated them (None when built here). Shown, never written:
    #: serialising computes them again, and a verifier compares the two.
    stored_totals: dict[str, Any] | None = None

    def totals(self) -> dict[str, Any]:
        """``totals`` as the format defines it: member count, their bytes, outcome counts."""
        return {
            "members": len(self.members),
            "bytes": sum(m["size"] for m in self.members),
            "outcomes": outcome_counts(self.members, self.entries),
        }

    def to_json_obj(self, *, as_read: bool = False) -> dict[str, Any]:
        """The JSON object that is signed: the one serialisation of a manifest.

        ``as_read`` puts back the totals a read manifest stated (to show a manifest as it is,
        wrong totals included); a manifest to be signed never uses it.
        """
        totals = self.stored_totals if as_read and self.stored_totals is not None else None
        return {
            **self.extra,
            "type": MANIFEST_KIND,
            "version": self.version,
            "bundle_id": self.bundle_id,
            "case_id": self.case_id,
            "collection": self.collection.to_json_obj(),
            "artifacts": self.artifacts,
            "members": self.members,
            "entries": self.entries,
            "totals": totals if totals is not None else self.totals(),
        }

    @classmethod
    def from_json_obj(cls, obj: object, where: str) -> Manifest:
        """Read a manifest object leniently (module docstring).

        Raises:
            ManifestInvalid: not a sealtrail manifest of version 1, or a field readers rely
                on has the wrong type; ``where`` names the bundle.
        """
        at = f"{where} manifest"
        if not isinstance(obj, dict) or obj.get("type") != MANIFEST_KIND:
            raise ManifestInvalid(at, "not a sealtrail bundle manifest")
        if obj.get("version") != MANIFEST_VERSION:
            raise ManifestInvalid(at, "unsupported version", expected=MANIFEST_VERSION,
                                  observed=obj.get("version"))
        values = dict(obj)
        known = {name: values.pop(name, None) for name in _TOP_FIELDS}
        if not isinstance(known["members"], list):
            raise ManifestInvalid(at, "has no member list")
        for name, kind in (("collection", dict), ("entries", list), ("totals", dict),
                           ("artifacts", list)):
            if known[name] is not None and not isinstance(known[name], kind):
                raise ManifestInvalid(at, f"{name} is not {_kind(kind)}")
        outcomes = (known["totals"] or {}).get("outcomes", {})
        if not isinstance(outcomes, dict):
            raise ManifestInvalid(at, "totals.outcomes is not an object")
        entries = known["entries"] or []
        for name, records in (("members", known["members"]), ("entries", entries)):
            _check_records(name, records, at)
        for name in ("bundle_id", "case_id"):
            if known[name] is not None and not isinstance(known[name], str):
                raise ManifestInvalid(at, f"{name} is not a string")
        return cls(
            bundle_id=known["bundle_id"] or "", case_id=known["case_id"] or "",
            collection=CollectionContext.from_json_obj(known["collection"] or {}, at),
            artifacts=list(known["artifacts"] or []), members=known["members"],
            entries=entries, version=MANIFEST_VERSION, extra=values,
            stored_totals=known["totals"],
        )


def _check_records(name: str, records: list[Any], at: str) -> None:
    fields = _RECORD_FIELDS[name]
    for i, record in enumerate(records):
        if not isinstance(record, dict):
            raise ManifestInvalid(at, f"{name}[{i}] is not an object")
        if not isinstance(record.get("source", {}), dict):
            raise ManifestInvalid(at, f"{name}[{i}].source is not an object")
        for field_name, kind in fields.items():
            if not _is(record.get(field_name), kind):
                raise ManifestInvalid(at, f"{name}[{i}].{field_name} is not {_kind(kind)}")


def _parse_time(text: str | None) -> datetime | None:
    if not isinstance(text, str) or not text.endswith("Z"):
        return None
    try:
        return datetime.fromisoformat(text[:-1]).replace(tzinfo=UTC)
    except ValueError:
        return None
