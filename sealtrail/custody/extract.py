"""Writing a bundle's members out to a folder, never outside it.

Invariants:
- The whole file is checked to be exactly its ZIP records (``BundleFile.check_layout``) and
  every member name (``check_names``) before anything is written: one departure, unsafe or
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

from sealtrail.custody.bundle_format import (
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
from sealtrail.custody.manifest import Manifest
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
        bundle.check_layout()  # every local header, in file order, before anything is written
        name_problems = check_names(bundle)
        if name_problems:
            raise name_problems[0]
        if trusted:
            manifest = Manifest.from_json_obj(open_manifest(bundle, trusted)[0], bundle.where)
            result.signature_checked = True
        else:
            manifest = read_unverified_manifest(bundle)
        expected = manifest_members(manifest.members, bundle.where)
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


def read_unverified_manifest(bundle: BundleFile) -> Manifest:
    """The manifest without checking who signed it (show or extract without --trust).

    Raises:
        ManifestInvalid: it cannot be read as a manifest (`Manifest.from_json_obj`).
    """
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
    return Manifest.from_json_obj(manifest, bundle.where)


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
