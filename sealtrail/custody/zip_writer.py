"""A stored (uncompressed) ZIP written member by member into a `StagedFile`.

It writes the bytes Python's ``zipfile`` writes for the same members (``ZIP_STORED``, a
seekable output, ``force_zip64=True`` for data members): the format a bundle has always had
(docs/bundle-format.md), now produced without ``zipfile``'s per-chunk copy and CRC pass, so the
bundle writer can compute the CRC-32 and the SHA-256 over the staged bytes themselves
(tests/custody/test_zip_writer.py compares the two byte for byte).

Layout of a member: local header (signature, version needed, flags, method 0, fixed DOS time
1980-01-01 00:00:00, CRC-32, sizes, name, extra) then the data. A ZIP64 member's local header
carries sizes 0xFFFFFFFF and a ZIP64 extra field with the real sizes. The local header is written
with zero CRC and sizes when the member begins and patched in place when it ends (no data
descriptor). The central directory and end records follow the last member; ZIP64 fields appear
in them only where a value does not fit, as in ``zipfile``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from sealtrail.custody.direct_file import StagedFile

__all__ = ["StoredZip", "ZipEntry"]

ZIP64_LIMIT = (1 << 31) - 1  # zipfile's threshold for ZIP64 fields
_FILECOUNT_LIMIT = (1 << 16) - 1
_VERSION_ZIP64 = 45
_VERSION_DEFAULT = 20
_CREATE_SYSTEM_UNIX = 3
_FLAG_UTF8 = 0x800
_DOS_TIME = 0
_DOS_DATE = (0 << 9) | (1 << 5) | 1  # 1980-01-01
_LOCAL = struct.Struct("<4s2B4HL2L2H")
_CENTRAL = struct.Struct("<4s4B4HL2L5H2L")
_END = struct.Struct("<4s4H2LH")
_END64 = struct.Struct("<4sQ2H2L4Q")
_END64_LOCATOR = struct.Struct("<4sLQL")


@dataclass(slots=True)
class ZipEntry:
    """One member: where its local header is and, once ended, its CRC-32 and size."""

    name: bytes
    flags: int
    external_attr: int
    header_offset: int
    zip64: bool
    crc: int = 0
    size: int = 0

    @property
    def version(self) -> int:
        return _VERSION_ZIP64 if self.zip64 else _VERSION_DEFAULT

    def local_header(self) -> bytes:
        extra = b""
        size = self.size
        if self.zip64:
            extra = struct.pack("<HHQQ", 1, 16, self.size, self.size)
            size = 0xFFFFFFFF
        return _LOCAL.pack(b"PK\x03\x04", self.version, 0, self.flags, 0, _DOS_TIME, _DOS_DATE,
                           self.crc, size, size, len(self.name), len(extra)) + self.name + extra

    def central_record(self) -> bytes:
        big: list[int] = []
        size = offset = 0
        if self.size > ZIP64_LIMIT:
            big += [self.size, self.size]
            size = 0xFFFFFFFF
        else:
            size = self.size
        if self.header_offset > ZIP64_LIMIT:
            big.append(self.header_offset)
            offset = 0xFFFFFFFF
        else:
            offset = self.header_offset
        extra = struct.pack(f"<HH{len(big)}Q", 1, 8 * len(big), *big) if big else b""
        version = _VERSION_ZIP64 if (big or self.zip64) else _VERSION_DEFAULT
        return _CENTRAL.pack(b"PK\x01\x02", version, _CREATE_SYSTEM_UNIX, version, 0, self.flags,
                             0, _DOS_TIME, _DOS_DATE, self.crc, size, size, len(self.name),
                             len(extra), 0, 0, 0, self.external_attr, offset) \
            + self.name + extra


class StoredZip:
    """Members one at a time: `begin`, the caller appends the data to the file, `end`;
    `finish` writes the central directory."""

    def __init__(self, out: StagedFile) -> None:
        self._out = out
        self._entries: list[ZipEntry] = []
        self._open: ZipEntry | None = None

    @property
    def writing(self) -> bool:
        """Whether a member has begun and not ended."""
        return self._open is not None

    def begin(self, name: str, external_attr: int, *, zip64: bool) -> ZipEntry:
        if self._open is not None:
            raise ValueError("a member is still being written")
        try:
            encoded, flags = name.encode("ascii"), 0
        except UnicodeEncodeError:
            encoded, flags = name.encode("utf-8"), _FLAG_UTF8
        entry = ZipEntry(encoded, flags, external_attr, self._out.end, zip64)
        self._out.append(entry.local_header())
        self._open = entry
        return entry

    def end(self, entry: ZipEntry, crc: int, size: int) -> None:
        """Record the member's CRC-32 and size and patch its local header with them."""
        if entry is not self._open:
            raise ValueError("not the member being written")
        if not entry.zip64 and size > ZIP64_LIMIT:
            raise ValueError(f"member {entry.name!r} is too large without ZIP64")
        if self._out.end - entry.header_offset - len(entry.local_header()) != size:
            raise ValueError(f"member {entry.name!r}: {size} bytes declared, "
                             f"{self._out.end - entry.header_offset} written with its header")
        entry.crc, entry.size = crc, size
        self._out.patch(entry.header_offset, entry.local_header())
        self._entries.append(entry)
        self._open = None

    def add(self, name: str, data: bytes | list[bytes], external_attr: int, crc: int) -> None:
        """A member given whole, or as parts to be concatenated (no ZIP64 fields unless its
        size needs them), of any size: appended in pieces of at most ``max_append`` bytes (a
        manifest of a large tree is far bigger than one staging buffer)."""
        parts = data if isinstance(data, list) else [data]
        size = sum(len(part) for part in parts)
        entry = self.begin(name, external_attr, zip64=size * 1.05 > ZIP64_LIMIT)
        step = self._out.max_append
        for part in parts:
            view = memoryview(part)
            for start in range(0, len(view), step):
                self._out.append(view[start:start + step])
        self.end(entry, crc, size)

    def finish(self) -> None:
        """Write the central directory and the end records (ZIP64 ones where needed)."""
        if self._open is not None:
            raise ValueError("a member is still being written")
        start = self._out.end
        for entry in self._entries:
            self._out.append(entry.central_record())
        end = self._out.end
        count, size, offset = len(self._entries), end - start, start
        if count > _FILECOUNT_LIMIT or offset > ZIP64_LIMIT or size > ZIP64_LIMIT:
            self._out.append(_END64.pack(b"PK\x06\x06", 44, 45, 45, 0, 0, count, count, size,
                                         offset))
            self._out.append(_END64_LOCATOR.pack(b"PK\x06\x07", 0, end, 1))
            count, size = min(count, 0xFFFF), min(size, 0xFFFFFFFF)
            offset = min(offset, 0xFFFFFFFF)
        self._out.append(_END.pack(b"PK\x05\x06", 0, 0, count, count, size, offset, 0))
