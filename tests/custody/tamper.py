"""Build tampered copies of a good bundle, one attack each (see CUSTODY-NOTES attack corpus)."""

from __future__ import annotations

import base64
import json
import zipfile
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
    """Rewrite the ZIP, dropping, adding or replacing members (names taken literally)."""
    tmp = bundle.with_suffix(".tmp")
    with BundleFile(bundle) as src, zipfile.ZipFile(tmp, "w") as dst:
        for member in src.members:  # raw bytes: earlier tampering must survive the rewrite
            if member.name == drop:
                continue
            data = (replace or {}).get(member.name)
            if data is None:
                data = b"".join(src.iter_raw(member))
            dst.writestr(zipfile.ZipInfo(member.name), data, compress_type=zipfile.ZIP_STORED)
        for name, data in (add or {}).items():
            dst.writestr(zipfile.ZipInfo(name), data, compress_type=zipfile.ZIP_STORED)
    tmp.replace(bundle)


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
        data = json.dumps(envelope).encode()
    rewrite(bundle, replace={MANIFEST_MEMBER: data})
