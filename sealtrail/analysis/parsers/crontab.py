"""crontab files: user crontabs (``/var/spool/cron/crontabs/U``, ``/var/spool/cron/U``) and system
ones (``/etc/crontab``, ``/etc/cron.d/*``, which have a user column).

A crontab holds no times, so each job line becomes an ``other`` event at the file's mtime
(``ts_desc="crontab file modified"``): "this job was in the crontab as last modified then", with
``command_line``, ``user`` (the file's owner, or the user column) and ``attributes["schedule"]``.
Without an mtime the line is rejected. ``NAME=value`` lines are ``other`` events too
(``attributes["variable"]``: a changed ``PATH`` or ``MAILTO`` matters). The header ``crontab -e``
writes, ``# (- installed on Tue Mar 10 02:19:40 2026)``, is an ``other`` event at that time
(read as UTC, ``tz_assumed``). Other comments are rejected ("comment"), so every non-blank line
is counted; blank lines are skipped without a record.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, ClassVar

from sealtrail.analysis.parsers.base import MemberContext
from sealtrail.analysis.parsers.text_lines import iter_lines
from sealtrail.analysis.records import Event, Rejection

_FIELD = r"[0-9A-Za-z*/,\-?LW#]+"
_JOB5 = re.compile(rf"^\s*({_FIELD})\s+({_FIELD})\s+({_FIELD})\s+({_FIELD})\s+({_FIELD})\s+(.+)$")
_JOB_AT = re.compile(
    r"^\s*(@(?:reboot|yearly|annually|monthly|weekly|daily|midnight|hourly))\s+(.+)$"
)
_VARIABLE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$")
_INSTALLED = re.compile(r"^# \(\S+ installed on (.+)\)\s*$")
_FIELD_OK = re.compile(r"^[0-9*/,\-?LW#]+$|^[A-Za-z]{3}(?:-[A-Za-z]{3})?(?:,[A-Za-z]{3})*$")


def _is_system(path: str) -> bool:
    return path == "/etc/crontab" or "/etc/cron.d/" in path or path.endswith("/etc/crontab")


class CrontabParser:
    """User and system crontab files, one event per job line at the file's mtime."""

    NAME: ClassVar[str] = "crontab"
    VERSION: ClassVar[str] = "1"
    DESCRIPTION: ClassVar[str] = "crontab files (user and /etc/crontab, /etc/cron.d)"

    def check(self, member: MemberContext, head: bytes) -> bool:
        path = member.source_path
        return (_is_system(path) or "/var/spool/cron/" in path
                or "/cron/tabs/" in path) and "/cron.d/." not in path

    def parse(self, member: MemberContext) -> Iterator[Event | Rejection]:
        system = _is_system(member.source_path)
        owner = None if system else member.file_name
        with member.open() as stream:
            for line in iter_lines(stream):
                if line.text is None:
                    yield Rejection(line.ref, line.problem or "unreadable")
                elif line.text.strip():
                    yield self._line(line.text.strip(), line.ref, member, system, owner)

    @staticmethod
    def _line(text: str, ref: str, member: MemberContext, system: bool,
              owner: str | None) -> Event | Rejection:
        if text.startswith("#"):
            if m := _INSTALLED.match(text):
                try:
                    ts = datetime.strptime(
                        " ".join(m[1].split()), "%a %b %d %H:%M:%S %Y").replace(tzinfo=UTC)
                except ValueError:
                    return Rejection(ref, "comment")
                return Event(ts=ts, ts_desc="crontab installed (header)",
                             event_type="other", message=text, record_ref=ref, user=owner,
                             path=member.source_path,
                             attributes={"tz_assumed": "UTC", "action": "crontab_installed"})
            return Rejection(ref, "comment")
        if member.mtime is None:
            return Rejection(ref, "no timestamp (crontab mtime unknown)")
        attrs: dict[str, Any] = {"crontab": "system" if system else "user"}
        user = owner
        if m := _VARIABLE.match(text):
            if not _JOB5.match(text) or "=" in text.split()[0]:
                attrs.update(variable=m[1], value=m[2])
                return Event(ts=member.mtime, ts_desc="crontab file modified", event_type="other",
                             message=text, record_ref=ref, user=owner, path=member.source_path,
                             attributes=attrs)
        if m := _JOB_AT.match(text):
            schedule, command = m[1], m[2]
        elif (m := _JOB5.match(text)) and all(_FIELD_OK.match(f) for f in m.groups()[:5]):
            schedule, command = " ".join(m.groups()[:5]), m[6]
        else:
            return Rejection(ref, "not a crontab line")
        if system:
            parts = command.split(None, 1)
            user, command = (parts[0], parts[1].strip()) if len(parts) == 2 else (None, "")
            if not command:
                return Rejection(ref, "system crontab line without a user and command")
        attrs["schedule"] = schedule
        attrs["action"] = "cron_job_defined"
        return Event(ts=member.mtime, ts_desc="crontab file modified", event_type="other",
                     message=f"cron job ({schedule}) as {user or '?'}: {command}",
                     record_ref=ref, user=user, command_line=command, path=member.source_path,
                     attributes=attrs)
