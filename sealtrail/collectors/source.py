"""A read-only view of a folder that is the root of a host filesystem.

`DirectorySource` is what collectors see instead of the host: a mounted image, or ``/`` on a live
host. Paths inside it are ``bytes``, relative to the root, ``/``-separated, without a leading
slash, so names that are not UTF-8 survive untouched.

Safety rules, each answering a live-collection hazard (see CUSTODY-NOTES "Live collection"):

1. Symlinks are never followed, not even inside the root. Every path is resolved one component
   at a time from a descriptor of the root, each directory opened with ``O_NOFOLLOW``, so a
   symlink swapped into the middle of a path cannot redirect us outside the root.
2. FIFOs, sockets and devices are never opened: `lstat` reports them, `open_regular` refuses
   anything that is not the regular file the caller saw (`SwappedFile`).
3. Reading files and listing folders does not change access times where the kernel allows it
   (``O_NOATIME``). Reading a symlink's target does, on file systems that record access
   times: ``readlink`` has no such flag (docs/collection.md).
4. On a live root, pseudo and network filesystems (``/proc``, ``/sys``, NFS mounts...) are
   excluded: a walk neither descends into them nor crosses them.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, NamedTuple

from sealtrail.errors import CollectionError, UsageError

__all__ = [
    "DEFAULT_LIVE_EXCLUSIONS",
    "DirectorySource",
    "FileInfo",
    "SourceQueries",
    "SwappedFile",
    "excluded_mount_points",
    "join_relpath",
]

#: Top-level folders of a live root that hold no evidence on disk (kernel views, devices, runtime).
DEFAULT_LIVE_EXCLUSIONS: tuple[bytes, ...] = (b"proc", b"sys", b"dev", b"run")

#: Filesystem types whose mount points a live walk skips: network shares (not this host's
#: evidence, and slow or hanging when the server is gone) and kernel pseudo filesystems.
_EXCLUDED_FS_TYPES = frozenset(
    {
        "nfs",
        "nfs4",
        "cifs",
        "smb3",
        "smbfs",
        "sshfs",
        "fuse.sshfs",
        "9p",
        "proc",
        "sysfs",
        "devtmpfs",
        "devpts",
        "debugfs",
        "tracefs",
        "securityfs",
        "pstore",
        "bpf",
        "autofs",
        "mqueue",
        "hugetlbfs",
        "configfs",
        "fusectl",
        "binfmt_misc",
        "efivarfs",
        "rpc_pipefs",
        "nsfs",
    }
)

_KINDS = {
    stat.S_IFREG: "file",
    stat.S_IFDIR: "dir",
    stat.S_IFLNK: "symlink",
    stat.S_IFIFO: "fifo",
    stat.S_IFSOCK: "socket",
    stat.S_IFCHR: "chardev",
    stat.S_IFBLK: "blockdev",
}

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_NOATIME = getattr(os, "O_NOATIME", 0)

SMALL_FILE_LIMIT = 1024 * 1024


class SwappedFile(CollectionError):
    """The file at a path is no longer the regular file that was listed.

    Raised by `DirectorySource.open_regular` when what it opened is not a regular file, or is
    another inode or device than the one seen by `lstat` (a symlink, FIFO or other file was
    put in its place between listing and reading).

    Attributes:
        relpath: the path inside the source.
        reason: what differed.
    """

    def __init__(self, relpath: bytes, reason: str = "replaced since it was listed") -> None:
        self.relpath = relpath
        self.reason = reason
        super().__init__(f"{_show(relpath)}: {reason}")


def _show(relpath: bytes) -> str:
    """Text for a path in a message; bytes that are not UTF-8 are shown escaped."""
    return relpath.decode("utf-8", "backslashreplace") if relpath else "."


def join_relpath(parent: bytes, name: bytes) -> bytes:
    """Join a relative path and one name (the root is ``b""``)."""
    return name if not parent else parent + b"/" + name


class FileInfo(NamedTuple):
    """What ``lstat`` said about one path of a source, taken without following symlinks.

    Immutable; a NamedTuple rather than a frozen dataclass because a walk builds one per
    directory entry, and constructing a frozen dataclass cost more than TSK's own iteration
    (bench/bench_images.py, metadata walk).

    Attributes:
        relpath: the path inside the source (bytes, ``/``-separated, no leading slash).
        kind: ``file``, ``dir``, ``symlink``, ``fifo``, ``socket``, ``chardev``, ``blockdev``
            or ``other``.
        mode: the full ``st_mode``.
        size: ``st_size`` in bytes.
        uid: owner user id.
        gid: owner group id.
        inode: ``st_ino``.
        device: ``st_dev``.
        nlink: number of hard links.
        atime_ns: access time, nanoseconds since the epoch (UTC).
        mtime_ns: modification time.
        ctime_ns: inode change time.
        birthtime_ns: creation time where the platform reports one, else None.
        link_target: the symlink's target as stored (never resolved), else None.
        allocated: image sources only: whether the file's metadata entry (inode, MFT record)
            is allocated; None for folder sources and for names without a metadata entry.
        deleted: image sources only: the directory entry is unallocated (a deleted name).
        partition: image sources only: the index of the partition the file is on.
        fn_times: NTFS only: the times of the ``$FILE_NAME`` attribute as
            ``(atime, mtime, ctime, crtime)`` in nanoseconds (``ctime`` is the MFT entry
            change time); None elsewhere.
    """

    relpath: bytes
    kind: str
    mode: int
    size: int
    uid: int
    gid: int
    inode: int
    device: int
    nlink: int
    atime_ns: int
    mtime_ns: int
    ctime_ns: int
    birthtime_ns: int | None
    link_target: bytes | None
    allocated: bool | None = None
    deleted: bool = False
    partition: int | None = None
    fn_times: tuple[int | None, int | None, int | None, int | None] | None = None

    @classmethod
    def from_stat(
        cls, relpath: bytes, st: os.stat_result, link_target: bytes | None = None
    ) -> FileInfo:
        """Build a FileInfo from an ``os.stat_result`` taken with ``follow_symlinks=False``."""
        birth = getattr(st, "st_birthtime_ns", None)
        if birth is None:
            seconds = getattr(st, "st_birthtime", None)
            birth = None if seconds is None else int(seconds * 1_000_000_000)
        return cls(
            relpath=relpath,
            kind=_KINDS.get(stat.S_IFMT(st.st_mode), "other"),
            mode=st.st_mode,
            size=st.st_size,
            uid=st.st_uid,
            gid=st.st_gid,
            inode=st.st_ino,
            device=st.st_dev,
            nlink=st.st_nlink,
            atime_ns=st.st_atime_ns,
            mtime_ns=st.st_mtime_ns,
            ctime_ns=st.st_ctime_ns,
            birthtime_ns=birth,
            link_target=link_target,
        )


def _unescape_mountinfo(field: str) -> str:
    """Undo the octal escapes (``\\040`` for a space) of a mountinfo path field."""
    out: list[str] = []
    i = 0
    while i < len(field):
        if field[i] == "\\" and i + 4 <= len(field) and field[i + 1 : i + 4].isdigit():
            out.append(chr(int(field[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def excluded_mount_points(mountinfo: str) -> list[bytes]:
    """Mount points of a live root that a walk must not enter, from ``/proc/self/mountinfo``.

    Args:
        mountinfo: the text of a mountinfo file.

    Returns:
        Relative paths (no leading slash) of network and pseudo filesystem mounts, and of tmpfs
        mounted under ``/run``. The root mount itself is never excluded.
    """
    found: list[bytes] = []
    for line in mountinfo.splitlines():
        fields = line.split()
        if "-" not in fields:
            continue
        dash = fields.index("-")
        if dash < 5 or dash + 1 >= len(fields):
            continue
        mount_point = _unescape_mountinfo(fields[4])
        fstype = fields[dash + 1]
        relpath = os.fsencode(mount_point).strip(b"/")
        if not relpath:
            continue
        if (
            fstype in _EXCLUDED_FS_TYPES
            or fstype.startswith("cgroup")
            or fstype.startswith("fuse.sshfs")
            or (fstype == "tmpfs" and (relpath == b"run" or relpath.startswith(b"run/")))
        ):
            found.append(relpath)
    return found


class SourceQueries:
    """Questions about the host answered through a source's own ``lstat``, ``listdir`` and
    ``open_regular`` (shared by `DirectorySource` and the image source)."""

    @staticmethod
    def _components(relpath: bytes) -> list[bytes]:
        """The path's components; ``..`` is refused (a source path never leaves the root)."""
        parts = [p for p in relpath.split(b"/") if p and p != b"."]
        if b".." in parts:
            raise UsageError(f"path {_show(relpath)} inside the source must not contain '..'")
        return parts

    def lstat(self, relpath: bytes) -> FileInfo:  # pragma: no cover - overridden
        raise NotImplementedError

    def exists(self, relpath: bytes) -> bool:
        """Whether ``relpath`` exists (of any kind), without following symlinks."""
        try:
            self.lstat(relpath)
        except OSError:
            return False
        return True

    def listdir(self, relpath: bytes) -> list[bytes]:  # pragma: no cover - overridden
        raise NotImplementedError

    def open_regular(self, relpath: bytes, expected: FileInfo) -> BinaryIO:  # pragma: no cover
        raise NotImplementedError

    def read_small(self, relpath: bytes, limit: int = SMALL_FILE_LIMIT) -> bytes | None:
        """Read a small regular file (a config file such as ``etc/passwd``) whole.

        Returns:
            The bytes, or None when the path is missing, not a regular file, larger than
            ``limit``, or cannot be read.
        """
        try:
            info = self.lstat(relpath)
            if info.kind != "file" or info.size > limit:
                return None
            with self.open_regular(relpath, info) as f:
                data = f.read(limit + 1)
        except (OSError, SwappedFile):
            return None
        return None if len(data) > limit else data

    # -- what kind of host -----------------------------------------------------------------

    def _find_dir_ci(self, parent: bytes, name: bytes) -> bytes | None:
        """The real name of a sub-folder of ``parent`` matching ``name`` case-insensitively."""
        try:
            names = self.listdir(parent)
        except OSError:
            return None
        wanted = name.lower()
        for candidate in names:
            if candidate.lower() == wanted:
                path = join_relpath(parent, candidate)
                try:
                    if self.lstat(path).kind == "dir":
                        return path
                except OSError:
                    continue
        return None

    def find_path_ci(self, relpath: bytes) -> bytes | None:
        """Find a folder path whose components match ``relpath`` case-insensitively.

        Returns:
            The path as spelled on disk, or None.
        """
        current = b""
        for part in self._components(relpath):
            found = self._find_dir_ci(current, part)
            if found is None:
                return None
            current = found
        return current

    def detect_os(self) -> str | None:
        """Guess the operating system whose filesystem this is.

        Windows is checked first (a ``Windows/System32`` folder in any case), then macOS
        (``System/Library/CoreServices``, which no Linux has), then Linux (``etc/os-release``
        or ``etc/passwd``).

        Returns:
            ``windows``, ``darwin``, ``linux`` or None.
        """
        if self.find_path_ci(b"Windows/System32") is not None:
            return "windows"
        if self.exists(b"System/Library/CoreServices"):
            return "darwin"
        if self.exists(b"etc/os-release") or self.exists(b"etc/passwd"):
            return "linux"
        return None

    def hostname(self) -> str | None:
        """The host name from ``etc/hostname`` (first line, stripped), else None."""
        data = self.read_small(b"etc/hostname", limit=4096)
        if not data:
            return None
        lines = data.decode("utf-8", "replace").splitlines()
        first = lines[0].strip() if lines else ""
        return first or None


