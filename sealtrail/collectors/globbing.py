"""Matching path patterns against a `DirectorySource`, without ever following a symlink.

Two dialects:

* ForensicArtifacts (``artifact_semantics=True``): ``*``, ``?`` and ``[...]`` match within one
  path component (fnmatch rules); a component ``**`` stands for one to 3 components, ``**N``
  for one to N (the catalogue's ``/var/spool/cron/**`` means "files 1 to 3 levels below").
* Ad-hoc globs given with ``--path`` (``artifact_semantics=False``): ``**`` stands for any
  number of components, zero included (``srv/data/**`` is everything below ``srv/data``).
  The walk is bounded by `MAX_DEPTH` levels below the ``**``; reaching it is reported.

A walk never descends through a symlink (so a symlink loop cannot trap it), never enters an
excluded prefix of the source, and never stops for one folder it cannot list: every such
event becomes a `WalkProblem`, which callers turn into outcomes and reasons.
Matched symlinks and special files are yielded like any other entry; their ``kind`` tells the
caller not to read them.
"""

from __future__ import annotations

import errno
import fnmatch
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

from sealtrail.collectors.source import DirectorySource, FileInfo, join_relpath
from sealtrail.errors import UsageError

__all__ = [
    "ARTIFACT_DEFAULT_DEPTH",
    "MAX_DEPTH",
    "Globber",
    "WalkProblem",
    "glob",
    "has_magic",
    "split_pattern",
]

#: Depth a bare ``**`` stands for in ForensicArtifacts patterns.
ARTIFACT_DEFAULT_DEPTH = 3
#: Bound of an ad-hoc ``**`` walk, in levels below where the ``**`` starts.
MAX_DEPTH = 64

_RECURSIVE = re.compile(r"^\*\*(\d*)$")


@dataclass(frozen=True, slots=True)
class WalkProblem:
    """Something a walk could not look into.

    Attributes:
        relpath: the path concerned.
        kind: ``unreadable`` (a folder that could not be listed or an entry that could not be
            stat'ed), ``symlink`` (a symlink where the pattern needs a folder; not followed),
            ``excluded`` (an excluded prefix of a live source), ``depth_limit`` (an ad-hoc
            ``**`` walk stopped at `MAX_DEPTH`) or ``vanished`` (listed, then gone).
        reason: human text (the errno name for ``unreadable``, the target for ``symlink``).
        errno_name: the errno name (``EACCES``) when an OS error caused it, else ``""``.
    """

    relpath: bytes
    kind: str
    reason: str
    errno_name: str = ""


def has_magic(component: str) -> bool:
    """Whether a pattern component holds a wildcard."""
    return any(c in component for c in "*?[")


def split_pattern(pattern: str) -> list[str]:
    """Split a ``/``-separated pattern into components, dropping empty ones and ``.``.

    Raises:
        UsageError: the pattern holds a ``..`` component (it could leave the source root).
    """
    parts = [p for p in pattern.split("/") if p and p != "."]
    if ".." in parts:
        raise UsageError(f"pattern {pattern!r} must not contain '..'")
    return parts


@lru_cache(maxsize=4096)
def _matcher(component: str, case_insensitive: bool) -> re.Pattern[str]:
    flags = re.IGNORECASE if case_insensitive else 0
    return re.compile(fnmatch.translate(component), flags)


def _errno_name(exc: OSError) -> str:
    return errno.errorcode.get(exc.errno or 0, type(exc).__name__)


def _show(relpath: bytes) -> str:
    return relpath.decode("utf-8", "backslashreplace") if relpath else "."


