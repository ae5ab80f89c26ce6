"""Configuration files whose settings can be the weakness a breach came through: sshd_config
(and ``sshd_config.d/*``), sudoers (and ``sudoers.d/*``), ``/etc/passwd`` and ``/etc/shadow``.

They hold settings, not events, so each setting becomes a ``ConfigEntry`` (a ``config_entries``
row: member, line number, ``file_kind``, ``key``, ``value``, the raw line), never an events row.
The findings' configuration rules read that table. Per kind:

* ``sshd_config``, ``sshd_config.d``: ``Keyword value`` or ``Keyword=value``; the key is the
  keyword in lower case (sshd's keywords are case-insensitive), the value the rest as written.
  Every keyword is kept, ``Include`` and ``Match`` too: which value sshd uses (the first it reads,
  global lines before any ``Match``) is the rule's business, not the parser's.
* ``sudoers``, ``sudoers.d``: a line continued with ``\\`` is one entry at its first line.
  ``Defaults*`` lines have the key ``defaults``; alias definitions the alias kind in lower case
  (``cmnd_alias``); ``#include``/``@include``/``#includedir``/``@includedir`` the key ``include``
  or ``includedir``; a user specification (``deploy ALL=(ALL) NOPASSWD: ...``) has the user list
  (spaces removed) as key and the rest as value.
* ``passwd``: key the account name, value its UID; a password field other than ``x``, ``*``,
  ``!`` or empty (a legacy hash in passwd) is written into ``raw`` as ``<set>``.
* ``shadow``: key the account name, value ``empty``, ``locked`` (``!`` or ``*`` first) or
  ``set``, and no ``raw``: the hashes never reach the database.

Blank lines and comments are skipped without a record; a line that is none of the above is a
``Rejection``; so are binary and overlong lines (``iter_lines``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import ClassVar

from sealtrail.analysis.parsers.base import MemberContext
from sealtrail.analysis.parsers.text_lines import iter_lines
from sealtrail.analysis.records import ConfigEntry, Rejection

_KINDS = (
    (re.compile(r"(?:^|/)etc/ssh/sshd_config$"), "sshd_config"),
    (re.compile(r"(?:^|/)etc/ssh/sshd_config\.d/[^/]+$"), "sshd_config.d"),
    (re.compile(r"(?:^|/)etc/sudoers$"), "sudoers"),
    (re.compile(r"(?:^|/)etc/sudoers\.d/[^/]+$"), "sudoers.d"),
    (re.compile(r"(?:^|/)etc/passwd$"), "passwd"),
    (re.compile(r"(?:^|/)etc/shadow$"), "shadow"),
)
_SSHD = re.compile(r"^([A-Za-z][A-Za-z0-9]*)(?:\s*=\s*|\s+)(.*)$")
_SUDO_INCLUDE = re.compile(r"^[#@](include|includedir)\s+(.+)$")
_SUDO_ALIAS = re.compile(r"^(User_Alias|Runas_Alias|Host_Alias|Cmnd_Alias|Cmd_Alias)\s+(.+)$")
_SUDO_SPEC = re.compile(r"^([^\s=,]+(?:\s*,\s*[^\s=,]+)*)\s+(\S.*=.*)$")
_NO_SECRET = ("x", "*", "!", "!!", "")


def file_kind(path: str) -> str | None:
    """The kind of configuration file at ``path`` on the source host, or None."""
    return next((kind for pattern, kind in _KINDS if pattern.search(path)), None)


class ConfigFileParser:
    """sshd_config, sudoers, passwd and shadow: one config_entries row per setting."""

    NAME: ClassVar[str] = "config_files"
    VERSION: ClassVar[str] = "1"
    DESCRIPTION: ClassVar[str] = "configuration files (sshd_config, sudoers, passwd, shadow)"

    def check(self, member: MemberContext, head: bytes) -> bool:
        return file_kind(member.source_path) is not None

    def parse(self, member: MemberContext) -> Iterator[ConfigEntry | Rejection]:
        kind = file_kind(member.source_path) or ""
        read = _READERS[kind]
        with member.open() as stream:
            for number, text, problem in _logical_lines(stream, kind.startswith("sudoers")):
                record = (Rejection(f"line:{number}", problem or "unreadable") if text is None
                          else read(number, text, kind))
                if record is not None:  # None: a blank line or a comment, skipped by design
                    yield record


def _logical_lines(stream, continued: bool) -> Iterator[tuple[int, str | None, str | None]]:  # noqa: ANN001 - a binary stream
    """(line number, text or None, problem); with ``continued``, lines ending in a backslash
    are joined to the next, numbered by their first line."""
    start, parts = 0, []
    for line in iter_lines(stream):
        if line.text is None:
            yield line.number, None, line.problem or "unreadable"
            continue
        text = line.text.rstrip("\r\n")
        if continued and text.endswith("\\"):
            start = start or line.number
            parts.append(text[:-1])
            continue
        if parts:
            yield start, "".join([*parts, text]), None
            start, parts = 0, []
        else:
            yield line.number, text, None
    if parts:
        yield start, "".join(parts), None


def _sshd(number: int, text: str, kind: str) -> ConfigEntry | Rejection | None:
    stripped = text.strip()
    if not stripped or stripped.startswith("#"):
        return None
    if m := _SSHD.match(stripped):
        return ConfigEntry(number, kind, m[1].lower(), m[2].strip(), stripped)
    return Rejection(f"line:{number}", "not a 'Keyword value' line")


def _sudoers(number: int, text: str, kind: str) -> ConfigEntry | Rejection | None:
    stripped = " ".join(text.split())
    if m := _SUDO_INCLUDE.match(stripped):
        return ConfigEntry(number, kind, m[1], m[2], stripped)
    if not stripped or stripped.startswith("#"):
        return None
    if stripped.startswith("Defaults"):
        return ConfigEntry(number, kind, "defaults", stripped[len("Defaults"):].strip(),
                           stripped)
    if m := _SUDO_ALIAS.match(stripped):
        return ConfigEntry(number, kind, m[1].lower(), m[2], stripped)
    if m := _SUDO_SPEC.match(stripped):
        return ConfigEntry(number, kind, re.sub(r"\s+", "", m[1]), m[2], stripped)
    return Rejection(f"line:{number}", "not a sudoers line")


def _passwd(number: int, text: str, kind: str) -> ConfigEntry | Rejection | None:
    if not text.strip() or text.startswith("#"):
        return None
    fields = text.split(":")
    if len(fields) != 7 or not fields[0] or not fields[2].isdigit():
        return Rejection(f"line:{number}", "not a passwd line (name:x:uid:gid:gecos:home:shell)")
    if fields[1] not in _NO_SECRET:
        fields[1] = "<set>"
    return ConfigEntry(number, kind, fields[0], str(int(fields[2])), ":".join(fields))


def _shadow(number: int, text: str, kind: str) -> ConfigEntry | Rejection | None:
    if not text.strip() or text.startswith("#"):
        return None
    fields = text.split(":")
    if len(fields) < 2 or not fields[0]:
        return Rejection(f"line:{number}", "not a shadow line (name:hash:...)")
    secret = fields[1]
    state = ("empty" if secret == "" else
             "locked" if secret.startswith(("!", "*")) else "set")
    return ConfigEntry(number, kind, fields[0], state, None)


_READERS = {"sshd_config": _sshd, "sshd_config.d": _sshd, "sudoers": _sudoers,
            "sudoers.d": _sudoers, "passwd": _passwd, "shadow": _shadow}
