"""Windows users from the registry: the SOFTWARE hive's ProfileList merged with ``Users/*``.

``Users/*`` gives the profile folders present on the volume. The ProfileList gives every
account that has a profile, with its SID, which ``%%users.sid%%`` needs (the Recycle Bin and
the other per-SID paths of the catalogue), including profiles kept elsewhere (service profiles
under ``Windows``, ``Documents and Settings``, another volume). The merge:

- a ProfileList entry whose folder (``%SystemDrive%``, ``%SystemRoot%`` and ``%windir%``
  expanded) is on ``C:`` and exists in the source gives that folder's user its SID, or adds a
  user with that folder as its home;
- an entry whose folder is on another volume, or missing, or written with other variables
  adds a user with the SID and no home folder (per-SID paths resolve for it, home-based ones
  are skipped);
- a folder in ``Users/*`` that no entry names keeps no SID.

``SystemRoot`` from the hive replaces the folder-based guess when it names an existing folder
on ``C:``. The hive is ``Windows/System32/config/SOFTWARE`` (found case-insensitively); when
it is absent or unreadable the folder-based knowledge stands and the reason is kept for the
plan's "no value for %%users.sid%%" outcome.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Sequence
from typing import Any

from sealtrail.collectors.registry_hive import HiveError, SoftwareHive, read_software_hive

__all__ = ["WindowsProfiles", "from_registry"]

_CONFIG = b"Windows/System32/config"
_VARIABLE = re.compile(r"%([A-Za-z0-9_]+)%")
_ON_C = re.compile(r"^[Cc]:\\+")


@dataclasses.dataclass(frozen=True, slots=True)
class WindowsProfiles:
    """The merged users, the system root to use, and why SIDs are unknown (if they are)."""

    users: tuple[Any, ...]
    system_root: str | None
    sid_note: str | None


def _find_hive(source: Any) -> bytes | None:  # noqa: ANN401 - a folder or image source
    folder = source.find_path_ci(_CONFIG)
    if folder is None:
        return None
    try:
        names = source.listdir(folder)
    except OSError:
        return None
    for name in names:
        if name.lower() == b"software":
            return folder + b"/" + name
    return None


def _read(source: Any, relpath: bytes) -> SoftwareHive:  # noqa: ANN401
    shown = os.fsdecode(relpath)
    try:
        info = source.lstat(relpath)
        if info.kind != "file":
            raise HiveError(shown, "not a regular file")
        with source.open_regular(relpath, info) as stream:
            return read_software_hive(stream, shown)
    except OSError as exc:
        raise HiveError(shown, exc.strerror or str(exc)) from exc


def _expand(path: str, system_root: str | None) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1).lower()
        if name == "systemdrive":
            return "C:"
        if name in ("systemroot", "windir") and system_root:
            return system_root
        return match.group(0)

    return _VARIABLE.sub(value, path)


def _folder_on_c(source: Any, path: str) -> str | None:  # noqa: ANN401
    """``C:\\<folder as spelled on disk>`` if ``path`` is an existing folder of the source."""
    if "%" in path or not _ON_C.match(path):
        return None
    relative = _ON_C.sub("", path).replace("\\", "/")
    found = source.find_path_ci(os.fsencode(relative)) if relative else None
    if found is None:
        return None
    return "C:\\" + os.fsdecode(found).replace("/", "\\")


def from_registry(source: Any, users: Sequence[Any], system_root: str | None,  # noqa: ANN401
                  make_user: Any) -> WindowsProfiles:  # noqa: ANN401
    """Merge the hive's profiles into ``users`` (see the module docstring).

    Args:
        source: the folder or image source.
        users: the users found in ``Users/*`` (`variables.User`).
        system_root: the system root found by folder name (``C:\\Windows``) or None.
        make_user: builds a `variables.User` from (username, homedir or None, sid).
    """
    hive_path = _find_hive(source)
    if hive_path is None:
        return WindowsProfiles(tuple(users), system_root,
                               "no SOFTWARE hive in Windows/System32/config")
    try:
        hive = _read(source, hive_path)
    except HiveError as exc:
        return WindowsProfiles(tuple(users), system_root, f"SOFTWARE hive unreadable: {exc}")
    if hive.system_root:
        folder = _folder_on_c(source, hive.system_root)
        if folder is not None:
            system_root = folder
    merged = list(users)
    by_home = {u.homedir.lower(): i for i, u in enumerate(merged) if u.homedir}
    for profile in hive.profiles:
        expanded = _expand(profile.path, system_root)
        home = _folder_on_c(source, expanded)
        index = by_home.get(home.lower()) if home else None
        if index is not None:
            merged[index] = dataclasses.replace(merged[index], sid=profile.sid)
            continue
        name = expanded.replace("/", "\\").rstrip("\\").rsplit("\\", 1)[-1] or profile.sid
        merged.append(make_user(name, home, profile.sid))
        if home:
            by_home[home.lower()] = len(merged) - 1
    note = None if hive.profiles else "the SOFTWARE hive lists no profiles"
    return WindowsProfiles(tuple(merged), system_root, note)
