"""The parser contract and the parser registry.

A parser is a small class with ``NAME``, ``VERSION``, ``DESCRIPTION``, ``check`` (does this
member look like my format?) and ``parse`` (yield one ``Event`` or ``Rejection`` per record).
"Not my format" is ``check`` returning False; a damaged record is a ``Rejection``; a parser that
raises is caught by the ingest, which records the failure for that member and carries on.

Parsers read members of verified bundles only, through ``MemberContext.open()``, which gives
the decompressed bytes for ``.gz``, ``.bz2`` and ``.xz`` members. They never see the source.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import BinaryIO, ClassVar, Protocol

from sealtrail.analysis.records import Event, Rejection

_COMPRESSION: dict[str, Callable[[BinaryIO], BinaryIO]] = {
    ".gz": lambda raw: gzip.GzipFile(fileobj=raw, mode="rb"),  # type: ignore[dict-item]
    ".bz2": lambda raw: bz2.BZ2File(raw, mode="rb"),  # type: ignore[dict-item]
    ".xz": lambda raw: lzma.LZMAFile(raw, mode="rb"),  # type: ignore[dict-item]
}
_ROTATION = re.compile(r"(\.\d+)?(\.gz|\.bz2|\.xz)?$")


@dataclass(frozen=True)
class MemberContext:
    """What a parser knows about the member it reads.

    Attributes:
        source_path: the path on the source host (e.g. ``/var/log/auth.log.2.gz``).
        logical_name: the file name without rotation and compression suffixes (``auth.log``).
        rotation: the rotation number (``2`` for ``auth.log.2.gz``), 0 for the live file.
        compression: ``".gz"``, ``".bz2"``, ``".xz"`` or ``""``.
        mtime: the source file's modification time (UTC), for inferring years in syslog.
        host: the source host's name, when known.
        opener: returns a fresh binary stream of the member's raw (stored) bytes.
    """

    bundle_id: str
    member_name: str
    member_sha256: str
    source_path: str
    size: int
    mtime: datetime | None
    host: str | None
    opener: Callable[[], BinaryIO] = field(repr=False)
    artifacts: tuple[str, ...] = ()

    @property
    def file_name(self) -> str:
        return self.source_path.rsplit("/", 1)[-1]

    @property
    def compression(self) -> str:
        for suffix in _COMPRESSION:
            if self.file_name.endswith(suffix):
                return suffix
        return ""

    @property
    def logical_name(self) -> str:
        return _ROTATION.sub("", self.file_name) or self.file_name

    @property
    def rotation(self) -> int:
        match = re.search(r"\.(\d+)(\.gz|\.bz2|\.xz)?$", self.file_name)
        return int(match.group(1)) if match else 0

    def open(self) -> BinaryIO:
        """The member's bytes, decompressed when the name says it is compressed."""
        raw = self.opener()
        wrapper = _COMPRESSION.get(self.compression)
        return wrapper(raw) if wrapper else raw  # type: ignore[return-value]

    def head(self, size: int = 4096) -> bytes:
        """The first ``size`` decompressed bytes (b"" if they cannot be read)."""
        try:
            with self.open() as stream:
                return stream.read(size)
        except (OSError, EOFError, lzma.LZMAError, ValueError):
            return b""


class Parser(Protocol):
    NAME: ClassVar[str]
    VERSION: ClassVar[str]
    DESCRIPTION: ClassVar[str]

    def check(self, member: MemberContext, head: bytes) -> bool:
        """True if this parser reads this member (by name, artifact or content)."""

    def parse(self, member: MemberContext) -> Iterator[Event | Rejection]:
        """One Event or Rejection per record looked at; exceptions are caught by the ingest."""


class DuplicateParser(ValueError):
    pass


def build_registry(parsers: list[type]) -> dict[str, type]:
    """A plain dict NAME -> class from an explicit list; a duplicate name is an error."""
    registry: dict[str, type] = {}
    for parser in parsers:
        if parser.NAME in registry:
            raise DuplicateParser(f"two parsers are named {parser.NAME!r}")
        registry[parser.NAME] = parser
    return registry
