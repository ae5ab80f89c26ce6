"""CRC-32 (the ZIP checksum) with ISA-L where it is installed.

``isal`` (python-isal, Intel ISA-L) computes the same CRC-32 as ``zlib.crc32`` several times
faster on this machine (bench/bench_acquire.py prints both rates), which matters because every
byte of a bundle passes through it. The only module that imports ``isal``.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

__all__ = ["CRC32_IMPLEMENTATION", "crc32"]

crc32: Callable[[bytes | bytearray | memoryview, int], int]
try:
    from isal import isal_zlib

    crc32 = isal_zlib.crc32
    CRC32_IMPLEMENTATION = "isal"
except ImportError:  # a platform without an isal wheel: same values, slower
    crc32 = zlib.crc32
    CRC32_IMPLEMENTATION = "zlib"
