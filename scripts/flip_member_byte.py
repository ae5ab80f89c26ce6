"""Flip one byte of a member of the first bundle in a case (for the demo's tamper step).

Usage: python scripts/flip_member_byte.py CASE SOURCE_PATH_SUFFIX
"""

from __future__ import annotations

import sys
from pathlib import Path

from sealtrail.custody.bundle_reader import BundleFile


def main() -> None:
    case, suffix = Path(sys.argv[1]), sys.argv[2]
    bundle_path = sorted((case / "bundles").glob("*.stb"))[0]
    with BundleFile(bundle_path) as bundle:
        member = next(m for m in bundle.members if m.name.endswith(suffix))
        offset = bundle._data_offset(member) + member.compress_size // 2
    with open(bundle_path, "r+b") as handle:
        handle.seek(offset)
        byte = handle.read(1)
        handle.seek(offset)
        handle.write(bytes([byte[0] ^ 0x01]))
    print(f"flipped the byte at offset {offset} of {bundle_path.name} (member {member.name})")


if __name__ == "__main__":
    main()