class Globber:
    """Matches patterns against one source, caching folder listings and ``lstat`` results.

    One Globber serves every pattern of a collection plan, so a folder shared by many
    patterns is listed once. The caches assume the source does not change meanwhile; what
    does change is caught later, when the file is opened (`SwappedFile`).

    Args:
        source: the folder source.
    """

    def __init__(self, source: DirectorySource) -> None:
        self.source = source
        self._listings: dict[bytes, list[FileInfo | tuple[bytes, OSError]] | OSError] = {}
        self._infos: dict[bytes, FileInfo | OSError] = {}

    # -- cached access ----------------------------------------------------------------------

    def _scandir(self, relpath: bytes) -> list[FileInfo | tuple[bytes, OSError]] | OSError:
        cached = self._listings.get(relpath)
        if cached is None:
            try:
                entries = self.source.scandir(relpath)
            except OSError as exc:
                cached = exc
            else:
                cached = []
                for name, info in entries:
                    child = join_relpath(relpath, name)
                    self._infos.setdefault(child, info)
                    cached.append(info if isinstance(info, FileInfo) else (child, info))
            self._listings[relpath] = cached
        return cached

    def _lstat(self, relpath: bytes) -> FileInfo | OSError:
        cached = self._infos.get(relpath)
        if cached is None:
            try:
                cached = self.source.lstat(relpath)
            except OSError as exc:
                cached = exc
            self._infos[relpath] = cached
        return cached

    def info(self, relpath: bytes) -> FileInfo | None:
        """What ``lstat`` says about ``relpath`` (cached), None if it cannot be stat'ed."""
        found = self._lstat(relpath)
        return found if isinstance(found, FileInfo) else None

    # -- matching ---------------------------------------------------------------------------

    def glob(
        self,
        pattern: str,
        *,
        case_insensitive: bool,
        artifact_semantics: bool,
        problems: list[WalkProblem] | None = None,
    ) -> Iterator[FileInfo]:
        """Yield the entries matching ``pattern``, each once, in walk order.

        Args:
            pattern: ``/``-separated, relative to the source root (a leading ``/`` is ignored).
            case_insensitive: match names regardless of case (Windows, macOS sources).
            artifact_semantics: ForensicArtifacts ``**`` rules (bounded) instead of ad-hoc ones.
            problems: a list that receives every `WalkProblem` met on the way.

        Raises:
            UsageError: the pattern holds ``..``.
        """
        parts = split_pattern(pattern)
        sink: list[WalkProblem] = problems if problems is not None else []
        walk = _Walk(self, parts, case_insensitive, artifact_semantics, sink)
        return _unique(walk.match(b"", 0)) if parts else iter(())


def _unique(found: Iterator[FileInfo]) -> Iterator[FileInfo]:
    seen: set[bytes] = set()
    for info in found:
        if info.relpath not in seen:
            seen.add(info.relpath)
            yield info


