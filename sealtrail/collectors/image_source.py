"""A read-only source over one file system inside a disk image (through `tsk`).

`ImageSource` answers the same questions as `DirectorySource` (``lstat``, ``listdir``,
``scandir``, ``open_regular``, ``find_path_ci``, ``detect_os``...), so the collection plan and
the globber work on an image unchanged. Paths are ``bytes``, ``/``-separated, relative to the
file system root.

What differs from a folder, on purpose:

* Metadata comes from TSK: ``inode`` is the metadata address (the MFT entry number on NTFS),
  ``mode`` is rebuilt from the TSK type and permission bits, times carry TSK's nanoseconds
  where the file system has them, ``birthtime_ns`` is TSK's crtime (None when 0). NTFS
  ``$FILE_NAME`` times, which TSK reads but pytsk3 does not expose as fields, are parsed from
  the raw attribute into `FileInfo.fn_times`.
* NTFS ``$`` metadata files (``$MFT``, ``$LogFile``...) are ordinary entries: collectable by
  path. TSK's virtual ``$OrphanFiles`` folder is left out of listings (it means a scan of
  every inode); FAT's virtual ``$MBR``/``$FAT1``/``$FAT2`` files are kept.
* ``include_deleted``: unallocated directory entries are listed, flagged ``deleted``. Their
  content is collectable only when the metadata entry survives, is itself unallocated (not
  reused by another file) and has a size: that is what `FileInfo.allocated` and ``size`` tell
  the plan. A deleted name equal to a live name in the same folder is left out (the live file
  wins); the bodyfile lists both.
* Hostile structure: a folder whose inode is already one of its ancestors (a directory loop)
  is not entered (ELOOP), and paths deeper than `MAX_DEPTH` components are refused.
* Names holding ``/`` or NUL (impossible on a sane file system) are shown with those bytes
  as ``%2F`` / ``%00``.
"""

from __future__ import annotations

import errno
import stat
import struct
from typing import Any

from sealtrail.collectors.images import ImageError, ImageHandle
from sealtrail.collectors.source import FileInfo, SourceQueries, SwappedFile
from sealtrail.collectors.streams import WindowStream
from sealtrail.collectors.tsk import Partition, open_fs, open_img, tsk
from sealtrail.errors import UsageError

__all__ = ["CASE_INSENSITIVE_FS", "MAX_DEPTH", "ImageSource", "TskReader"]

#: Deepest path (in components) an image walk or lookup goes.
MAX_DEPTH = 64
#: File systems whose names compare case-insensitively.
CASE_INSENSITIVE_FS = frozenset({"ntfs", "fat12", "fat16", "fat32", "exfat", "hfs", "iso9660"})

