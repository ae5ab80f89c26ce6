"""Build tampered copies of a good bundle, one attack each (see CUSTODY-NOTES attack corpus)."""

from __future__ import annotations

import base64
import json
import struct
import zipfile
import zlib
from pathlib import Path

from sealtrail.custody.bundle_format import MANIFEST_MEMBER, MANIFEST_TYPE
from sealtrail.custody.bundle_reader import BundleFile
from sealtrail.custody.envelope import sign_envelope
from sealtrail.custody.keys import SigningKey


def member_named(bundle: Path, suffix: str) -> str:
    with zipfile.ZipFile(bundle) as zf:
        return next(n for n in zf.namelist() if n.endswith(suffix))


def flip_byte(bundle: Path, member_suffix: str, position: int = 0) -> str:
    """Flip one byte inside a member's stored data; returns the member name."""
    with BundleFile(bundle) as reader:
        member = next(m for m in reader.members if m.name.endswith(member_suffix))
        offset = reader._data_offset(member) + position
    with open(bundle, "r+b") as handle:
        handle.seek(offset)
        byte = handle.read(1)
        handle.seek(offset)
        handle.write(bytes([byte[0] ^ 0xFF]))
    return member.name


def rewrite(bundle: Path, *, drop: str | None = None, add: dict[str, bytes] | None = None,
            replace: dict[str, bytes] | None = None) -> None:
    """Rewrite the ZIP, dropping, adding or replacing members (names taken literally).

    Added members go just before the manifest, which stays last (as an attacker would keep it).
    """
    tmp = bundle.with_suffix(".tmp")
    with BundleFile(bundle) as src, zipfile.ZipFile(tmp, "w") as dst:
        def put(name: str, data: bytes) -> None:
            dst.writestr(zipfile.ZipInfo(name), data, compress_type=zipfile.ZIP_STORED)

        added = False
        for member in src.members:  # raw bytes: earlier tampering must survive the rewrite
            if member.name == MANIFEST_MEMBER and not added:
                added = True
                for name, data in (add or {}).items():
                    put(name, data)
            if member.name == drop:
                continue
            data = (replace or {}).get(member.name)
            if data is None:
                data = b"".join(src.iter_raw(member))
            put(member.name, data)
        if not added:
            for name, data in (add or {}).items():
                put(name, data)
    tmp.replace(bundle)


def raw_members(bundle: Path) -> list[tuple[bytes, bytes]]:
    """Every member as (raw name, stored bytes), in order."""
    with BundleFile(bundle) as src:
        return [(m.name.encode(), b"".join(src.iter_raw(m))) for m in src.members]


def write_zip(path: Path, members: list[tuple[bytes, bytes]], *, prefix: bytes = b"",
              gap_before: dict[int, bytes] | None = None, before_cd: bytes = b"",
              comment: bytes = b"", suffix: bytes = b"", zip64_end: bool = False,
              zip64_fields: bool = False) -> None:
    """Write a stored ZIP by hand, its offsets all correct, with bytes where asked.

    ``prefix`` goes before the first local header, ``gap_before[i]`` before member i,
    ``before_cd`` between the last member and the central directory, ``comment`` is the ZIP
    comment and ``suffix`` goes after the end record. ``zip64_end`` adds the (optional) ZIP64
    end record and locator; ``zip64_fields`` puts every size and offset in ZIP64 extra fields
    (local headers and central directory), as a writer may for members of any size. Offsets
    count from the start of the file, so each extra byte string gives a self-consistent
    layout that a lax reader accepts.
    """
    out = bytearray(prefix)
    central = bytearray()
    for i, (name, data) in enumerate(members):
        out += (gap_before or {}).get(i, b"")
        crc, offset, size = zlib.crc32(data), len(out), len(data)
        local_extra = central_extra = b""
        local_size = central_size = size
        central_offset = offset
        if zip64_fields:
            local_extra = struct.pack("<2H2Q", 1, 16, size, size)
            central_extra = struct.pack("<2H3Q", 1, 24, size, size, offset)
            local_size = central_size = central_offset = 0xFFFFFFFF
        out += struct.pack("<4s5H3L2H", b"PK\x03\x04", 45, 0, 0, 0, 33, crc, local_size,
                           local_size, len(name), len(local_extra)) + name + local_extra + data
        central += struct.pack("<4s4B4HL2L5H2L", b"PK\x01\x02", 45, 3, 45, 0, 0, 0, 0, 33, crc,
                               central_size, central_size, len(name), len(central_extra), 0, 0,
                               0, 0, central_offset) + name + central_extra
    out += before_cd
    cd_offset = len(out)
    out += central
    if zip64_end:
        end64 = len(out)
        out += struct.pack("<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, len(members),
                           len(members), len(central), cd_offset)
        out += struct.pack("<4sLQL", b"PK\x06\x07", 0, end64, 1)
    out += struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(members), len(members),
                       len(central), cd_offset, len(comment)) + comment + suffix
    path.write_bytes(bytes(out))


def read_envelope(bundle: Path) -> dict:
    with zipfile.ZipFile(bundle) as zf:
        return json.loads(zf.read(MANIFEST_MEMBER))


def edit_manifest(bundle: Path, edit, resign_with: SigningKey | None = None) -> None:
    """Apply ``edit(manifest)`` and store it, keeping the old signature unless re-signed."""
    from sealtrail.custody.canonical import canonical_json

    envelope = read_envelope(bundle)
    manifest = json.loads(base64.b64decode(envelope["payload"]))
    edit(manifest)
    payload = canonical_json(manifest)
    if resign_with is not None:
        data = sign_envelope(MANIFEST_TYPE, payload, resign_with)
    else:
        envelope["payload"] = base64.b64encode(payload).decode()
        data = canonical_json(envelope)
    rewrite(bundle, replace={MANIFEST_MEMBER: data})


def edit_envelope(bundle: Path, edit) -> None:
    """Apply ``edit(envelope dict)`` and store the envelope as canonical JSON."""
    from sealtrail.custody.canonical import canonical_json

    envelope = read_envelope(bundle)
    edit(envelope)
    rewrite(bundle, replace={MANIFEST_MEMBER: canonical_json(envelope)})
