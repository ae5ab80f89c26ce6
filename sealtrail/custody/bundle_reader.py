"""Reading and checking a bundle.

Order of checks for one bundle (``check_bundle``), each reported with the bundle and member:
1. The file is exactly the ZIP records the format allows, each starting where the previous
   ends: no bytes before the first local header, between records or after the end records, no
   comment, local headers agreeing with the central directory (``zip_layout``; the first
   departure stops the check, since offsets can no longer be trusted, and is then the only
   problem reported). The end records and central directory are checked when the bundle is
   opened; each local header right before its member's bytes are read (so the reads follow the
   file in order), and those of members not read (unexpected, wrong size, or after a manifest
   problem) at the end, in file order (``BundleFile.check_layout``). Member names
   are in their one canonical encoding (``bundle_format.unsafe_member_name_reason``: under
   ``data/`` or ``volatile/``, no absolute paths, ``..``, drive letters, NUL, backslashes, no
   needless ``%XX``, ``~N`` only as a needed de-duplication suffix), unique after case
   folding, and ``manifest.dsse.json`` is the last member.
2. ``manifest.dsse.json`` exists, is at most ``MAX_ENVELOPE_BYTES`` (a larger one is refused
   unread, so a verifier's memory is bounded) and is a DSSE envelope of the manifest payload
   type, signed by a trusted key (signature checked over the exact payload bytes before they
   are parsed).
3. The payload is canonical JSON of the expected kind and version, naming this bundle id; its
   ``totals`` match its member and entry records; its base64 fields are strict.
4. Member set: every manifest member is in the ZIP (else MemberMissing); every ZIP member is in
   the manifest (else MemberUnexpected).
5. Each member is stored uncompressed, its local header names the same member as the central
   directory, its size equals the manifest's, and the SHA-256 of its bytes equals the manifest's.
   Bytes are read raw from their offset (not through the ZIP CRC), so a flipped byte is
   reported as the SHA-256 mismatch it is.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from sealtrail.collectors.streams import WindowStream
from sealtrail.custody.bundle_format import (
    MANIFEST_KIND,
    MANIFEST_MEMBER,
    MANIFEST_TYPE,
    MAX_ENVELOPE_BYTES,
    fold_name,
    split_dedup_suffix,
    unsafe_member_name_reason,
)
from sealtrail.custody.canonical import NotCanonicalError, parse_canonical_json, strict_b64decode
from sealtrail.custody.envelope import Envelope, VerifiedPayload
from sealtrail.custody.keys import PublicKey
from sealtrail.custody.zip_layout import ZipMember, check_local, read_directory
from sealtrail.errors import (
    ContainerInvalid,
    CustodyError,
    HashMismatch,
    ManifestInvalid,
    MemberMissing,
    MemberUnexpected,
    SizeMismatch,
    UnsafeMemberPath,
)

__all__ = ["BundleCheck", "BundleFile", "MemberWindow", "ZipMember", "check_bundle"]

_STORED = 0
_CHUNK = 1 << 20
# Base64 fields of a manifest's ``source`` objects (section 4 of the format).
_SOURCE_B64_FIELDS = ("path_b64", "link_target_b64")

@dataclass
class BundleCheck:
    """What checking one bundle found. ``problems`` empty means the bundle verified."""

    path: Path
    bundle_id: str | None = None
    manifest: dict[str, Any] | None = None
    manifest_sha256: str | None = None  # of the payload bytes (the ledger records it)
    signer: PublicKey | None = None
    members_checked: int = 0
    bytes_checked: int = 0
    problems: list[CustodyError] = field(default_factory=list)


class BundleFile:
    """An opened bundle: its ZIP directory and raw access to member bytes.

    Opening reads and checks the end records and central directory (at the end of the file).
    A member's local header is read and checked (``zip_layout.check_local``) the first time
    its bytes are asked for, just before them; ``check_layout`` checks every one, in file
    order, for readers that must know the whole file is its records before they use any of it.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = path = Path(path)
        self.where = f"bundle {path.name}"
        try:
            self._file: BinaryIO = open(path, "rb")  # noqa: SIM115 - closed in close()
        except OSError as exc:
            raise ManifestInvalid(self.where, f"cannot open: {exc.strerror}") from exc
        try:
            self.members: list[ZipMember] = read_directory(self._file, self.where)
        except OSError as exc:
            self._file.close()
            raise ContainerInvalid(self.where, f"cannot read: {exc.strerror}") from exc
        except CustodyError:
            self._file.close()
            raise
        self._data_offsets: dict[int, int] = {}  # by member index, local header checked
        self._departures: dict[int, ContainerInvalid] = {}  # by member index

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> BundleFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _data_offset(self, member: ZipMember) -> int:
        """Where the member's bytes begin; its local header is checked the first time.

        Raises:
            ContainerInvalid: the header, or where the member's record ends, departs from the
                format (raised again on every later call for this member).
        """
        offset = self._data_offsets.get(member.index)
        if offset is not None:
            return offset
        if self.members[member.index] != member:
            raise ValueError(f"{member.name} is not a member of {self.where}")
        if member.index in self._departures:
            raise self._departures[member.index]
        try:
            offset = check_local(self._file, self.members, member.index, self.where)
        except OSError as exc:
            departure = ContainerInvalid(self.where, f"cannot read: {exc.strerror}")
            self._departures[member.index] = departure
            raise departure from exc
        except ContainerInvalid as exc:
            self._departures[member.index] = exc
            raise
        self._data_offsets[member.index] = offset
        return offset

    def check_layout(self) -> None:
        """Check every local header not checked yet, in file order: with the checks made at
        opening, the whole of docs/bundle-format.md section 1.1, first departure raised (the
        one a check of the whole file from its first byte finds first).

        Raises:
            ContainerInvalid: that departure.
        """
        for member in self.members:
            self._data_offset(member)

    def iter_raw(self, member: ZipMember) -> Iterator[bytes]:
        """The stored bytes of ``member``, in chunks; STORED members only."""
        if member.compress_type != _STORED:
            raise ManifestInvalid(
                f"{self.where} member {member.name}", "member is compressed; bundles store only"
            )
        offset = self._data_offset(member)
        self._file.seek(offset)
        remaining = member.compress_size
        while remaining > 0:
            chunk = self._file.read(min(_CHUNK, remaining))
            if not chunk:
                raise SizeMismatch(
                    f"{self.where} member {member.name}",
                    "bundle file ends inside the member",
                    expected=member.compress_size,
                    observed=member.compress_size - remaining,
                )
            remaining -= len(chunk)
            yield chunk

    def open_member(self, member: ZipMember) -> MemberWindow:
        """A read-only, seekable stream of a stored member's bytes (its own file handle)."""
        if member.compress_type != _STORED:
            raise ManifestInvalid(
                f"{self.where} member {member.name}", "member is compressed; bundles store only"
            )
        return MemberWindow(self.path, self._data_offset(member), member.compress_size)

    def read_member(self, member: ZipMember, limit: int) -> bytearray:
        """The whole member, read into one buffer of its size (no second copy: a manifest
        envelope can be gigabytes); more than ``limit`` bytes is refused unread."""
        if member.compress_size > limit:
            raise ManifestInvalid(f"{self.where} member {member.name}",
                                  f"larger than the {limit} bytes the format allows",
                                  expected=limit, observed=member.compress_size)
        out = bytearray(member.compress_size)
        view, at = memoryview(out), 0
        for chunk in self.iter_raw(member):
            view[at:at + len(chunk)] = chunk
            at += len(chunk)
        view.release()
        return out

    def member(self, name: str) -> ZipMember | None:
        for member in self.members:
            if member.name == name:
                return member
        return None