_META_KINDS = {
    int(tsk.TSK_FS_META_TYPE_REG): ("file", stat.S_IFREG),
    int(tsk.TSK_FS_META_TYPE_DIR): ("dir", stat.S_IFDIR),
    int(tsk.TSK_FS_META_TYPE_LNK): ("symlink", stat.S_IFLNK),
    int(tsk.TSK_FS_META_TYPE_FIFO): ("fifo", stat.S_IFIFO),
    int(tsk.TSK_FS_META_TYPE_SOCK): ("socket", stat.S_IFSOCK),
    int(tsk.TSK_FS_META_TYPE_CHR): ("chardev", stat.S_IFCHR),
    int(tsk.TSK_FS_META_TYPE_BLK): ("blockdev", stat.S_IFBLK),
    int(tsk.TSK_FS_META_TYPE_VIRT): ("file", stat.S_IFREG),
    int(tsk.TSK_FS_META_TYPE_VIRT_DIR): ("dir", stat.S_IFDIR),
}
_NAME_KINDS = {
    int(tsk.TSK_FS_NAME_TYPE_REG): ("file", stat.S_IFREG),
    int(tsk.TSK_FS_NAME_TYPE_DIR): ("dir", stat.S_IFDIR),
    int(tsk.TSK_FS_NAME_TYPE_LNK): ("symlink", stat.S_IFLNK),
    int(tsk.TSK_FS_NAME_TYPE_FIFO): ("fifo", stat.S_IFIFO),
    int(tsk.TSK_FS_NAME_TYPE_SOCK): ("socket", stat.S_IFSOCK),
    int(tsk.TSK_FS_NAME_TYPE_CHR): ("chardev", stat.S_IFCHR),
    int(tsk.TSK_FS_NAME_TYPE_BLK): ("blockdev", stat.S_IFBLK),
    int(tsk.TSK_FS_NAME_TYPE_VIRT): ("file", stat.S_IFREG),
    int(tsk.TSK_FS_NAME_TYPE_VIRT_DIR): ("dir", stat.S_IFDIR),
}
_NAME_UNALLOC = int(tsk.TSK_FS_NAME_FLAG_UNALLOC)
_META_ALLOC = int(tsk.TSK_FS_META_FLAG_ALLOC)
_VIRT_DIR = int(tsk.TSK_FS_NAME_TYPE_VIRT_DIR)
_FNAME = int(tsk.TSK_FS_ATTR_TYPE_NTFS_FNAME)
_DATA_TYPES = (int(tsk.TSK_FS_ATTR_TYPE_DEFAULT), int(tsk.TSK_FS_ATTR_TYPE_NTFS_DATA))
_ATTR_NONRES = int(tsk.TSK_FS_ATTR_NONRES)
_ATTR_NOT_PLAIN = int(tsk.TSK_FS_ATTR_COMP) | int(tsk.TSK_FS_ATTR_ENC) | int(tsk.TSK_FS_ATTR_SPARSE)
_ATTR_PACKED = int(tsk.TSK_FS_ATTR_COMP) | int(tsk.TSK_FS_ATTR_ENC)
_RUN_HOLE = int(tsk.TSK_FS_ATTR_RUN_FLAG_SPARSE) | int(tsk.TSK_FS_ATTR_RUN_FLAG_FILLER)
#: A file in more pieces than this is read through TSK (its run list would be a large message).
MAX_RUNS = 100_000
_NTFS_EPOCH_DELTA = 116_444_736_000_000_000  # 100 ns ticks from 1601-01-01 to 1970-01-01


def _show(relpath: bytes) -> str:
    return relpath.decode("utf-8", "backslashreplace") if relpath else "."


def _safe_name(name: bytes) -> bytes:
    return name.replace(b"%", b"%25").replace(b"/", b"%2F").replace(b"\x00", b"%00") \
        if (b"/" in name or b"\x00" in name) else name


_NS = 1_000_000_000
_new_tuple = tuple.__new__


def _trimmed(runs: list[tuple[int, int]], size: int,
             media_size: int) -> list[tuple[int, int]] | None:
    """``runs`` cut to ``size`` bytes; None if they hold fewer or reach past the media."""
    out: list[tuple[int, int]] = []
    left = size
    for start, length in runs:
        if not left:
            break
        take = min(length, left)
        if start < 0 or start + take > media_size:
            return None
        out.append((start, take))
        left -= take
    return out if not left else None


def _ns(seconds: int, nano: int) -> int:
    return int(seconds) * 1_000_000_000 + int(nano or 0)


def _filetime_ns(ticks: int) -> int | None:
    if ticks <= 0:
        return None
    return (ticks - _NTFS_EPOCH_DELTA) * 100


def _fn_times(file: Any) -> tuple[int | None, int | None, int | None, int | None] | None:
    """The first ``$FILE_NAME`` attribute's times (atime, mtime, ctime, crtime) in ns.

    pytsk3 does not expose them as fields; the attribute's content is read raw and decoded
    (offsets 8..40 of the $FILE_NAME structure: created, modified, MFT changed, accessed).
    """
    try:
        for attr in file:
            if int(attr.info.type) != _FNAME:
                continue
            raw = file.read_random(0, 40, attr.info.type, attr.info.id)
            if len(raw) < 40:
                return None
            created, modified, changed, accessed = struct.unpack_from("<4Q", raw, 8)
            return (_filetime_ns(accessed), _filetime_ns(modified), _filetime_ns(changed),
                    _filetime_ns(created))
    except Exception:  # noqa: BLE001 - a damaged attribute list: no $FILE_NAME times
        return None
    return None


class TskReader(WindowStream):
    """A read-only stream of a file's default data attribute, up to its recorded size."""

    def __init__(self, file: Any, size: int, relpath: bytes) -> None:  # noqa: ANN401
        super().__init__(size)
        self._file = file
        self.relpath = relpath

    def _read_at(self, position: int, view: memoryview) -> int:
        try:
            data = self._file.read_random(position, len(view))
        except Exception as exc:  # noqa: BLE001 - pytsk3 raises IOError/OSError for bad runs
            raise OSError(errno.EIO, f"TSK read error at offset {position}: {exc}") from exc
        view[: len(data)] = data
        return len(data)


