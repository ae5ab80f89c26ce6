"""A full file-system metadata walk written as a TSK 3.x bodyfile (``fls -r -m`` style).

One line per entry::

    MD5|name|inode|mode_as_string|UID|GID|size|atime|mtime|ctime|crtime

* ``MD5`` is always ``0``: the walk reads metadata only (the bundle hashes what it copies).
* ``name`` is ``/`` + the path in the source; a deleted entry (image sources) ends with
  `` (deleted)``, a symlink with `` -> target``, as TSK writes them. A newline or carriage
  return inside a name is written as ``\\n`` / ``\\r`` so one entry stays one line.
* ``mode_as_string`` is TSK's ``<name type>/<meta type><rwxrwxrwx>`` (``r/rrw-r--r--``).
* Times are whole seconds since the epoch, UTC; ``0`` for "not set" (no crtime on ext2).

Walks never follow symlinks, enter each folder inode once, and stop at `MAX_DEPTH` levels;
a folder that cannot be listed is skipped (the walk goes on). Image sources list deleted
entries too (as ``fls`` does); folder sources skip their excluded prefixes (``/proc``...).
"""

from __future__ import annotations

import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from sealtrail.collectors.source import FileInfo, join_relpath

__all__ = [
    "BODYFILE_ARTIFACT",
    "MAX_DEPTH",
    "BodyfileStats",
    "bodyfile_line",
    "bodyfile_member_path",
    "walk_entries",
    "write_bodyfile",
]

#: The artifact name generated bodyfile members are listed under.
BODYFILE_ARTIFACT = "SealtrailBodyfile"
MAX_DEPTH = 64

_NS = 1_000_000_000
_TYPE_CHARS = {
    "file": "r", "dir": "d", "symlink": "l", "fifo": "p", "socket": "s", "chardev": "c",
    "blockdev": "b",
}


def bodyfile_member_path(partition: int | None) -> bytes:
    """The path a generated bodyfile is stored under in a bundle.

    It begins with the component ``$sealtrail``; the bodyfile is written before any
    evidence, so a source file of the same path (only possible on a whole-volume image or a
    folder) gets the writer's ``~2`` suffix instead, and its manifest record says
    ``source.kind == "generated"``.
    """
    suffix = b"" if partition is None else b"-p%d" % partition
    return b"$sealtrail/bodyfile" + suffix + b".body"


@lru_cache(maxsize=4096)
def _mode_text(kind: str, mode: int) -> bytes:
    """TSK's mode column, e.g. ``r/rrw-r--r--`` (cached: a file system has few distinct)."""
    char = _TYPE_CHARS.get(kind, "-")
    perms = stat.filemode(mode)[1:] if mode else "---------"
    return f"{char}/{char}{perms}".encode()


def bodyfile_line(info: FileInfo) -> bytes:
    """One bodyfile line (with its newline) for one entry."""
    name = b"/" + info.relpath
    if info.kind == "symlink" and info.link_target is not None:
        name += b" -> " + info.link_target
    if info.deleted:
        name += b" (deleted)"
    name = name.replace(b"\n", b"\\n").replace(b"\r", b"\\r")
    atime, mtime, ctime, crtime = info.atime_ns, info.mtime_ns, info.ctime_ns, info.birthtime_ns
    # One formatting operation per line (the walk writes one line per entry); times in whole
    # seconds, 0 for unset or negative.
    return b"0|%s|%d|%s|%d|%d|%d|%d|%d|%d|%d\n" % (
        name, info.inode, _mode_text(info.kind, info.mode), info.uid, info.gid, info.size,
        atime // _NS if atime and atime > 0 else 0, mtime // _NS if mtime and mtime > 0 else 0,
        ctime // _NS if ctime and ctime > 0 else 0, crtime // _NS if crtime and crtime > 0 else 0,
    )


@dataclass
class BodyfileStats:
    """What a bodyfile walk covered: entries written, folders it could not list."""

    entries: int = 0
    unreadable: list[str] = field(default_factory=list)


def walk_entries(source: Any) -> Iterator[FileInfo | tuple[bytes, OSError]]:  # noqa: ANN401
    """Every entry of a source (folder or image), root excluded; see the module docstring."""
    if hasattr(source, "with_deleted"):
        yield from source.with_deleted().walk()
        return
    excluded = source.excluded_prefixes
    seen: set[tuple[int, int]] = set()
    stack: list[tuple[bytes, int]] = [(b"", 0)]
    while stack:
        folder, depth = stack.pop()
        try:
            entries = source.scandir(folder)
        except OSError as exc:
            yield folder, exc
            continue
        subfolders: list[tuple[bytes, int]] = []
        for name, info in entries:
            path = join_relpath(folder, name)
            if path in excluded:
                continue
            if isinstance(info, OSError):
                yield path, info
                continue
            yield info
            if info.kind == "dir":
                key = (info.device, info.inode)
                if key in seen or depth + 1 >= MAX_DEPTH:
                    continue
                seen.add(key)
                subfolders.append((path, depth + 1))
        stack.extend(reversed(subfolders))


def write_bodyfile(source: Any, write: Callable[[bytes], object]) -> BodyfileStats:  # noqa: ANN401
    """Walk ``source`` and pass bodyfile text to ``write`` in chunks of about 1 MiB."""
    stats = BodyfileStats()
    buffer = bytearray()
    for item in walk_entries(source):
        if not isinstance(item, FileInfo):  # (relpath, error); FileInfo is a NamedTuple too
            relpath, error = item
            if len(stats.unreadable) < 100:
                shown = relpath.decode("utf-8", "backslashreplace") or "/"
                stats.unreadable.append(f"{shown}: {error.strerror or error}")
            continue
        buffer += bodyfile_line(item)
        stats.entries += 1
        if len(buffer) >= 1 << 20:
            write(bytes(buffer))
            buffer.clear()
    if buffer:
        write(bytes(buffer))
    return stats
