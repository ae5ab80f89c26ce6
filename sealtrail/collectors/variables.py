"""Path variables (``%%users.homedir%%``, ``%%environ_systemroot%%``) resolved against a source.

A `KnowledgeBase` is what sealtrail learns about a host from its files before collecting:
its users and a few environment values. `KnowledgeBase.expand` turns one artifact path
pattern into patterns relative to the source root, ``/``-separated, drive letter removed
(``C:\\Windows\\Prefetch\\*.pf`` -> ``Windows/Prefetch/*.pf``), ready for `globbing.glob`.

Values taken from the source (user folder names, homedirs from ``etc/passwd``) are escaped
before they go into a pattern, so a folder called ``a[1]`` or ``*`` matches only itself.
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from sealtrail.collectors.source import DirectorySource, join_relpath
from sealtrail.collectors.windows_profiles import from_registry

__all__ = [
    "Expansion",
    "KnowledgeBase",
    "User",
    "escape_glob",
    "normalise_pattern",
    "parse_passwd",
]

_VARIABLE = re.compile(r"%%([A-Za-z0-9_.]+)%%")
_DRIVE = re.compile(r"^[A-Za-z]:(?=/|$)")

#: Folders under ``Users`` that are not user profiles (compatibility links of old Windows).
_WINDOWS_NON_PROFILES = frozenset({"all users", "default user"})
#: Folders under ``Users`` on macOS that are not user homes.
_DARWIN_NON_HOMES = frozenset({"shared", "guest"})


def escape_glob(text: str) -> str:
    """Escape glob wildcards so ``text`` matches only itself (``a[1]`` -> ``a[[]1]``)."""
    return re.sub(r"([*?\[])", r"[\1]", text)


def normalise_pattern(pattern: str, separator: str = "/") -> str:
    """Turn a path pattern into a ``/``-separated pattern relative to the source root.

    Backslash separators become ``/``, a drive letter (``C:``) and leading slashes are
    removed, and empty components collapse.
    """
    if separator != "/":
        pattern = pattern.replace(separator, "/")
    pattern = _DRIVE.sub("", pattern)
    return "/".join(p for p in pattern.split("/") if p)


@dataclass(frozen=True, slots=True)
class User:
    """One user of the host, as far as the source tells.

    Attributes:
        username: the account or profile folder name.
        uid: the numeric user id from ``etc/passwd``, None when only a folder was found.
        homedir: the home folder as the host writes it (``/home/alice``, ``C:\\Users\\bob``);
            None for a Windows profile the registry names but the volume does not hold.
        sid: the Windows SID (from the SOFTWARE hive's ProfileList), None while unknown.
        appdata: Windows roaming AppData folder, None elsewhere.
        localappdata: Windows local AppData folder, None elsewhere.
        temp: Windows per-user temp folder, None elsewhere.
    """

    username: str
    uid: int | None
    homedir: str | None
    sid: str | None = None
    appdata: str | None = None
    localappdata: str | None = None
    temp: str | None = None

    def value(self, attribute: str) -> str | None:
        """The value of ``%%users.<attribute>%%`` for this user, None when unknown."""
        if attribute in ("homedir", "userprofile"):
            return self.homedir
        if attribute == "username":
            return self.username
        if attribute in ("sid", "appdata", "localappdata", "temp"):
            return getattr(self, attribute)
        if attribute == "uid":
            return None if self.uid is None else str(self.uid)
        return None


@dataclass(frozen=True, slots=True)
class Expansion:
    """The result of expanding one pattern.

    Attributes:
        patterns: ``/``-separated patterns relative to the source root (may be empty).
        unresolved: variables that had no value; when non-empty, ``patterns`` holds only the
            combinations that did resolve (empty if none did).
    """

    patterns: tuple[str, ...]
    unresolved: tuple[str, ...] = ()


def parse_passwd(data: bytes) -> list[tuple[str, int | None, str]]:
    """Parse ``etc/passwd`` into (name, uid, homedir); malformed lines are skipped."""
    users: list[tuple[str, int | None, str]] = []
    for raw in data.splitlines():
        line = os.fsdecode(raw)
        if not line or line.startswith("#"):
            continue
        fields = line.split(":")
        if len(fields) < 6 or not fields[0] or not fields[5]:
            continue
        try:
            uid: int | None = int(fields[2])
        except ValueError:
            uid = None
        users.append((fields[0], uid, fields[5]))
    return users


@dataclass(frozen=True, slots=True)
class KnowledgeBase:
    """Users and environment values of a host, learned from its files.

    Attributes:
        os_name: ``linux``, ``windows``, ``darwin`` or None.
        environ: values of ``%%environ_*%%`` variables, by lower-case name without the
            ``environ_`` prefix (``systemroot``); each may have several values.
        users: the users found.
    """

    os_name: str | None
    environ: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    users: tuple[User, ...] = ()
    notes: Mapping[str, str] = field(default_factory=dict)

    def explain(self, variable: str) -> str:
        """``variable`` (as ``%%name%%``) with why it has no value, when that is known."""
        note = self.notes.get(variable.strip("%").lower())
        return f"{variable} ({note})" if note else variable

    @classmethod
    def from_source(cls, source: DirectorySource, os_name: str | None) -> KnowledgeBase:
        """Learn users and environment values from a source.

        Linux and macOS: users from ``etc/passwd`` whose home folder exists in the source,
        plus every folder in ``home/*`` and ``root`` (and ``Users/*``, ``var/root`` on macOS).
        Windows: the ``Windows`` folder found case-insensitively gives ``systemroot`` and
        ``windir``; every folder in ``Users/*`` (but the ``All Users`` and ``Default User``
        links) is a user profile; the SOFTWARE hive's ProfileList adds SIDs and the profiles
        kept elsewhere, and its SystemRoot wins when it names an existing folder
        (`windows_profiles.from_registry`).

        Args:
            source: the folder source.
            os_name: ``linux``, ``windows``, ``darwin`` (any case) or None (treated as Unix).
        """
        name = os_name.lower() if os_name else None
        if name == "windows":
            return cls._windows(source)
        return cls(os_name=name, environ=MappingProxyType({}), users=_unix_users(source, name))

    @classmethod
    def _windows(cls, source: DirectorySource) -> KnowledgeBase:
        environ: dict[str, tuple[str, ...]] = {
            "systemdrive": ("C:",),
            "programdata": ("C:\\ProgramData",),
            "allusersprofile": ("C:\\ProgramData",),
            "allusersappdata": ("C:\\ProgramData",),
            "programfiles": ("C:\\Program Files",),
            "programfilesx86": ("C:\\Program Files (x86)",),
        }
        windows = source.find_path_ci(b"Windows")
        if windows is not None:
            value = "C:\\" + os.fsdecode(windows)
            environ["systemroot"] = (value,)
            environ["windir"] = (value,)
        users: list[User] = []
        profiles = source.find_path_ci(b"Users")
        if profiles is not None:
            for entry in _subfolders(source, profiles):
                name = os.fsdecode(entry.rsplit(b"/", 1)[-1])
                if name.lower() in _WINDOWS_NON_PROFILES:
                    continue
                users.append(_windows_user(name, "C:\\" + os.fsdecode(entry).replace("/", "\\"),
                                           None))
        system_root = environ["systemroot"][0] if "systemroot" in environ else None
        merged = from_registry(source, users, system_root, _windows_user)
        if merged.system_root:
            environ["systemroot"] = environ["windir"] = (merged.system_root,)
        notes = {"users.sid": merged.sid_note} if merged.sid_note else {}
        return cls(os_name="windows", environ=MappingProxyType(environ), users=merged.users,
                   notes=MappingProxyType(notes))

    def values(self, variable: str) -> tuple[str, ...]:
        """All values of a non-user variable (``environ_systemroot``), empty if unknown."""
        key = variable.lower()
        if key.startswith("environ_"):
            return self.environ.get(key[len("environ_") :], ())
        return ()

    def expand(self, pattern: str, separator: str = "/") -> Expansion:
        """Expand the variables of one artifact path pattern against this host.

        Environment variables are substituted with each of their values; ``users.*``
        variables are substituted per user (so ``%%users.homedir%%`` and
        ``%%users.appdata%%`` in one pattern refer to the same user); the combinations are
        the cartesian product of both. A user without a value for a variable used (an
        unknown SID) is skipped for that pattern.

        Args:
            pattern: a pattern as written in a definition.
            separator: the separator the pattern is written with.

        Returns:
            The patterns, normalised by `normalise_pattern`, and the variables that had no
            value at all.
        """
        variables = list(dict.fromkeys(m.group(1) for m in _VARIABLE.finditer(pattern)))
        user_vars = [v for v in variables if v.lower().startswith("users.")]
        other_vars = [v for v in variables if v not in user_vars]

        unresolved = [v for v in other_vars if not self.values(v)]
        if unresolved:
            return Expansion((), tuple(f"%%{v}%%" for v in unresolved))

        user_choices: list[dict[str, str]] = [{}]
        if user_vars:
            user_choices = []
            missing: set[str] = set()
            for user in self.users:
                found = {v: user.value(v.split(".", 1)[1].lower()) for v in user_vars}
                absent = [v for v, value in found.items() if value is None]
                if absent:
                    missing.update(absent)
                    continue
                user_choices.append({v: str(value) for v, value in found.items()})
            if not user_choices:
                names = missing or set(user_vars)
                return Expansion((), tuple(sorted(f"%%{v}%%" for v in names)))

        patterns: list[str] = []
        environ_choices = itertools.product(*(self.values(v) for v in other_vars))
        for env_values in environ_choices:
            env = dict(zip(other_vars, env_values, strict=True))
            for users in user_choices:
                mapping = {**env, **users}
                expanded = _VARIABLE.sub(
                    lambda m, mapping=mapping: self._insert(mapping[m.group(1)], separator),
                    pattern,
                )
                patterns.append(normalise_pattern(expanded, separator))
        return Expansion(tuple(dict.fromkeys(patterns)), ())

    def _insert(self, value: str, separator: str) -> str:
        """A variable's value, escaped and written with the pattern's separator."""
        if self.os_name == "windows":
            parts = value.replace("/", "\\").split("\\")
        else:
            parts = value.split("/")
        return separator.join(escape_glob(p) for p in parts)


def _windows_user(name: str, home: str | None, sid: str | None) -> User:
    """A Windows profile; the AppData folders are derived from its home (when known)."""
    return User(
        username=name, uid=None, homedir=home, sid=sid,
        appdata=home + "\\AppData\\Roaming" if home else None,
        localappdata=home + "\\AppData\\Local" if home else None,
        temp=home + "\\AppData\\Local\\Temp" if home else None,
    )


def _subfolders(source: DirectorySource, relpath: bytes) -> list[bytes]:
    """Relative paths of the real folders (not symlinks) directly in ``relpath``."""
    try:
        names = source.listdir(relpath)
    except OSError:
        return []
    found: list[bytes] = []
    for name in names:
        path = join_relpath(relpath, name)
        try:
            if source.lstat(path).kind == "dir":
                found.append(path)
        except OSError:
            continue
    return found


def _is_dir(source: DirectorySource, relpath: bytes) -> bool:
    try:
        return source.lstat(relpath).kind == "dir"
    except (OSError, ValueError):
        return False


def _unix_users(source: DirectorySource, os_name: str | None) -> tuple[User, ...]:
    users: dict[str, User] = {}

    def add(name: str, uid: int | None, homedir: str) -> None:
        relpath = os.fsencode(homedir).strip(b"/")
        key = "/" + os.fsdecode(b"/".join(p for p in relpath.split(b"/") if p))
        if key in users or not relpath or b".." in relpath.split(b"/"):
            return
        if _is_dir(source, relpath):
            users[key] = User(username=name, uid=uid, homedir=key)

    passwd_paths = [b"etc/passwd"]
    if os_name == "darwin":
        passwd_paths.append(b"private/etc/passwd")
    for passwd in passwd_paths:
        data = source.read_small(passwd)
        if data:
            for name, uid, homedir in parse_passwd(data):
                if homedir != "/":
                    add(name, uid, homedir)
    for entry in _subfolders(source, b"home"):
        add(os.fsdecode(entry.rsplit(b"/", 1)[-1]), None, "/" + os.fsdecode(entry))
    if os_name == "darwin":
        for entry in _subfolders(source, b"Users"):
            name = os.fsdecode(entry.rsplit(b"/", 1)[-1])
            if name.lower() not in _DARWIN_NON_HOMES:
                add(name, None, "/" + os.fsdecode(entry))
        add("root", 0, "/var/root")
    add("root", 0, "/root")
    return tuple(users.values())