class _Walk:
    """One pattern being matched (the state shared by the recursive steps)."""

    def __init__(
        self,
        globber: Globber,
        parts: list[str],
        case_insensitive: bool,
        artifact_semantics: bool,
        problems: list[WalkProblem],
    ) -> None:
        self.g = globber
        self.parts = parts
        self.ci = case_insensitive
        self.artifact = artifact_semantics
        self.problems = problems
        self._reported: set[tuple[bytes, str]] = set()

    def _problem(self, relpath: bytes, kind: str, reason: str, errno_name: str = "") -> None:
        if (relpath, kind) not in self._reported:
            self._reported.add((relpath, kind))
            self.problems.append(WalkProblem(relpath, kind, reason, errno_name))

    def _excluded(self, relpath: bytes) -> bool:
        if relpath in self.g.source.excluded_prefixes:
            self._problem(relpath, "excluded", f"{_show(relpath)} is excluded from the walk")
            return True
        return False

    def _entries(self, parent: bytes) -> list[FileInfo]:
        """The entries of a folder, stat'ed; problems recorded, never raised."""
        listing = self.g._scandir(parent)
        if isinstance(listing, OSError):
            if not isinstance(listing, FileNotFoundError | NotADirectoryError):
                name = _errno_name(listing)
                self._problem(parent, "unreadable", f"cannot list {_show(parent)}: {name}", name)
            return []
        entries: list[FileInfo] = []
        for entry in listing:
            if isinstance(entry, FileInfo):  # before the tuple test: FileInfo is a NamedTuple
                if not self._excluded(entry.relpath):
                    entries.append(entry)
                continue
            child, error = entry
            if not self._excluded(child):
                self._stat_problem(child, error)
        return entries

    def _stat_problem(self, relpath: bytes, error: OSError) -> None:
        name = _errno_name(error)
        if isinstance(error, FileNotFoundError):
            self._problem(relpath, "vanished", f"{_show(relpath)} vanished while listed", name)
        elif error.errno not in (errno.ENOTDIR, errno.ELOOP):
            self._problem(relpath, "unreadable", f"cannot stat {_show(relpath)}: {name}", name)

    def _stat(self, relpath: bytes) -> FileInfo | None:
        info = self.g._lstat(relpath)
        if isinstance(info, FileNotFoundError):
            return None  # a literal name that is not there: simply no match
        if isinstance(info, OSError):
            self._stat_problem(relpath, info)
            return None
        return info

    def _candidates(self, parent: bytes, component: str) -> list[FileInfo]:
        """Entries of ``parent`` whose name matches one pattern component."""
        if not has_magic(component) and not self.ci:
            child = join_relpath(parent, os.fsencode(component))
            if self._excluded(child):
                return []
            info = self._stat(child)
            return [info] if info is not None else []
        regex = _matcher(component, self.ci)
        return [
            e
            for e in self._entries(parent)
            if regex.match(os.fsdecode(e.relpath.rsplit(b"/", 1)[-1]))
        ]

    def _descend_ok(self, info: FileInfo) -> bool:
        """Whether the walk may go into ``info``; a symlink in the way is reported."""
        if info.kind == "dir":
            return True
        if info.kind == "symlink":
            target = (info.link_target or b"").decode("utf-8", "backslashreplace")
            self._problem(
                info.relpath,
                "symlink",
                f"{_show(info.relpath)} is a symlink to {target}, not followed",
            )
        return False

    def match(self, parent: bytes, index: int) -> Iterator[FileInfo]:
        """Entries below folder ``parent`` that match ``parts[index:]``."""
        component = self.parts[index]
        last = index == len(self.parts) - 1
        recursive = _RECURSIVE.match(component)
        if recursive:
            yield from self._match_recursive(parent, index, recursive.group(1), last)
            return
        for info in self._candidates(parent, component):
            if last:
                yield info
            elif self._descend_ok(info):
                yield from self.match(info.relpath, index + 1)

    def _match_recursive(
        self, parent: bytes, index: int, depth_text: str, last: bool
    ) -> Iterator[FileInfo]:
        if self.artifact:
            max_depth = int(depth_text) if depth_text else ARTIFACT_DEFAULT_DEPTH
            min_depth = 1
        else:
            max_depth = min(int(depth_text), MAX_DEPTH) if depth_text else MAX_DEPTH
            min_depth = 0
        if min_depth == 0 and not last:
            yield from self.match(parent, index + 1)  # ``**`` standing for no component
        # Breadth by levels, so shallow matches come first and the depth bound is exact.
        level = [parent]
        for _ in range(max_depth):
            following: list[bytes] = []
            for folder in level:
                for info in self._entries(folder):
                    if last:
                        yield info
                    elif info.kind == "dir":
                        yield from self.match(info.relpath, index + 1)
                    if info.kind == "dir":
                        following.append(info.relpath)
            level = following
            if not level:
                return
        if not self.artifact and level and max_depth == MAX_DEPTH:
            for folder in level:
                if any(self._entries(folder)):
                    self._problem(
                        folder,
                        "depth_limit",
                        f"{_show(folder)} is {MAX_DEPTH} levels deep; not walked further",
                    )


def glob(
    source: DirectorySource,
    pattern: str,
    *,
    case_insensitive: bool,
    artifact_semantics: bool,
    problems: list[WalkProblem] | None = None,
) -> Iterator[FileInfo]:
    """Yield the entries of ``source`` matching ``pattern`` (see the module docstring).

    Args:
        source: the folder source.
        pattern: ``/``-separated, relative to the source root.
        case_insensitive: match names regardless of case.
        artifact_semantics: ForensicArtifacts ``**`` rules instead of ad-hoc ones.
        problems: a list that receives every `WalkProblem` met on the way.

    Raises:
        UsageError: the pattern holds ``..``.
    """
    return Globber(source).glob(
        pattern,
        case_insensitive=case_insensitive,
        artifact_semantics=artifact_semantics,
        problems=problems,
    )