class MemberWindow(WindowStream):
    """Bytes ``offset .. offset + size`` of a bundle file, as a read-only seekable stream."""

    def __init__(self, path: Path, offset: int, size: int) -> None:
        super().__init__(size)
        self._file = open(path, "rb", buffering=0)  # noqa: SIM115 - closed in close()
        self._start = offset

    def _read_at(self, position: int, view: memoryview) -> int:
        self._file.seek(self._start + position)
        return self._file.readinto(view) or 0

    def close(self) -> None:
        if not self.closed:
            self._file.close()
        super().close()


def check_names(bundle: BundleFile) -> list[CustodyError]:
    """Step 1: names that are unsafe or not canonical, that collide exactly or after case
    folding, or that carry a ``~N`` suffix no earlier member made necessary."""
    problems: list[CustodyError] = []
    seen: dict[str, str] = {}
    for member in bundle.members:
        where = f"{bundle.where} member {member.name!r}"
        reason = unsafe_member_name_reason(member.name)
        if reason:
            problems.append(UnsafeMemberPath(where, f"unsafe member name: {reason}"))
            continue
        key = fold_name(member.name)
        if key in seen:
            problems.append(
                UnsafeMemberPath(where, f"duplicate member name (collides with {seen[key]!r})")
            )
        elif needless := _needless_suffix(member.name, seen):
            problems.append(UnsafeMemberPath(where, needless))
        seen[key] = member.name
    return problems


