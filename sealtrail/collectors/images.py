"""Opening disk images: format detection and one read interface for every format.

`open_image` tells the format from the file's signature first and its name second (a name
alone never decides: a file called ``x.E01`` without the EWF signature is refused as such):

* EWF (``EVF`` / ``EVF2`` signature: ``.E01``, ``.Ex01``): libewf, through `ewf`.
* QCOW (``QFI\\xfb``): libqcow, through `qcow`.
* split raw (``disk.001`` given, ``disk.002``... present): the segments in order.
* block devices and everything else: raw.
* VMDK, VHD, VHDX, VDI: refused with `UnsupportedImage`, saying how to convert.

Opening never reads more than the headers; hashing the whole image is ``acquire``'s job.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sealtrail.errors import CollectionError, UsageError

__all__ = [
    "FORMATS",
    "ImageError",
    "ImageHandle",
    "UnsupportedImage",
    "detect_format",
    "open_image",
    "split_segments",
]

#: What `ImageHandle.format` can be.
FORMATS = ("raw", "split_raw", "blockdev", "ewf", "qcow")

_EWF1 = b"EVF\x09\x0d\x0a\xff\x00"
_EWF2 = b"EVF2\x0d\x0a\x81\x00"
_LEF = (b"LVF\x09\x0d\x0a\xff\x00", b"LEF2\x0d\x0a\x81\x00")
_QCOW = b"QFI\xfb"
_SPLIT = re.compile(r"^(?P<stem>.*\.)(?P<n>\d{3})$")
_CONVERT = "convert with qemu-img convert -O raw"


class ImageError(CollectionError):
    """An image that cannot be opened or read as the format it claims.

    Attributes:
        path: the image file.
        reason: what is wrong with it.
    """

    def __init__(self, path: Path | str, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class UnsupportedImage(UsageError):
    """An image format sealtrail recognises but cannot read (VMDK, VHD...).

    Attributes:
        path: the image file.
        format: the format recognised.
    """

    def __init__(self, path: Path | str, fmt: str, message: str) -> None:
        self.path = str(path)
        self.format = fmt
        super().__init__(f"{path}: {message}")


@dataclass
class ImageHandle:
    """One open image, whatever its format.

    Attributes:
        path: the image file as given (the first segment for split formats).
        format: one of `FORMATS`.
        size: the media size in bytes (for EWF and QCOW the size of the disk they hold).
        segments: every file the image is made of, in order.
        stored_hashes: hashes recorded by the acquiring tool (EWF: ``md5``, ``sha1``).
        metadata: acquisition metadata (EWF header: ``case_number``, ``examiner_name``...).
    """

    path: Path
    format: str
    size: int
    segments: list[str]
    stored_hashes: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)
    _read: Callable[[int, int], bytes] | None = None
    _close: Callable[[], None] | None = None

    def read(self, offset: int, size: int) -> bytes:
        """Read up to ``size`` bytes at ``offset``; short (or empty) at the end of the media.

        Raises:
            ImageError: the image cannot be read there (a truncated segment, I/O error).
        """
        if self._read is None:
            raise ImageError(self.path, "image is closed")
        if offset < 0 or size < 0:
            raise ImageError(self.path, f"bad read at offset {offset}, size {size}")
        size = max(0, min(size, self.size - offset))
        if not size:
            return b""
        try:
            return self._read(offset, size)
        except ImageError:
            raise
        except Exception as exc:  # noqa: BLE001 - libewf/libqcow raise OSError, IOError...
            raise ImageError(self.path, f"read of {size} bytes at offset {offset} failed: "
                                        f"{str(exc).split('. ')[0]}") from exc

    def describe(self) -> dict[str, Any]:
        """The image as recorded in a manifest (no whole-image hash: that is acquire's job)."""
        out: dict[str, Any] = {
            "path": str(self.path),
            "format": self.format,
            "size": self.size,
        }
        if len(self.segments) > 1:
            out["segments"] = [os.path.basename(s) for s in self.segments]
        if self.stored_hashes:
            out["stored_hashes"] = dict(self.stored_hashes)
        if self.metadata:
            out["metadata"] = dict(self.metadata)
        return out

    def close(self) -> None:
        if self._close is not None:
            self._close()
        self._read = self._close = None

    def __enter__(self) -> ImageHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_read_only(path: Path | str) -> int:
    """A read-only descriptor on evidence, with ``O_NOATIME`` where the kernel allows it (it
    needs ownership of the file; without it the file is opened plain read-only)."""
    flags = os.O_RDONLY | os.O_CLOEXEC
    try:
        return os.open(path, flags | getattr(os, "O_NOATIME", 0))
    except PermissionError:
        return os.open(path, flags)


def _head(path: Path, n: int = 512) -> bytes:
    with open(path, "rb") as f:
        return f.read(n)


def _tail(path: Path, n: int = 512) -> bytes:
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        end = f.tell()
        f.seek(max(0, end - n))
        return f.read(n)


def split_segments(path: Path) -> list[Path]:
    """The segments of a split raw image given its first (``x.001`` or ``x.000``): the
    consecutive numbers present from there on."""
    match = _SPLIT.match(path.name)
    if not match:
        return [path]
    stem, first = match.group("stem"), int(match.group("n"))
    found = [path]
    n = first + 1
    while True:
        candidate = path.with_name(f"{stem}{n:03d}")
        if not candidate.is_file():
            return found
        found.append(candidate)
        n += 1


def detect_format(path: Path) -> str:
    """The format of ``path`` (one of `FORMATS`).

    Raises:
        UsageError: the path is missing, a folder, or not a regular file or block device.
        UnsupportedImage: VMDK, VHD, VHDX, VDI, logical EWF (L01).
        ImageError: the file is empty, or its name promises EWF/QCOW without the signature.
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise UsageError(f"image {path} does not exist") from None
    except OSError as exc:
        raise UsageError(f"image {path}: {exc.strerror}") from exc
    if stat.S_ISDIR(st.st_mode):
        raise UsageError(f"{path} is a folder, not an image")
    if stat.S_ISBLK(st.st_mode):
        return "blockdev"
    if not stat.S_ISREG(st.st_mode):
        raise UsageError(f"{path} is neither a regular file nor a block device")
    if st.st_size == 0:
        raise ImageError(path, "empty file, not a disk image")
    try:
        head = _head(path)
        tail = _tail(path)
    except OSError as exc:
        raise ImageError(path, f"cannot read: {exc.strerror}") from exc
    name = path.name.lower()
    if head.startswith((_EWF1, _EWF2)):
        return "ewf"
    if head.startswith(_LEF):
        raise UnsupportedImage(path, "l01", "logical evidence files (L01/Lx01) hold files, "
                               "not a disk: export them with ewfexport or FTK Imager")
    if head.startswith(_QCOW):
        return "qcow"
    if head.startswith(b"KDMV") or head.startswith(b"COWD") or b"# Disk DescriptorFile" in head:
        raise UnsupportedImage(path, "vmdk", f"VMDK images are not supported yet: {_CONVERT}")
    if head.startswith(b"vhdxfile"):
        raise UnsupportedImage(path, "vhdx", f"VHDX images are not supported yet: {_CONVERT}")
    if head.startswith(b"conectix") or tail[-512:].startswith(b"conectix"):
        raise UnsupportedImage(path, "vhd", f"VHD images are not supported yet: {_CONVERT}")
    if head[64:68] == b"\x7f\x10\xda\xbe" or b"<<< Oracle VM VirtualBox Disk Image >>>" in head:
        raise UnsupportedImage(path, "vdi", f"VDI images are not supported yet: {_CONVERT}")
    if re.search(r"\.(e|ex|s|l|lx)0[0-9]$", name):
        raise ImageError(path, "named like an EWF image but has no EWF signature (EVF); "
                               "not an E01 file, or its first segment is damaged")
    if name.endswith((".qcow2", ".qcow", ".qcow3")):
        raise ImageError(path, "named like a QCOW image but has no QCOW signature (QFI)")
    if name.endswith((".vmdk", ".vhd", ".vhdx", ".vdi")):
        fmt = name.rsplit(".", 1)[1]
        raise ImageError(path, f"named like a {fmt.upper()} image but has no such signature")
    if _SPLIT.match(path.name) and len(split_segments(path)) > 1:
        return "split_raw"
    return "raw"


def _open_raw(path: Path, fmt: str) -> ImageHandle:
    segments = split_segments(path) if fmt == "split_raw" else [path]
    fds: list[int] = []
    starts: list[int] = []
    total = 0
    try:
        for segment in segments:
            fd = os.open(segment, os.O_RDONLY | os.O_CLOEXEC)
            fds.append(fd)
            starts.append(total)
            total += os.lseek(fd, 0, os.SEEK_END)
    except OSError as exc:
        for fd in fds:
            os.close(fd)
        raise ImageError(path, f"cannot open: {exc.strerror}") from exc

    def read(offset: int, size: int) -> bytes:
        out = bytearray()
        while size > 0:
            i = _segment_at(starts, offset)
            seg_end = starts[i + 1] if i + 1 < len(starts) else total
            want = min(size, seg_end - offset)
            data = os.pread(fds[i], want, offset - starts[i])
            if not data:
                break
            out += data
            offset += len(data)
            size -= len(data)
        return bytes(out)

    def close() -> None:
        for fd in fds:
            os.close(fd)
        fds.clear()

    return ImageHandle(path, fmt, total, [str(s) for s in segments], _read=read, _close=close)


def _segment_at(starts: list[int], offset: int) -> int:
    lo, hi = 0, len(starts) - 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if starts[mid] <= offset:
            lo = mid
        else:
            hi = mid - 1
    return lo


def open_image(path: Path | str) -> ImageHandle:
    """Open a disk image read-only (see the module docstring for the formats).

    Raises:
        UsageError: the path is missing or a folder.
        UnsupportedImage: a recognised format sealtrail cannot read, with how to convert it.
        ImageError: the file is not a readable image of the format it claims (names the file).
    """
    path = Path(path)
    fmt = detect_format(path)
    if fmt in ("raw", "split_raw", "blockdev"):
        return _open_raw(path, fmt)
    if fmt == "ewf":
        from sealtrail.collectors.ewf import open_ewf

        try:
            ewf = open_ewf(path)
        except CollectionError as exc:
            raise ImageError(path, str(exc).removeprefix(f"{path}: ")) from exc
        handle = ImageHandle(path, "ewf", ewf.size, ewf.segments, ewf.stored_hashes,
                             ewf.metadata, _read=ewf.read, _close=ewf.close)
    else:
        from sealtrail.collectors.qcow import open_qcow

        try:
            qcow = open_qcow(path)
        except CollectionError as exc:
            raise ImageError(path, str(exc).removeprefix(f"{path}: ")) from exc
        handle = ImageHandle(path, "qcow", qcow.size, [str(path)], _read=qcow.read,
                             _close=qcow.close)
    if handle.size <= 0:
        handle.close()
        raise ImageError(path, f"{fmt} image holds no media (size {handle.size})")
    # A truncated or damaged container often opens (the headers are at the start) and fails
    # only when read: read its first and last sectors now, so the error names the cause.
    try:
        for offset in (0, max(0, handle.size - 512)):
            handle.read(offset, 512)
    except ImageError as exc:
        handle.close()
        raise ImageError(path, f"truncated or damaged {fmt} image: {exc.reason}") from exc
    return handle