class ImageSource(SourceQueries):
    """A read-only view of one file system in an image (see the module docstring).

    Args:
        handle: the open image.
        partition: the partition to read (from `tsk.list_partitions`).
        include_deleted: list deleted directory entries, flagged ``deleted``.
        img: an already opened TSK image for ``handle`` (shared between partitions).

    Raises:
        UsageError: the partition has no file system TSK can read.
    """

    def __init__(self, handle: ImageHandle, partition: Partition, *,
                 include_deleted: bool = False, img: Any = None) -> None:
        self.handle = handle
        self.partition = partition
        self.include_deleted = include_deleted
        self._img = img if img is not None else open_img(handle)
        try:
            self._fs = open_fs(self._img, partition.start_offset)
        except Exception as exc:  # noqa: BLE001 - TSK's reason is in the message
            raise UsageError(
                f"{handle.path}: partition {partition.index} has no readable file system "
                f"({partition.fs_error or exc})"
            ) from exc
        self.fs_type = partition.fs_type
        self._index = partition.index  # read once per directory entry: kept at hand
        self._ntfs = self.fs_type == "ntfs"
        self.case_insensitive = partition.fs_type in CASE_INSENSITIVE_FS
        self.root = f"{handle.path} partition {partition.index}"
        self.is_live = False
        self.excluded_prefixes: frozenset[bytes] = frozenset()
        self._root_inum = int(self._fs.info.root_inum)
        # relpath of a folder -> (its inode chain from the root, {name: FileInfo})
        self._dirs: dict[bytes, dict[bytes, FileInfo]] = {}
        self._chains: dict[bytes, tuple[int, ...]] = {b"": (self._root_inum,)}
        self._root_info: FileInfo | None = None

    def __repr__(self) -> str:
        return f"ImageSource({str(self.handle.path)!r}, partition={self.partition.index})"

    def with_deleted(self) -> ImageSource:
        """The same file system with deleted entries listed (for a full metadata walk)."""
        if self.include_deleted:
            return self
        other = ImageSource.__new__(ImageSource)
        other.__dict__.update(self.__dict__)
        other.include_deleted = True
        other._dirs = {}
        other._chains = {b"": (self._root_inum,)}
        return other

    # -- paths ------------------------------------------------------------------------------

    @staticmethod
    def _components(relpath: bytes) -> list[bytes]:
        parts = SourceQueries._components(relpath)
        if len(parts) > MAX_DEPTH:
            raise OSError(errno.ELOOP, f"deeper than {MAX_DEPTH} levels", _show(relpath))
        return parts

    def host_path(self, relpath: bytes) -> bytes:
        """A readable location for messages: ``<image>#p<N>:/path`` (never opened)."""
        return f"{self.handle.path}#p{self.partition.index}:/".encode() + relpath

    # -- metadata ---------------------------------------------------------------------------

    def _info(self, relpath: bytes, file: Any, deleted: bool) -> FileInfo:
        meta = file.info.meta
        if meta is not None:
            kind, type_bits = _META_KINDS.get(int(meta.type), ("other", 0))
            link = meta.link if kind == "symlink" else None
            if isinstance(link, str):
                link = link.encode("utf-8", "surrogateescape")
            crtime = meta.crtime
            # One tuple in FileInfo's field order, built without NamedTuple's Python-level
            # __new__: this runs once per directory entry.
            # pytsk3 gives the numeric fields as int; only its enums go through int().
            return _new_tuple(FileInfo, (
                relpath, kind, type_bits | (int(meta.mode) & 0o7777), max(0, meta.size),
                meta.uid, meta.gid, meta.addr, 0, meta.nlink,
                meta.atime * _NS + (meta.atime_nano or 0),
                meta.mtime * _NS + (meta.mtime_nano or 0),
                meta.ctime * _NS + (meta.ctime_nano or 0),
                crtime * _NS + (meta.crtime_nano or 0) if crtime else None,
                link or None, bool(int(meta.flags) & _META_ALLOC), deleted, self._index,
                _fn_times(file) if self._ntfs else None,
            ))
        name = file.info.name
        kind, type_bits = _NAME_KINDS.get(int(name.type), ("other", 0))
        return FileInfo(
            relpath=relpath, kind=kind, mode=type_bits, size=0, uid=0, gid=0,
            inode=int(name.meta_addr or 0), device=0, nlink=0, atime_ns=0, mtime_ns=0,
            ctime_ns=0, birthtime_ns=None, link_target=None, allocated=None, deleted=deleted,
            partition=self.partition.index,
        )

    def _listing(self, relpath: bytes) -> dict[bytes, FileInfo]:
        """The entries of a folder by name (cached), walked by inode, never by TSK path."""
        cached = self._dirs.get(relpath)
        if cached is not None:
            return cached
        parts = self._components(relpath)
        if parts:
            parent = b"/".join(parts[:-1])
            entry = self._listing(parent).get(parts[-1])
            if entry is None:
                raise FileNotFoundError(errno.ENOENT, "no such file", _show(relpath))
            if entry.kind != "dir":
                raise NotADirectoryError(errno.ENOTDIR, "not a folder", _show(relpath))
            chain = self._chains[parent]
            if entry.inode in chain:
                raise OSError(errno.ELOOP, "directory loop (an ancestor's inode)",
                              _show(relpath))
            inum = entry.inode
        else:
            chain, inum = (), self._root_inum
        try:
            directory = self._fs.open_dir(inode=inum)
        except Exception as exc:  # noqa: BLE001 - TSK's reason is in the message
            raise OSError(errno.EIO, f"cannot list: {exc}", _show(relpath)) from exc
        found: dict[bytes, FileInfo] = {}
        base = b"/".join(parts)
        prefix = base + b"/" if base else b""
        info = self._info
        try:
            for file in directory:
                name = file.info.name
                raw = name.name
                if raw in (b".", b"..") or not raw or int(name.type) == _VIRT_DIR:
                    continue
                deleted = bool(int(name.flags) & _NAME_UNALLOC)
                if deleted and not self.include_deleted:
                    continue
                clean = _safe_name(raw)
                previous = found.get(clean)
                if previous is not None and (deleted or not previous.deleted):
                    continue  # a live name wins over a deleted one; first of equals wins
                found[clean] = info(prefix + clean, file, deleted)
        except Exception as exc:  # noqa: BLE001 - a damaged folder: what was read is kept
            if not found:
                raise OSError(errno.EIO, f"cannot list: {exc}", _show(relpath)) from exc
        self._dirs[relpath] = found
        self._chains[relpath] = (*chain, inum) if parts else (self._root_inum,)
        return found

    def _root(self) -> FileInfo:
        if self._root_info is None:
            file = self._fs.open_meta(inode=self._root_inum)
            self._root_info = self._info(b"", file, False)
        return self._root_info

    def lstat(self, relpath: bytes) -> FileInfo:
        """Metadata of a path (symlinks are never followed).

        Raises:
            FileNotFoundError: no such entry. NotADirectoryError: a component is not a
                folder. OSError: ELOOP for a directory loop or a path deeper than
                `MAX_DEPTH`, EIO when TSK cannot read a folder on the way.
        """
        parts = self._components(relpath)
        if not parts:
            return self._root()
        entry = self._listing(b"/".join(parts[:-1])).get(parts[-1])
        if entry is None:
            raise FileNotFoundError(errno.ENOENT, "no such file", _show(relpath))
        return entry

    def listdir(self, relpath: bytes) -> list[bytes]:
        """The sorted names in a folder (raises like `lstat`)."""
        return sorted(self._listing(b"/".join(self._components(relpath))))

    def scandir(self, relpath: bytes) -> list[tuple[bytes, FileInfo | OSError]]:
        """The entries of a folder with their metadata, sorted by name."""
        listing = self._listing(b"/".join(self._components(relpath)))
        return [(name, listing[name]) for name in sorted(listing)]

    # -- content ----------------------------------------------------------------------------

    def open_regular(self, relpath: bytes, expected: FileInfo) -> TskReader:
        """A read-only stream of a regular file's data (its default data attribute).

        The file is opened by the inode the listing gave, so a deleted entry reads its own
        (unallocated) metadata entry, not whatever TSK would resolve the path to.

        Raises:
            SwappedFile: the metadata entry is no longer a regular file of that inode.
            OSError: TSK cannot open it (EIO).
        """
        try:
            file = self._fs.open_meta(inode=expected.inode)
        except Exception as exc:  # noqa: BLE001 - TSK's reason is in the message
            raise OSError(errno.EIO, f"cannot open: {exc}", _show(relpath)) from exc
        meta = file.info.meta
        if meta is None or _META_KINDS.get(int(meta.type), ("other",))[0] != "file":
            raise SwappedFile(relpath, "its metadata entry is not a regular file")
        return TskReader(file, max(0, int(meta.size)), relpath)

    def data_runs(self, expected: FileInfo) -> list[tuple[int, int]] | None:
        """Where a regular file's bytes lie in the image file: (offset, length) ranges in
        file order covering exactly its size, so that reading them from the image gives what
        TSK would read. None whenever that cannot be promised, and the file is read through
        TSK instead: the image is not one raw file or device; the data is resident (in the
        MFT), compressed, encrypted or sparse; a run is a filler or out of order; the runs do
        not cover the size or reach past the end of the image; more than `MAX_RUNS` pieces.
        """
        if self.handle.format not in ("raw", "blockdev"):
            return None
        try:
            file = self._fs.open_meta(inode=expected.inode)
            meta = file.info.meta
            if meta is None or _META_KINDS.get(int(meta.type), ("other",))[0] != "file":
                return None
            size = max(0, int(meta.size))
            if size != expected.size:
                return None
            attrs = [a for a in file
                     if int(a.info.type) in _DATA_TYPES and not a.info.name]
            if len(attrs) != 1:
                return None
            flags = int(attrs[0].info.flags)
            if not flags & _ATTR_NONRES or flags & _ATTR_NOT_PLAIN:
                return None
            block = int(self._fs.info.block_size)
            base = self.partition.start_offset
            runs: list[tuple[int, int]] = []
            covered = 0  # file blocks so far
            for run in attrs[0]:
                if int(run.flags) != 0 or int(run.offset) != covered or len(runs) > MAX_RUNS:
                    return None
                start, length = base + int(run.addr) * block, int(run.len) * block
                covered += int(run.len)
                if runs and runs[-1][0] + runs[-1][1] == start:
                    runs[-1] = (runs[-1][0], runs[-1][1] + length)
                else:
                    runs.append((start, length))
        except Exception:  # noqa: BLE001 - anything odd: TSK reads it, and reports it
            return None
        return _trimmed(runs, size, self.handle.size)

    def allocated_size(self, expected: FileInfo) -> int | None:
        """Bytes the file system holds for a regular file's data: its default data
        attribute's runs, less the holes (sparse and filler runs), times the block size.
        None when that cannot be told (resident data, no single data attribute, NTFS
        compression, whose saved clusters are sparse runs too; an error)."""
        try:
            file = self._fs.open_meta(inode=expected.inode)
            attrs = [a for a in file if int(a.info.type) in _DATA_TYPES and not a.info.name]
            if len(attrs) != 1:
                return None
            flags = int(attrs[0].info.flags)
            if not flags & _ATTR_NONRES or flags & _ATTR_PACKED:
                return None
            blocks = sum(int(run.len) for run in attrs[0] if not int(run.flags) & _RUN_HOLE)
        except Exception:  # noqa: BLE001 - a damaged attribute: not known
            return None
        return blocks * int(self._fs.info.block_size)

    def walk(self, relpath: bytes = b"") -> Any:
        """Every entry below ``relpath``, depth first (sorted), each folder inode entered
        once and never deeper than `MAX_DEPTH`: yields FileInfo or (relpath, OSError)."""
        seen: set[int] = set()
        stack: list[tuple[bytes, int]] = [(relpath, 0)]
        while stack:
            folder, depth = stack.pop()
            try:
                entries = self.scandir(folder)
            except OSError as exc:
                yield folder, exc
                continue
            subfolders: list[tuple[bytes, int]] = []
            for _name, info in entries:
                yield info
                if isinstance(info, FileInfo) and info.kind == "dir" and not info.deleted:
                    if info.inode in seen or depth + 1 >= MAX_DEPTH:
                        yield info.relpath, OSError(
                            errno.ELOOP, "folder already walked or too deep",
                            _show(info.relpath))
                        continue
                    seen.add(info.inode)
                    subfolders.append((info.relpath, depth + 1))
            stack.extend(reversed(subfolders))

    def close(self) -> None:
        self._dirs.clear()


def open_image_error(exc: BaseException, handle: ImageHandle) -> ImageError:
    """An `ImageError` for a TSK failure on ``handle`` (one line, names the image)."""
    return ImageError(handle.path, str(exc).split("\n")[0])