def _needless_suffix(name: str, seen: dict[str, str]) -> str | None:
    """The writer gives ``base~N`` only when ``base``, ``base~2`` .. ``base~(N-1)`` (after case
    folding) were all taken by earlier members; any other ``~N`` is a second spelling."""
    base, number = split_dedup_suffix(name)
    for n in range(1, number):
        earlier = base if n == 1 else f"{base}~{n}"
        if fold_name(earlier) not in seen:
            return (f"unsafe member name: suffix ~{number} without an earlier member "
                    f"{earlier!r} (case folded) that made it necessary")
    return None


def check_order(bundle: BundleFile) -> list[CustodyError]:
    """Step 1: ``manifest.dsse.json`` is the last member (a missing one is step 2's to say)."""
    names = [member.name for member in bundle.members]
    if MANIFEST_MEMBER not in names or names[-1] == MANIFEST_MEMBER:
        return []
    return [ContainerInvalid(bundle.where, f"{MANIFEST_MEMBER} is not the last member",
                             expected=MANIFEST_MEMBER, observed=names[-1])]


def check_totals(manifest: dict[str, Any], where: str) -> list[CustodyError]:
    """Step 3: ``totals`` says what the member and entry records say (count, bytes, outcomes)."""
    members, entries = manifest["members"], manifest.get("entries")
    if not isinstance(entries, list) or not all(
        isinstance(record, dict) and isinstance(record.get("outcome"), str)
        for record in [*members, *entries]
    ):
        return [ManifestInvalid(f"{where} manifest", "malformed member or entry records")]
    expected = {
        "members": len(members),
        "bytes": sum(m.get("size", 0) for m in members if isinstance(m.get("size"), int)),
        "outcomes": dict(Counter(r["outcome"] for r in [*members, *entries])),
    }
    totals = manifest.get("totals")
    if not isinstance(totals, dict) or set(totals) != set(expected):
        return [ManifestInvalid(f"{where} manifest", "totals must hold exactly members, bytes, "
                                "outcomes", expected=sorted(expected),
                                observed=sorted(totals) if isinstance(totals, dict) else totals)]
    return [
        ManifestInvalid(f"{where} manifest", f"totals.{key} does not match the records",
                        expected=value, observed=totals[key])
        for key, value in expected.items() if totals[key] != value
    ]


def check_manifest_base64(manifest: dict[str, Any], where: str) -> list[CustodyError]:
    """Step 3: every ``path_b64`` and ``link_target_b64`` of a source is strict base64."""
    problems: list[CustodyError] = []
    for kind in ("members", "entries"):
        records = manifest.get(kind)
        for i, record in enumerate(records if isinstance(records, list) else []):
            source = record.get("source") if isinstance(record, dict) else None
            for key in _SOURCE_B64_FIELDS:
                if not isinstance(source, dict) or key not in source:
                    continue
                try:
                    strict_b64decode(source[key])
                except NotCanonicalError as exc:
                    problems.append(ManifestInvalid(
                        f"{where} manifest {kind}[{i}]", f"source.{key} is not strict base64: "
                        f"{exc}", observed=source[key]))
    return problems


def open_manifest(
    bundle: BundleFile, trusted: Iterable[PublicKey]
) -> tuple[dict[str, Any], VerifiedPayload]:
    """Steps 2-3: the signed manifest, verified then parsed."""
    member = bundle.member(MANIFEST_MEMBER)
    if member is None:
        raise MemberMissing(bundle.where, f"no {MANIFEST_MEMBER}: the bundle was never sealed")
    envelope = Envelope.parse(bundle.read_member(member, MAX_ENVELOPE_BYTES), bundle.where)
    verified = envelope.verify(MANIFEST_TYPE, trusted, f"{bundle.where} manifest")
    try:
        manifest = parse_canonical_json(verified.payload)
    except NotCanonicalError as exc:
        raise ManifestInvalid(f"{bundle.where} manifest", str(exc)) from exc
    if not isinstance(manifest, dict) or manifest.get("type") != MANIFEST_KIND:
        raise ManifestInvalid(f"{bundle.where} manifest", "not a sealtrail bundle manifest")
    if manifest.get("version") != 1:
        raise ManifestInvalid(
            f"{bundle.where} manifest", "unsupported version", expected=1,
            observed=manifest.get("version"),
        )
    if not isinstance(manifest.get("members"), list):
        raise ManifestInvalid(f"{bundle.where} manifest", "has no member list")
    return manifest, verified


