"""Reading and checking a bundle.

Order of checks for one bundle (``check_bundle``), each reported with the bundle and member:
1. The file is a ZIP whose central directory parses; member names are unique after case
   folding and safe to extract (no absolute paths, ``..``, drive letters, NUL, backslashes).
2. ``manifest.dsse.json`` exists and is a DSSE envelope of the manifest payload type, signed by
   a trusted key (signature checked over the exact payload bytes before they are parsed).
3. The payload is canonical JSON of the expected kind and version, naming this bundle id.
4. Member set: every manifest member is in the ZIP (else MemberMissing); every ZIP member is in
   the manifest (else MemberUnexpected).
5. Each member is stored uncompressed, its local header names the same member as the central
   directory, its size equals the manifest's, and the SHA-256 of its bytes equals the manifest's.
   Bytes are read raw from their offset (not through the ZIP CRC), so a flipped byte is
   reported as the SHA-256 mismatch it is.
"""

from __future__ import annotations

import hashlib
import struct
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from sealtrail.collectors.streams import WindowStream
from sealtrail.custody.bundle_format import (
    MANIFEST_KIND,
    MANIFEST_MEMBER,
    MANIFEST_TYPE,
    fold_name,
    unsafe_member_name_reason,
)
from sealtrail.custody.canonical import NotCanonicalError, parse_canonical_json
from sealtrail.custody.envelope import Envelope, VerifiedPayload
from sealtrail.custody.keys import PublicKey
from sealtrail.errors import (
    CustodyError,
    HashMismatch,
    ManifestInvalid,
    MemberMissing,
    MemberUnexpected,
    SizeMismatch,
    UnsafeMemberPath,
)

_LOCAL_HEADER = struct.Struct("<4s5H3L2H")
_CHUNK = 1 << 20
MAX_MANIFEST_BYTES = 1 << 30


@dataclass(frozen=True, slots=True)
class ZipMember:
    name: str
    header_offset: int
    compress_size: int
    file_size: int
    compress_type: int


@dataclass
class BundleCheck:
    """What checking one bundle found. ``problems`` empty means the bundle verified."""

    path: Path
    bundle_id: str | None = None
    manifest: dict[str, Any] | None = None
    manifest_payload: bytes | None = None
    signer: PublicKey | None = None
    members_checked: int = 0
    bytes_checked: int = 0
    problems: list[CustodyError] = field(default_factory=list)


class BundleFile:
    """An opened bundle: its ZIP directory and raw access to member bytes."""

    def __init__(self, path: Path | str) -> None:
        self.path = path = Path(path)
        self.where = f"bundle {path.name}"
        try:
            self._file: BinaryIO = open(path, "rb")  # noqa: SIM115 - closed in close()
        except OSError as exc:
            raise ManifestInvalid(self.where, f"cannot open: {exc.strerror}") from exc
        try:
            zf = zipfile.ZipFile(self._file)
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            self._file.close()
            raise ManifestInvalid(self.where, f"not a readable ZIP file ({exc})") from exc
        # orig_filename: zipfile truncates names at a NUL; the raw name must be judged.
        self.members: list[ZipMember] = [
            ZipMember(
                i.orig_filename, i.header_offset, i.compress_size, i.file_size, i.compress_type
            )
            for i in zf.infolist()
        ]
        zf.close()

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> BundleFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _data_offset(self, member: ZipMember) -> int:
        self._file.seek(member.header_offset)
        header = self._file.read(_LOCAL_HEADER.size)
        if len(header) != _LOCAL_HEADER.size or header[:4] != b"PK\x03\x04":
            raise ManifestInvalid(f"{self.where} member {member.name}", "bad local header")
        name_len, extra_len = _LOCAL_HEADER.unpack(header)[-2:]
        local_name = self._file.read(name_len)
        if local_name != member.name.encode("utf-8") and local_name != member.name.encode(
            "cp437", "replace"
        ):
            raise UnsafeMemberPath(
                f"{self.where} member {member.name}",
                "local header names a different member",
                expected=member.name,
                observed=local_name.decode("utf-8", "backslashreplace"),
            )
        return member.header_offset + _LOCAL_HEADER.size + name_len + extra_len

    def iter_raw(self, member: ZipMember) -> Iterator[bytes]:
        """The stored bytes of ``member``, in chunks; STORED members only."""
        if member.compress_type != zipfile.ZIP_STORED:
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
        if member.compress_type != zipfile.ZIP_STORED:
            raise ManifestInvalid(
                f"{self.where} member {member.name}", "member is compressed; bundles store only"
            )
        return MemberWindow(self.path, self._data_offset(member), member.compress_size)

    def read_member(self, member: ZipMember, limit: int) -> bytes:
        if member.compress_size > limit:
            raise ManifestInvalid(f"{self.where} member {member.name}", "too large")
        return b"".join(self.iter_raw(member))

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
    """Step 1: names that are unsafe, or that collide exactly or after case folding."""
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
        seen[key] = member.name
    return problems


def open_manifest(
    bundle: BundleFile, trusted: Iterable[PublicKey]
) -> tuple[dict[str, Any], VerifiedPayload]:
    """Steps 2-3: the signed manifest, verified then parsed."""
    member = bundle.member(MANIFEST_MEMBER)
    if member is None:
        raise MemberMissing(bundle.where, f"no {MANIFEST_MEMBER}: the bundle was never sealed")
    envelope = Envelope.parse(bundle.read_member(member, MAX_MANIFEST_BYTES), bundle.where)
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


def manifest_members(manifest: dict[str, Any], where: str) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for item in manifest["members"]:
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("name"), str)
            or not isinstance(item.get("sha256"), str)
            or not isinstance(item.get("size"), int)
        ):
            raise ManifestInvalid(f"{where} manifest", "malformed member record")
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
    result = BundleCheck(path)
    try:
        bundle = BundleFile(path)
    except CustodyError as exc:
        result.problems.append(exc)
        return result
    with bundle:
        result.problems.extend(check_names(bundle))
        try:
            manifest, verified = open_manifest(bundle, trusted)
            expected = manifest_members(manifest, bundle.where)
        except CustodyError as exc:
            result.problems.append(exc)
            return result
        result.manifest, result.manifest_payload = manifest, verified.payload
        result.signer = verified.signer
        result.bundle_id = manifest.get("bundle_id")
        stem = path.name.removesuffix(".stb")
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
