"""The exact ZIP record sequence of a bundle, read by hand (docs/bundle-format.md section 1).

A bundle is its ZIP records and nothing else. Python's ``zipfile`` is not used to read it: it
accepts bytes prepended to an archive (it shifts every offset to fit), cuts names at NUL and
ignores gaps between members, so a bundle it reads can hold bytes no verifier looks at.

The file must be exactly this sequence, each record starting where the previous ends:
1. For each member, in central-directory order, starting at offset 0: a local file header
   (``PK\\x03\\x04``), its name and extra field, then the member's stored bytes. No data
   descriptors (flag bit 3), no encryption; the only flag allowed is bit 11 (UTF-8 name).
2. The central directory (``PK\\x01\\x02`` records), one per member, no file comments, every
   record on disk 0.
3. Optionally the ZIP64 end of central directory record (``PK\\x06\\x06``, record size 44, no
   extensible data) and its locator (``PK\\x06\\x07``), present exactly when the 20 bytes
   before the end record begin with the locator signature.
4. The end of central directory record (``PK\\x05\\x06``), the last 22 bytes: no comment, and
   each field the ZIP64 value capped at the field's maximum (``min(value, 0xFFFF...)``).
The only extra field is ZIP64 extended information (id 1). In the central directory it holds
exactly the values whose 32-bit field is 0xFFFFFFFF (size, compressed size, offset, in that
order); in a local header, present exactly when both sizes are 0xFFFFFFFF, it holds both sizes.
A local header must agree with its central directory record on name, flags, method, CRC-32
and sizes. Checking that the records tile the file needs only offsets and sizes: member data
is never read here.

The check comes in two parts, so that no local header has to be read away from its member's
bytes (on a cold page cache, reading all of them first, scattered over the file, made a
verification 1.29x slower; docs/benchmarks.md, issue 9):
- ``read_directory`` (when a bundle is opened): records 2-4, which sit together at the end of
  the file, and that the first local header is at offset 0. Every member's end offset (where
  the next local header, or the central directory, begins) is known from here on.
- ``check_local`` (member by member, just before the member's bytes are read: the header
  immediately precedes them): the member's flags, its local header against its central
  directory record, and that its record (header, name, extra field, bytes) ends exactly at
  that end offset. Each member's check needs only the central directory and its own header.
``check_local`` of every member, in file order, after ``read_directory`` is the whole check,
and reports the same first departure (``bundle_reader.BundleFile.check_layout``).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import BinaryIO

from sealtrail.errors import ContainerInvalid

__all__ = ["ZipMember", "check_local", "read_directory"]

_LOCAL = struct.Struct("<4s5H3L2H")
_CENTRAL = struct.Struct("<4s4B4HL2L5H2L")
_END = struct.Struct("<4s4H2LH")
_END64 = struct.Struct("<4sQ2H2L4Q")
_LOCATOR = struct.Struct("<4sLQL")
_MAX16, _MAX32 = 0xFFFF, 0xFFFFFFFF
_FLAG_UTF8 = 0x800
_ZIP64_EXTRA = 1
_MAX_COMMENT = 0xFFFF


@dataclass(frozen=True, slots=True)
class ZipMember:
    """One member as its central directory record describes it (offsets into the bundle file).

    Where its bytes begin depends on its local header's name and extra field lengths:
    ``check_local`` reads that header and returns the offset.
    """

    name: str
    raw_name: bytes
    index: int  # position in the central directory (= in the file)
    header_offset: int
    end_offset: int  # where its record must end: the next local header or the central directory
    compress_size: int
    file_size: int
    compress_type: int
    crc: int
    flags: int


@dataclass(frozen=True, slots=True)
class _Central:
    raw_name: bytes
    flags: int
    method: int
    crc: int
    compress_size: int
    file_size: int
    header_offset: int


def _read_at(file: BinaryIO, offset: int, size: int) -> bytes:
    file.seek(offset)
    return file.read(size)


def _zip64_values(extra: bytes, wanted: int, where: str) -> list[int]:
    """The ``wanted`` 8-byte values of the one ZIP64 extra field (none: no extra at all)."""
    if wanted == 0:
        if extra:
            raise ContainerInvalid(where, "has an extra field where none is needed")
        return []
    tag, length = struct.unpack_from("<2H", extra) if len(extra) >= 4 else (None, None)
    if tag != _ZIP64_EXTRA or length != 8 * wanted or len(extra) != 4 + length:
        raise ContainerInvalid(
            where, "extra field is not exactly the ZIP64 values its header fields call for",
            expected=f"ZIP64 field with {wanted} value(s)", observed=extra.hex() or "none",
        )
    return list(struct.unpack_from(f"<{wanted}Q", extra, 4))


def _decode_name(raw: bytes, flags: int) -> str:
    """The name as text, for messages and lookups; the format allows only ASCII anyway."""
    if flags & _FLAG_UTF8:
        return raw.decode("utf-8", "backslashreplace")
    return raw.decode("cp437")


def _end_records(file: BinaryIO, size: int, where: str) -> tuple[int, int, int]:
    """(entry count, central directory offset, offset where the end records begin)."""
    if size < _END.size:
        raise ContainerInvalid(where, "not a readable ZIP file (too short)")
    tail_start = max(0, size - _END.size - _MAX_COMMENT)
    tail = _read_at(file, tail_start, size - tail_start)
    end_pos = size - _END.size
    if tail[end_pos - tail_start : end_pos - tail_start + 4] != b"PK\x05\x06":
        found = tail.rfind(b"PK\x05\x06")
        if found < 0:
            raise ContainerInvalid(where, "not a readable ZIP file (no end of central directory)")
        comment = _END.unpack_from(tail, found)[-1] if len(tail) - found >= _END.size else -1
        extra = len(tail) - found - _END.size
        if comment == extra:
            raise ContainerInvalid(where, "has a ZIP comment; a bundle has none",
                                   expected=0, observed=comment)
        raise ContainerInvalid(where, "has bytes after the end of central directory record",
                               expected=0, observed=extra)
    _, disk, cd_disk, disk_count, count, cd_size, cd_offset, comment = _END.unpack_from(
        tail, end_pos - tail_start
    )
    if comment:
        raise ContainerInvalid(where, "has a ZIP comment; a bundle has none",
                               expected=0, observed=comment)
    if disk or cd_disk or disk_count != count:
        raise ContainerInvalid(where, "end of central directory names more than one disk")
    records_start = end_pos
    locator_pos = end_pos - _LOCATOR.size
    if locator_pos >= 0 and _read_at(file, locator_pos, 4) == b"PK\x06\x07":
        _, loc_disk, end64_pos, disks = _LOCATOR.unpack(_read_at(file, locator_pos, _LOCATOR.size))
        if loc_disk or disks != 1 or end64_pos != locator_pos - _END64.size:
            raise ContainerInvalid(where, "ZIP64 locator does not point just before itself",
                                   expected=locator_pos - _END64.size, observed=end64_pos)
        record = _read_at(file, end64_pos, _END64.size)
        (sig, rec_size, _, _, disk64, cd_disk64, disk_count64, count64, cd_size64,
         cd_offset64) = _END64.unpack(record)
        if sig != b"PK\x06\x06" or rec_size != _END64.size - 12:
            raise ContainerInvalid(where, "bad ZIP64 end of central directory record")
        if disk64 or cd_disk64 or disk_count64 != count64:
            raise ContainerInvalid(where, "ZIP64 end record names more than one disk")
        capped = (min(count64, _MAX16), min(cd_size64, _MAX32), min(cd_offset64, _MAX32))
        if (count, cd_size, cd_offset) != capped:
            raise ContainerInvalid(where, "end record disagrees with the ZIP64 end record",
                                   expected=capped, observed=(count, cd_size, cd_offset))
        count, cd_size, cd_offset, records_start = count64, cd_size64, cd_offset64, end64_pos
    if cd_offset + cd_size != records_start:
        gap = records_start - cd_offset - cd_size
        what = "bytes that belong to no record" if gap > 0 else "records that overlap"
        raise ContainerInvalid(
            where, f"central directory does not end where the end records begin: {what} "
            "(bytes prepended, inserted or removed)",
            expected=cd_offset + cd_size, observed=records_start,
        )
    return count, cd_offset, records_start


def _central_records(file: BinaryIO, count: int, cd_offset: int, cd_end: int,
                     where: str) -> list[_Central]:
    file.seek(cd_offset)
    data = file.read(cd_end - cd_offset)
    out: list[_Central] = []
    pos = 0
    for index in range(count):
        here = f"{where} central directory record {index}"
        if len(data) - pos < _CENTRAL.size or data[pos : pos + 4] != b"PK\x01\x02":
            raise ContainerInvalid(here, "is not a central directory record")
        (_, _, _, _, _, flags, method, _, _, crc, csize, usize, name_len, extra_len,
         comment_len, disk, _, _, offset) = _CENTRAL.unpack_from(data, pos)
        pos += _CENTRAL.size
        raw_name = data[pos : pos + name_len]
        extra = data[pos + name_len : pos + name_len + extra_len]
        pos += name_len + extra_len + comment_len
        if pos > len(data):
            raise ContainerInvalid(here, "runs past the end of the central directory")
        if comment_len:
            raise ContainerInvalid(here, "has a file comment; a bundle has none")
        if disk:
            raise ContainerInvalid(here, "names another disk")
        fields = [usize, csize, offset]
        big = _zip64_values(extra, sum(v == _MAX32 for v in fields), here)
        usize, csize, offset = (big.pop(0) if v == _MAX32 else v for v in fields)
        out.append(_Central(raw_name, flags, method, crc, csize, usize, offset))
    if pos != len(data):
        raise ContainerInvalid(where, "central directory holds bytes after its last record",
                               expected=count, observed=f"{len(data) - pos} more bytes")
    return out


def _directory_members(entries: list[_Central], cd_offset: int, where: str) -> list[ZipMember]:
    """The members, each with the offset its record must end at; the first must begin at 0."""
    ends = [entry.header_offset for entry in entries[1:]] + [cd_offset]
    members = [
        ZipMember(_decode_name(entry.raw_name, entry.flags), entry.raw_name, index,
                  entry.header_offset, end, entry.compress_size, entry.file_size, entry.method,
                  entry.crc, entry.flags)
        for index, (entry, end) in enumerate(zip(entries, ends, strict=True))
    ]
    if not members and cd_offset != 0:
        raise ContainerInvalid(where, "the last member does not end where the central directory "
                               "begins (bytes between them, or overlapping records)",
                               expected=cd_offset, observed=0)
    if members and members[0].header_offset != 0:
        raise ContainerInvalid(f"{where} member {members[0].name}", "local header is not where "
                               "the previous record ends: bytes before the first local header",
                               expected=0, observed=members[0].header_offset)
    return members


def read_directory(file: BinaryIO, where: str) -> list[ZipMember]:
    """The members of a bundle file, from its end records and central directory, which must
    be exactly records 2-4 of the module doc and end the file; the first local header must be
    at offset 0. The local headers are not read here (``check_local``).

    Raises:
        ContainerInvalid: the first way those records depart from the format, with offsets.
    """
    size = file.seek(0, 2)
    count, cd_offset, cd_end = _end_records(file, size, where)
    return _directory_members(_central_records(file, count, cd_offset, cd_end, where),
                              cd_offset, where)


def check_local(file: BinaryIO, members: list[ZipMember], index: int, where: str) -> int:
    """Where the bytes of ``members[index]`` begin, once its local header is checked: flags,
    name, method, CRC-32 and sizes as in the central directory, and its record ending exactly
    where the next record (``end_offset``) begins. Reads only that header (it sits just
    before the member's bytes); ``members`` is the list ``read_directory`` returned.

    A record that does not end where the next begins is reported as the old whole-file check
    reported it: with the next member ("bytes between members") or, for the last member, as
    "does not end where the central directory begins".

    Raises:
        ContainerInvalid: the first departure, with offsets.
    """
    member = members[index]
    here = f"{where} member {member.name}"
    if member.flags & ~_FLAG_UTF8:
        raise ContainerInvalid(here, "has flags other than UTF-8 (data descriptor, encryption)",
                               expected=0, observed=hex(member.flags))
    header = _read_at(file, member.header_offset, _LOCAL.size)
    if len(header) != _LOCAL.size or header[:4] != b"PK\x03\x04":
        raise ContainerInvalid(here, "bad local header")
    _, _, flags, method, _, _, crc, csize, usize, name_len, extra_len = _LOCAL.unpack(header)
    rest = file.read(name_len + extra_len)
    local_name, extra = rest[:name_len], rest[name_len:]
    if local_name != member.raw_name:
        raise ContainerInvalid(here, "local header names a different member",
                               expected=member.name, observed=_decode_name(local_name, flags))
    if csize == usize == _MAX32:
        usize, csize = _zip64_values(extra, 2, f"{here} local header")
    else:
        _zip64_values(extra, 0, f"{here} local header")
    local = (flags, method, crc, csize, usize)
    central = (member.flags, member.compress_type, member.crc, member.compress_size,
               member.file_size)
    if local != central:
        raise ContainerInvalid(here, "local header disagrees with the central directory "
                               "(flags, method, CRC-32, sizes)", expected=central, observed=local)
    data_offset = member.header_offset + _LOCAL.size + name_len + extra_len
    end = data_offset + member.compress_size
    if end != member.end_offset:
        if index + 1 < len(members):
            raise ContainerInvalid(f"{where} member {members[index + 1].name}",
                                   "local header is not where the previous record ends: bytes "
                                   "between members", expected=end, observed=member.end_offset)
        raise ContainerInvalid(where, "the last member does not end where the central directory "
                               "begins (bytes between them, or overlapping records)",
                               expected=member.end_offset, observed=end)
    return data_offset
