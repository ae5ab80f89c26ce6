"""EWF (EnCase ``.E01`` / ``.Ex01``) images through libewf (``pyewf``): the only module that
imports it.

An EWF image is split into segment files (``.E01``, ``.E02``, ... ``.EAA``); given the first,
libewf's own glob finds the rest. The acquisition header (case number, examiner, dates) and the
media hashes the acquiring tool stored are read here; checking the media against them is the
job of a full read (``acquire``), not of opening.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyewf

from sealtrail.collectors.streams import LibyalMedia
from sealtrail.errors import CollectionError

__all__ = ["EwfImage", "open_ewf"]

# Header values worth showing, in the order shown (libewf names).
_METADATA_KEYS = (
    "case_number",
    "evidence_number",
    "description",
    "examiner_name",
    "notes",
    "acquiry_date",
    "system_date",
    "acquiry_operating_system",
    "acquiry_software",
    "acquiry_software_version",
    "model",
    "serial_number",
)


@dataclass
class EwfImage(LibyalMedia):
    """An open EWF image.

    Attributes:
        segments: the segment files, in order.
        size: the media size in bytes.
        stored_hashes: hashes the acquiring tool stored (``md5``, ``sha1``), lower-case hex.
        metadata: the acquisition header values (``case_number``, ``examiner_name``...).
    """

    segments: list[str]
    size: int
    stored_hashes: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)
    _handle: Any = None


def _text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    text = str(value).strip()
    return text or None


def open_ewf(path: Path) -> EwfImage:
    """Open an EWF image from its first segment file.

    Raises:
        CollectionError: the segments cannot be found or libewf refuses them (message names
            the file and libewf's reason).
    """
    try:
        segments = list(pyewf.glob(str(path)))
    except Exception as exc:  # noqa: BLE001 - pyewf raises MemoryError, IOError... for one cause
        raise CollectionError(f"{path}: cannot find the EWF segment files: {exc}") from exc
    handle = pyewf.handle()
    try:
        handle.open(segments)
        size = int(handle.get_media_size())
    except Exception as exc:  # noqa: BLE001 - libewf errors come as OSError or ValueError
        raise CollectionError(
            f"{path}: not a readable EWF image ({_libewf_reason(exc)})"
        ) from exc
    hashes: dict[str, str] = {}
    for name in ("MD5", "SHA1"):
        try:
            value = _text(handle.get_hash_value(name))
        except Exception:  # noqa: BLE001, S112 - a missing hash is not an error
            continue
        if value and value.strip("0"):
            hashes[name.lower()] = value.lower()
    metadata: dict[str, str] = {}
    for key in _METADATA_KEYS:
        try:
            value = _text(handle.get_header_value(key))
        except Exception:  # noqa: BLE001, S112 - absent header values raise
            continue
        if value:
            metadata[key] = value
    return EwfImage(segments, size, hashes, metadata, handle)


def _libewf_reason(exc: BaseException) -> str:
    """libewf's messages chain every layer; the first one says what happened."""
    text = str(exc).strip() or type(exc).__name__
    return text.split(". ")[0] if ". " in text else text
