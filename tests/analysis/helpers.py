"""Build MemberContext objects for parser tests, from bytes or from a file on disk."""

from __future__ import annotations

import hashlib
import io
from datetime import datetime
from pathlib import Path

from sealtrail.analysis.parsers.base import MemberContext


def member_from_bytes(source_path: str, data: bytes, *, mtime: datetime | None = None,
                      host: str | None = "testhost",
                      artifacts: tuple[str, ...] = ()) -> MemberContext:
    return MemberContext(
        bundle_id="test-bundle",
        member_name="data" + source_path,
        member_sha256=hashlib.sha256(data).hexdigest(),
        source_path=source_path,
        size=len(data),
        mtime=mtime,
        host=host,
        opener=lambda: io.BytesIO(data),
        artifacts=artifacts,
    )


def member_from_file(path: Path, source_path: str | None = None, **kwargs) -> MemberContext:
    """A member whose bytes are read from ``path`` (e.g. an upstream fixture, read-only)."""
    data = path.read_bytes()
    return member_from_bytes(source_path or f"/evidence/{path.name}", data, **kwargs)
