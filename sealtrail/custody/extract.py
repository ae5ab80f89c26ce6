"""Writing a bundle's members out to a folder, never outside it.

Invariants:
- Every member name is checked before anything is written (``check_names``): one unsafe or
  colliding name refuses the whole extraction, so nothing lands outside DEST.
- DEST must be new or empty; every folder below it is created here and every file is created
  with O_EXCL | O_NOFOLLOW, so no pre-existing link can redirect a write.
- Each member's SHA-256 is checked while it is written; a member that does not match the
  manifest is removed again and reported, never left behind looking like evidence.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sealtrail.custody.bundle_format import (
    MANIFEST_KIND,
    MANIFEST_MEMBER,
    MANIFEST_TYPE,
    MAX_ENVELOPE_BYTES,
)
from sealtrail.custody.bundle_reader import (
    BundleFile,
    check_names,
    manifest_members,
    open_manifest,
)
from sealtrail.custody.canonical import (
    NotCanonicalError,
    parse_canonical_json,
    pretty_json_bytes,
)
from sealtrail.custody.envelope import Envelope
from sealtrail.custody.keys import PublicKey
from sealtrail.errors import (
    CustodyError,
    HashMismatch,
    ManifestInvalid,
    MemberMissing,
    MemberUnexpected,
    UsageError,
)


@dataclass
class ExtractResult:
    written: list[str] = field(default_factory=list)
    problems: list[CustodyError] = field(default_factory=list)
    signature_checked: bool = False


def _prepare_dest(dest: Path) -> None:
    if dest.exists():
        if not dest.is_dir() or dest.is_symlink():
            raise UsageError(f"{dest} exists and is not a folder")
        if any(dest.iterdir()):
            raise UsageError(f"{dest} is not empty; extract into a new or empty folder")
    else:
        dest.mkdir(parents=True)


def extract_bundle(path: Path, dest: Path, trusted: Sequence[PublicKey]) -> ExtractResult:
    """Extract ``path`` into ``dest``. With no trusted keys the signature is not checked
    (the result says so); names and member hashes are always checked."""
    result = ExtractResult()
    with BundleFile(path) as bundle:
        name_problems = check_names(bundle)
        if name_problems:
            raise name_problems[0]
        if trusted:
            manifest, _ = open_manifest(bundle, trusted)
            result.signature_checked = True
        else:
            manifest = read_unverified_manifest(bundle)
        check_manifest_shape(manifest, bundle.where)
        expected = manifest_members(manifest, bundle.where)
        _prepare_dest(dest)
        root_fd = os.open(dest, os.O_RDONLY | os.O_DIRECTORY)
        try:
            for member in bundle.members:
                if member.name == MANIFEST_MEMBER:
                    continue
                record = expected.get(member.name)
                if record is None:
                    result.problems.append(
                        MemberUnexpected(f"{bundle.where} member {member.name}",
                                         "not in the manifest; not extracted")
                    )
                    continue
                problem = _write_member(bundle, member, record, root_fd)
                if problem:
                    result.problems.append(problem)
                else:
                    result.written.append(member.name)
        finally:
            os.close(root_fd)
        with open(dest / "manifest.json", "wb") as out:
            out.write(pretty_json_bytes(manifest))
            out.write(b"\n")
    return result


def read_unverified_manifest(bundle: BundleFile) -> dict:
    """The manifest without checking who signed it (show or extract without --trust)."""
    member = bundle.member(MANIFEST_MEMBER)
    if member is None:
        raise MemberMissing(bundle.where, f"no {MANIFEST_MEMBER}: the bundle was never sealed")
    envelope = Envelope.parse(bundle.read_member(member, MAX_ENVELOPE_BYTES), bundle.where)
    if envelope.payload_type != MANIFEST_TYPE:
        raise ManifestInvalid(bundle.where, "wrong payload type", expected=MANIFEST_TYPE,
                              observed=envelope.payload_type)
    try:
        manifest = parse_canonical_json(envelope.payload)
    except NotCanonicalError as exc:
        raise ManifestInvalid(f"{bundle.where} manifest", str(exc)) from exc
    return check_manifest_shape(manifest, bundle.where)


# What ``bundle show`` and ``bundle extract`` read of each record (docs/bundle-format.md 3).
_RECORD_FIELDS: dict[str, dict[str, type]] = {
    "members": {"name": str, "sha256": str, "size": int, "outcome": str},
    "entries": {"outcome": str},
}
_OPTIONAL_FIELDS: dict[str, type] = {"collection": dict, "entries": list, "totals": dict}


def _kind(kind: type) -> str:
    return {dict: "an object", list: "a list", str: "a string", int: "an integer"}[kind]


def check_manifest_shape(manifest: Any, where: str) -> dict[str, Any]:
    """Raise ``ManifestInvalid`` unless the manifest has the documented shape, as far as it is
    shown or extracted. An unsigned manifest can hold anything; reading it must not crash."""

    def bad(what: str) -> ManifestInvalid:
        return ManifestInvalid(f"{where} manifest", what)

    if not isinstance(manifest, dict) or manifest.get("type") != MANIFEST_KIND:
        raise bad("not a sealtrail bundle manifest")
    if manifest.get("version") != 1:
        raise ManifestInvalid(f"{where} manifest", "unsupported version", expected=1,
                              observed=manifest.get("version"))
    if not isinstance(manifest.get("members"), list):
        raise bad("has no member list")
    for name, kind in _OPTIONAL_FIELDS.items():
        if not isinstance(manifest.get(name, kind()), kind):
            raise bad(f"{name} is not {_kind(kind)}")
    if not isinstance(manifest.get("totals", {}).get("outcomes", {}), dict):
        raise bad("totals.outcomes is not an object")
    for name, fields in _RECORD_FIELDS.items():
        for i, record in enumerate(manifest.get(name, [])):
            if not isinstance(record, dict):
                raise bad(f"{name}[{i}] is not an object")
            if not isinstance(record.get("source", {}), dict):
                raise bad(f"{name}[{i}].source is not an object")
            for field_name, kind in fields.items():
                value = record.get(field_name)
                if not isinstance(value, kind) or isinstance(value, bool):
                    raise bad(f"{name}[{i}].{field_name} is not {_kind(kind)}")
    return manifest


def _open_parent(root_fd: int, parts: list[str]) -> int:
    """Open (creating as needed) the folder ``parts`` below ``root_fd``, never via a link."""
    fd = os.dup(root_fd)
    for part in parts:
        try:
            os.mkdir(part, 0o755, dir_fd=fd)
        except FileExistsError:
            pass
        try:
            next_fd = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
        finally:
            os.close(fd)
        fd = next_fd
    return fd


def _write_member(bundle: BundleFile, member, record: dict, root_fd: int) -> CustodyError | None:
    parts = member.name.split("/")
    parent_fd = _open_parent(root_fd, parts[:-1])
    try:
        fd = os.open(parts[-1], os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o444,
                     dir_fd=parent_fd)
        digest = hashlib.sha256()
        try:
            for chunk in bundle.iter_raw(member):
                digest.update(chunk)
                os.write(fd, chunk)
        finally:
            os.close(fd)
        if digest.hexdigest() != record["sha256"]:
            os.unlink(parts[-1], dir_fd=parent_fd)
            return HashMismatch(f"{bundle.where} member {member.name}",
                                "SHA-256 differs from the manifest; not extracted",
                                expected=record["sha256"], observed=digest.hexdigest())
        return None
    finally:
        os.close(parent_fd)
