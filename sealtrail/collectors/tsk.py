"""The Sleuth Kit (``pytsk3``) layer: the only module that imports it.

image (`ImageHandle`) -> `pytsk3.Img_Info` -> volume system (MBR with extended partitions,
GPT, or none) -> one file system per partition. A partition whose file system TSK cannot open
is reported with the reason, never dropped.

TSK parses hostile bytes in C: a crafted image can crash or hang the process. Callers that
handle evidence run this layer in a worker process with a time limit
(``sealtrail.acquisition.image_collection``).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, replace
from typing import Any

import pytsk3

from sealtrail.collectors.images import ImageHandle

__all__ = [
    "FS_TYPE_NAMES",
    "HandleImg",
    "Partition",
    "VolumeLayout",
    "fs_summary",
    "list_partitions",
    "open_fs",
    "open_img",
    "read_layout",
    "tsk",
]

#: The pytsk3 module, for the modules that walk file systems (image_source) without importing
#: pytsk3 themselves.
tsk = pytsk3


def _enum_names(prefix: str, skip: tuple[str, ...] = ()) -> dict[int, str]:
    names: dict[int, str] = {}
    for attr in dir(pytsk3):
        if attr.startswith(prefix) and not attr.endswith(skip):
            value = int(getattr(pytsk3, attr))
            names.setdefault(value, attr[len(prefix) :].lower())
    return names


#: TSK file system type -> short name (``ext4``, ``ntfs``, ``fat12``...).
FS_TYPE_NAMES = _enum_names("TSK_FS_TYPE_", ("_DETECT", "_ENUM"))
_VS_TYPE_NAMES = {
    **_enum_names("TSK_VS_TYPE_", ("_DETECT", "_ENUM")),
    int(pytsk3.TSK_VS_TYPE_DOS): "mbr",
}
_ALLOC = int(pytsk3.TSK_VS_PART_FLAG_ALLOC)


class HandleImg(pytsk3.Img_Info):
    """A `pytsk3.Img_Info` that reads through an `ImageHandle` (EWF, QCOW)."""

    def __init__(self, handle: ImageHandle) -> None:
        self._handle = handle
        super().__init__(url="", type=pytsk3.TSK_IMG_TYPE_EXTERNAL)

    def read(self, offset: int, size: int) -> bytes:
        try:
            return self._handle.read(offset, size)
        except Exception as exc:  # noqa: BLE001 - TSK shows the message; keep it one plain line
            raise OSError(str(exc)) from None

    def get_size(self) -> int:
        return self._handle.size

    def close(self) -> None:  # the handle belongs to the caller
        pass


def open_img(handle: ImageHandle) -> pytsk3.Img_Info:
    """The TSK image for ``handle``: TSK reads a single raw file itself (fastest); every other
    format goes through the handle."""
    if handle.format in ("raw", "blockdev"):
        return pytsk3.Img_Info(str(handle.path))
    return HandleImg(handle)


@dataclass(frozen=True, slots=True)
class Partition:
    """One partition (or the whole image when there is no volume system).

    Attributes:
        index: TSK's partition address (as ``mmls`` numbers them); 0 for a whole image.
        start_offset: first byte of the partition in the image.
        length: its size in bytes.
        type_desc: the partition type as the table describes it (``Linux (0x83)``, a GPT
            partition name), ``whole image`` without a volume system.
        fs_type: the file system TSK recognised (``ext4``, ``ntfs``...), None if none.
        fs_error: why no file system could be opened there, else None.
        fs_note: a warning about a file system that did open: it claims more bytes than the
            partition or image holds (a truncated image), else None.
    """

    index: int
    start_offset: int
    length: int
    type_desc: str
    fs_type: str | None
    fs_error: str | None
    fs_note: str | None = None

    def to_json_obj(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class VolumeLayout:
    """What is on an image: its volume system (``mbr``, ``gpt``... or None) and partitions."""

    vs_type: str | None
    block_size: int
    partitions: tuple[Partition, ...]


_WRAPPER = re.compile(r"^[A-Za-z_]+: \(tsk3\.cpp:\d+\) ")


def _reason(exc: BaseException) -> str:
    """TSK's message on one line, without pytsk3's ``FS_Info_Con: (tsk3.cpp:327)`` prefixes."""
    lines = [_WRAPPER.sub("", line.strip()) for line in str(exc).splitlines() if line.strip()]
    return "; ".join(dict.fromkeys(lines)) or type(exc).__name__


#: File systems the last `read_layout` opened to probe them, by (image object id, offset):
#: the next `open_fs` of the same image and offset takes it instead of opening it again.
_PROBED: dict[tuple[int, int], tuple[pytsk3.Img_Info, pytsk3.FS_Info]] = {}


def open_fs(img: pytsk3.Img_Info, offset: int) -> pytsk3.FS_Info:
    """Open the file system at byte ``offset`` (or take the one `read_layout` just probed).

    Raises:
        OSError: TSK found no file system it can read there (message from TSK).
    """
    probed = _PROBED.pop((id(img), offset), None)
    if probed is not None and probed[0] is img:
        return probed[1]
    return pytsk3.FS_Info(img, offset=offset)


def _probe(img: pytsk3.Img_Info, index: int, start: int, length: int, desc: str,
           media_size: int) -> Partition:
    try:
        fs = open_fs(img, start)
    except Exception as exc:  # noqa: BLE001 - pytsk3 raises IOError/OSError/RuntimeError
        return Partition(index, start, length, desc, None, _reason(exc))
    _PROBED[(id(img), start)] = (img, fs)
    name = FS_TYPE_NAMES.get(int(fs.info.ftype), f"type 0x{int(fs.info.ftype):x}")
    claimed = int(fs.info.block_count) * int(fs.info.block_size)
    available = min(length, media_size - start)
    note = None
    if claimed > available:
        note = (f"the file system claims {claimed} bytes but only {available} are in the "
                "image: truncated? files past the end read short")
    return Partition(index, start, length, desc, name, None, note)


def read_layout(handle: ImageHandle, img: pytsk3.Img_Info | None = None) -> VolumeLayout:
    """The volume system and partitions of an image, each with its file system or the reason
    there is none. Without a volume system the whole image is partition 0."""
    img = img if img is not None else open_img(handle)
    _PROBED.clear()  # only the file systems of this layout are kept for reuse
    try:
        vs = pytsk3.Volume_Info(img)
    except Exception:  # noqa: BLE001 - no (readable) partition table: a bare volume
        vs = None
    if vs is not None:
        block = int(vs.info.block_size) or 512
        vs_type = _VS_TYPE_NAMES.get(int(vs.info.vstype), f"type {int(vs.info.vstype)}")
        parts: list[Partition] = []
        for part in vs:
            if not int(part.flags) & _ALLOC:
                continue  # tables, extended containers, unallocated gaps
            desc = (part.desc or b"").decode("utf-8", "replace")
            start, length = int(part.start) * block, int(part.len) * block
            if start >= handle.size:
                parts.append(Partition(int(part.addr), start, length, desc, None,
                                       "starts beyond the end of the image"))
                continue
            found = _probe(img, int(part.addr), start, length, desc, handle.size)
            if start + length > handle.size and found.fs_note is None:
                found = replace(found, fs_note=f"the partition ends {start + length - handle.size}"
                                " bytes past the end of the image (truncated image or bogus "
                                "table entry)")
            parts.append(found)
        if parts:
            return VolumeLayout(vs_type, block, tuple(parts))
    whole = _probe(img, 0, 0, handle.size, "whole image", handle.size)
    return VolumeLayout(None, 512, (whole,))


def list_partitions(handle: ImageHandle) -> list[Partition]:
    """The partitions of an image (see `read_layout`)."""
    return list(read_layout(handle).partitions)


def fs_summary(img: pytsk3.Img_Info, partition: Partition) -> dict[str, Any]:
    """What ``fsstat`` would lead with: type, block size and count, inode range."""
    if partition.fs_type is None:
        return {}
    fs = open_fs(img, partition.start_offset)
    info = fs.info
    return {
        "type": partition.fs_type,
        "block_size": int(info.block_size),
        "block_count": int(info.block_count),
        "first_inode": int(info.first_inum),
        "last_inode": int(info.last_inum),
        "root_inode": int(info.root_inum),
    }
