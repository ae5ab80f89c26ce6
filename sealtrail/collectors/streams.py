"""A read-only, seekable window of bytes: the shape every evidence stream shares."""

from __future__ import annotations

import io
from typing import Any


class WindowStream(io.RawIOBase):
    """``size`` bytes read through ``_read_at``; subclasses say only how to read at an offset.

    Reads stop at ``size`` whatever the backing store holds beyond it; nothing can be written.
    """

    def __init__(self, size: int) -> None:
        super().__init__()
        self._size = size
        self._pos = 0

    @property
    def size(self) -> int:
        return self._size

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: Any) -> int:  # noqa: ANN401 - any writable buffer
        view = memoryview(buffer).cast("B")
        want = min(len(view), self._size - self._pos)
        if want <= 0:
            return 0
        n = self._read_at(self._pos, view[:want])
        self._pos += n
        return n

    def _read_at(self, position: int, view: memoryview) -> int:
        """Fill ``view`` with the bytes at ``position``; return how many were read."""
        raise NotImplementedError


class LibyalMedia:
    """``read``/``close`` over an open libyal handle (pyewf, pyqcow) kept in ``_handle``:
    the media of a container format, read by offset."""

    _handle: Any

    def read(self, offset: int, size: int) -> bytes:
        return self._handle.read_buffer_at_offset(size, offset)  # type: ignore[no-any-return]

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
