"""Decompression of systemd journal DATA payloads: XZ (stdlib), LZ4 and Zstandard (optional).

This is the only module that imports ``lz4`` and ``zstandard``. Either may be missing: the
journal parser then rejects the entries that need it, naming the package, and reads the rest.

Formats, as journald writes them:

- XZ: a complete ``.xz`` stream.
- LZ4: 8 bytes little-endian uncompressed size, then one raw LZ4 *block* (not a frame).
- ZSTD: one Zstandard frame.

Every decompression is capped at ``limit`` bytes of output so that a hostile payload that claims
or expands to gigabytes is refused instead of exhausting memory.
"""

from __future__ import annotations

import io
import lzma
import struct

try:
    import lz4.block as _lz4_block
except ImportError:  # pragma: no cover - depends on the environment
    _lz4_block = None

try:
    import zstandard as _zstd
except ImportError:  # pragma: no cover - depends on the environment
    _zstd = None

# journald refuses DATA objects above 768 MiB; we read far less per field.
DEFAULT_LIMIT = 64 * 1024 * 1024


class DecompressionFailed(ValueError):
    """A payload that cannot be decompressed; the message is the Rejection reason."""


def lz4_available() -> bool:
    return _lz4_block is not None


def zstd_available() -> bool:
    return _zstd is not None


def decompress(method: str, payload: bytes, limit: int = DEFAULT_LIMIT) -> bytes:
    """The decompressed payload.

    Args:
        method: ``"xz"``, ``"lz4"`` or ``"zstd"``.
        payload: the compressed bytes as stored in the DATA object.
        limit: the largest output accepted.

    Raises:
        DecompressionFailed: unknown method, library missing, corrupt data or output over limit.
    """
    if method == "xz":
        return _xz(payload, limit)
    if method == "lz4":
        return _lz4(payload, limit)
    if method == "zstd":
        return _zstandard(payload, limit)
    raise DecompressionFailed(f"unknown compression {method!r}")


def _xz(payload: bytes, limit: int) -> bytes:
    decompressor = lzma.LZMADecompressor(format=lzma.FORMAT_XZ)
    try:
        out = decompressor.decompress(payload, max_length=limit + 1)
    except lzma.LZMAError as exc:
        raise DecompressionFailed(f"XZ data is corrupt: {exc}") from exc
    if len(out) > limit:
        raise DecompressionFailed(f"XZ data expands beyond {limit} bytes")
    if not decompressor.eof:
        raise DecompressionFailed("XZ data is truncated")
    return out


def _lz4(payload: bytes, limit: int) -> bytes:
    if _lz4_block is None:
        raise DecompressionFailed("compressed with LZ4 but lz4 is not installed")
    if len(payload) < 8:
        raise DecompressionFailed("LZ4 data is shorter than its 8-byte size prefix")
    (size,) = struct.unpack_from("<Q", payload)
    if size > limit:
        raise DecompressionFailed(f"LZ4 data claims {size} bytes, over the {limit}-byte limit")
    try:
        out = _lz4_block.decompress(payload[8:], uncompressed_size=size)
    except Exception as exc:  # lz4.block raises LZ4BlockError, a plain Exception subclass
        raise DecompressionFailed(f"LZ4 data is corrupt: {exc}") from exc
    if len(out) != size:
        raise DecompressionFailed(f"LZ4 data gives {len(out)} bytes, {size} expected")
    return out


def _zstandard(payload: bytes, limit: int) -> bytes:
    if _zstd is None:
        raise DecompressionFailed("compressed with ZSTD but zstandard is not installed")
    try:
        # journald's frames record their content size; -1 when a writer left it out
        declared = _zstd.frame_content_size(payload)
        reader = _zstd.ZstdDecompressor().stream_reader(io.BytesIO(payload))
        out = reader.read(limit + 1)
    except _zstd.ZstdError as exc:
        raise DecompressionFailed(f"ZSTD data is corrupt: {exc}") from exc
    if len(out) > limit:
        raise DecompressionFailed(f"ZSTD data expands beyond {limit} bytes")
    # the stream reader returns what it has when the input ends early: compare with the header
    if declared >= 0 and len(out) != declared:
        raise DecompressionFailed(f"ZSTD data gives {len(out)} bytes, {declared} expected")
    return out