def manifest_members(records: list[Any], where: str) -> dict[str, dict[str, Any]]:
    """The member records by name; a malformed record or a name listed twice is a problem."""
    out: dict[str, dict[str, Any]] = {}
    for item in records:
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("name"), str)
            or not isinstance(item.get("sha256"), str)
            or not isinstance(item.get("size"), int)
        ):
            raise ManifestInvalid(f"{where} manifest", "malformed member record")
        if item["name"] in out:  # a second record for one member could carry another hash
            raise ManifestInvalid(f"{where} manifest", "lists a member twice",
                                  observed=item["name"])
        out[item["name"]] = item
    return out


def check_member_bytes(
    bundle: BundleFile, member: ZipMember, expected: dict[str, Any]
) -> tuple[int, CustodyError | None]:
    """Step 5 for one member: size then SHA-256 of the raw stored bytes."""
    where = f"{bundle.where} member {member.name}"
    if member.file_size != expected["size"] or member.compress_size != expected["size"]:
        return 0, SizeMismatch(
            where, "size differs from the manifest", expected=expected["size"],
            observed=member.compress_size,
        )
    digest = hashlib.sha256()
    size = 0
    try:
        for chunk in bundle.iter_raw(member):
            digest.update(chunk)
            size += len(chunk)
    except CustodyError as exc:
        return size, exc
    if digest.hexdigest() != expected["sha256"]:
        return size, HashMismatch(
            where, "SHA-256 differs from the manifest", expected=expected["sha256"],
            observed=digest.hexdigest(),
        )
    return size, None


def check_bundle(path: Path, trusted: Iterable[PublicKey]) -> BundleCheck:
    """Run every check in the module docstring's order and collect all problems."""
    try:
        bundle = BundleFile(path)
    except CustodyError as exc:
        return BundleCheck(path, problems=[exc])
    with bundle:
        result = _check_opened(bundle, trusted)
        try:
            bundle.check_layout()  # the members not read above, and any departure found there
        except ContainerInvalid as exc:
            # As when found at opening: offsets cannot be trusted, so this is the one problem.
            return BundleCheck(path, problems=[exc])
    return result


def _check_opened(bundle: BundleFile, trusted: Iterable[PublicKey]) -> BundleCheck:
    """Steps 1 (names, order) to 5 of the module docstring; each member's local header is
    checked as its bytes are read (a departure found there ends up in ``problems`` here, and
    ``check_bundle`` then reports it alone)."""
    result = BundleCheck(bundle.path)
    result.problems.extend(check_names(bundle))
    result.problems.extend(check_order(bundle))
    try:
        manifest, verified = open_manifest(bundle, trusted)
        expected = manifest_members(manifest["members"], bundle.where)
    except CustodyError as exc:
        result.problems.append(exc)
        return result
    result.manifest = manifest
    result.manifest_sha256 = hashlib.sha256(verified.payload).hexdigest()
    result.signer = verified.signer
    del verified  # the payload bytes: the parsed manifest is all that is needed now
    result.bundle_id = manifest.get("bundle_id")
    result.problems.extend(check_totals(manifest, bundle.where))
    result.problems.extend(check_manifest_base64(manifest, bundle.where))
    stem = bundle.path.name.removesuffix(".stb")
    if result.bundle_id != stem:
        result.problems.append(
            ManifestInvalid(
                bundle.where, "manifest names another bundle", expected=stem,
                observed=result.bundle_id,
            )
        )
    present = {m.name: m for m in bundle.members if m.name != MANIFEST_MEMBER}
    for name in expected:
        if name not in present:
            result.problems.append(
                MemberMissing(f"{bundle.where} member {name}", "listed in the manifest, absent")
            )
    for name, member in present.items():
        if name not in expected:
            result.problems.append(
                MemberUnexpected(
                    f"{bundle.where} member {name}", "present but not in the manifest"
                )
            )
            continue
        size, problem = check_member_bytes(bundle, member, expected[name])
        result.members_checked += 1
        result.bytes_checked += size
        if problem:
            result.problems.append(problem)
    return result