def _open_noatime(path: bytes, flags: int, dir_fd: int | None) -> int:
    """``os.open`` with ``O_NOATIME`` added, or without it when the kernel refuses it (EPERM)."""
    try:
        return os.open(path, flags | _NOATIME, dir_fd=dir_fd)
    except PermissionError:
        if not _NOATIME:
            raise
        return os.open(path, flags, dir_fd=dir_fd)


class DirectorySource(SourceQueries):
    """A read-only view of a folder that is the root of a host filesystem.

    Args:
        root: the folder (a mounted image, or ``/`` for a live host).
        exclude: relative paths a walk must not enter. None (the default) means: nothing for a
            folder, and `DEFAULT_LIVE_EXCLUSIONS` plus network and pseudo filesystem mount
            points when ``root`` resolves to ``/``.

    Raises:
        UsageError: ``root`` is missing or not a directory.
    """

    def __init__(self, root: Path | str, *, exclude: Iterable[bytes] | None = None) -> None:
        root = Path(root)
        if not root.exists():
            raise UsageError(f"source {root} does not exist")
        if not root.is_dir():
            raise UsageError(f"source {root} is not a directory")
        self.root = root
        self._root_bytes = os.fsencode(str(root))
        self.is_live = root.resolve() == Path("/")
        if exclude is None:
            exclude = self._live_exclusions() if self.is_live else ()
        self.excluded_prefixes: frozenset[bytes] = frozenset(
            p.strip(b"/") for p in exclude if p.strip(b"/")
        )

    def __repr__(self) -> str:
        return f"DirectorySource({str(self.root)!r})"

    @staticmethod
    def _live_exclusions() -> list[bytes]:
        found = list(DEFAULT_LIVE_EXCLUSIONS)
        try:
            with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
                found.extend(excluded_mount_points(f.read()))
        except OSError:
            pass  # no /proc: the defaults still keep a walk out of the kernel views
        return found

    # -- path resolution -------------------------------------------------------------------


    @contextmanager
    def _parent_fd(self, relpath: bytes) -> Iterator[tuple[int, bytes]]:
        """Yield a descriptor of the folder holding ``relpath`` and the last component.

        Every folder on the way is opened relative to the previous one with ``O_NOFOLLOW``,
        so no symlink on the path is followed (the open fails with ELOOP or ENOTDIR).
        """
        parts = self._components(relpath)
        fd = os.open(self._root_bytes, _DIR_FLAGS)
        try:
            for part in parts[:-1]:
                nxt = os.open(part, _DIR_FLAGS, dir_fd=fd)
                os.close(fd)
                fd = nxt
            yield fd, (parts[-1] if parts else b".")
        finally:
            os.close(fd)

    def host_path(self, relpath: bytes) -> bytes:
        """The absolute host path of ``relpath`` (for messages only; never opened as such)."""
        parts = self._components(relpath)
        return os.path.join(self._root_bytes, *parts) if parts else self._root_bytes

    # -- metadata --------------------------------------------------------------------------

    def lstat(self, relpath: bytes) -> FileInfo:
        """Stat a path without following symlinks, and read a symlink's target.

        Raises:
            OSError: the path does not exist, a folder on the way is a symlink (ELOOP or
                ENOTDIR), or access is denied.
        """
        with self._parent_fd(relpath) as (fd, name):
            st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            target = os.readlink(name, dir_fd=fd) if stat.S_ISLNK(st.st_mode) else None
        return FileInfo.from_stat(b"/".join(self._components(relpath)), st, target)

    def _open_dir(self, relpath: bytes) -> int:
        """A descriptor of the folder ``relpath`` to list, reached without following any
        symlink, opened with ``O_NOATIME`` where the kernel allows it (listing a folder
        otherwise updates its access time; EPERM when not its owner and without CAP_FOWNER:
        then opened without)."""
        if not self._components(relpath):
            return _open_noatime(self._root_bytes, _DIR_FLAGS, None)
        with self._parent_fd(relpath) as (parent, name):
            return _open_noatime(name, _DIR_FLAGS, parent)

    def listdir(self, relpath: bytes) -> list[bytes]:
        """The sorted names in a folder.

        Raises:
            OSError: the folder is missing, is not a folder (a symlink to one included),
                or cannot be listed (EACCES).
        """
        fd = self._open_dir(relpath)
        try:
            return sorted(os.fsencode(n) for n in os.listdir(fd))
        finally:
            os.close(fd)

    def scandir(self, relpath: bytes) -> list[tuple[bytes, FileInfo | OSError]]:
        """List a folder and ``lstat`` each entry, opening the folder once.

        Returns:
            (name, FileInfo or the OSError that stat'ing it raised), sorted by name.

        Raises:
            OSError: the folder is missing, is not a folder (a symlink to one included),
                or cannot be listed (EACCES).
        """
        base = b"/".join(self._components(relpath))
        fd = self._open_dir(relpath)
        try:
            found: list[tuple[bytes, FileInfo | OSError]] = []
            for name in sorted(os.fsencode(n) for n in os.listdir(fd)):
                try:
                    st = os.stat(name, dir_fd=fd, follow_symlinks=False)
                    target = os.readlink(name, dir_fd=fd) if stat.S_ISLNK(st.st_mode) else None
                    found.append((name, FileInfo.from_stat(join_relpath(base, name), st, target)))
                except OSError as exc:
                    found.append((name, exc))
            return found
        finally:
            os.close(fd)

    # -- content ---------------------------------------------------------------------------

    def open_regular(self, relpath: bytes, expected: FileInfo) -> BinaryIO:
        """Open a regular file for reading, refusing anything but the file that was listed.

        The open never follows a symlink, never blocks on a FIFO (``O_NONBLOCK``, reset once
        the file is known to be regular), and asks for ``O_NOATIME`` so reading leaves the
        access time alone; when the kernel refuses that (EPERM: not the owner and no
        CAP_FOWNER) it opens without it.

        Args:
            relpath: the path inside the source.
            expected: what `lstat` said about it before; inode and device must still match.

        Returns:
            A binary file object; the caller closes it.

        Raises:
            SwappedFile: the path is now a symlink, a folder on the way is now a symlink, or
                the opened file is not regular or is another inode or device.
            OSError: the file vanished or cannot be read.
        """
        try:
            with self._parent_fd(relpath) as (parent, name):
                fd = _open_noatime(name, _FILE_FLAGS, parent)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                raise SwappedFile(relpath, "a symlink or non-folder is now on its path") from exc
            raise
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise SwappedFile(relpath, "no longer a regular file")
            if st.st_ino != expected.inode or st.st_dev != expected.device:
                raise SwappedFile(
                    relpath,
                    f"inode {st.st_dev}:{st.st_ino} differs from the listed "
                    f"{expected.device}:{expected.inode}",
                )
            flags = fcntl.fcntl(fd, fcntl.F_GETFL)
            fcntl.fcntl(fd, fcntl.F_SETFL, flags & ~os.O_NONBLOCK)
            return os.fdopen(fd, "rb")
        except BaseException:
            os.close(fd)
            raise
