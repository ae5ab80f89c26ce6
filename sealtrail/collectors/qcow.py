"""QCOW2 images through libqcow (``pyqcow``): the only module that imports it.

Images with a backing file (a snapshot overlay) are refused: reading one alone would return
zeros where the backing file holds the data, and silently so.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyqcow

from sealtrail.collectors.streams import LibyalMedia
from sealtrail.errors import CollectionError

__all__ = ["QcowImage", "open_qcow"]


@dataclass
class QcowImage(LibyalMedia):
    """An open QCOW image; ``size`` is the virtual disk size in bytes."""

    size: int
    _handle: Any = None


def open_qcow(path: Path) -> QcowImage:
    """Open a QCOW image.

    Raises:
        CollectionError: libqcow refuses the file, or it has a backing file.
    """
    handle = pyqcow.file()
    try:
        handle.open(str(path))
        size = int(handle.get_media_size())
        backing = handle.get_backing_filename()
    except Exception as exc:  # noqa: BLE001 - libqcow errors come as OSError or ValueError
        text = str(exc).strip() or type(exc).__name__
        raise CollectionError(
            f"{path}: not a readable QCOW image ({text.split('. ')[0]})"
        ) from exc
    if backing:
        handle.close()
        name = backing.decode("utf-8", "replace") if isinstance(backing, bytes) else backing
        raise CollectionError(
            f"{path}: QCOW image with a backing file ({name}) is not supported: "
            "flatten it with qemu-img convert -O raw"
        )
    return QcowImage(size, handle)
