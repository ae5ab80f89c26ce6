"""Debian package logs: ``/var/log/dpkg.log`` and ``/var/log/apt/history.log``.

Both write local time without a zone; it is read as UTC and marked
``attributes["tz_assumed"] = "UTC"``.

* **dpkg.log**, one record per non-blank line (blank lines skipped without a record):
  ``install|upgrade|remove|purge|downgrade`` lines are ``package_change`` (``attributes``:
  action, package, arch, old_version, new_version); ``status``, ``configure``, ``trigproc``,
  ``startup``, ``conffile`` lines are ``other`` (they are steps of those changes).
* **apt history.log**, one record per stanza (``Start-Date`` .. ``End-Date``, separated by
  blank lines): a ``package_change`` event at Start-Date with the command line, the requesting
  user and per-action package lists (``attributes["install"]`` etc., each a list of
  ``name:arch (versions)`` strings). ``record_ref`` is the Start-Date line. A stanza without a
  usable Start-Date is rejected at its first line.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, ClassVar

from sealtrail.analysis.parsers.base import MemberContext
from sealtrail.analysis.parsers.text_lines import first_text_line, iter_lines
from sealtrail.analysis.records import Event, Rejection

_DPKG = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) (\S+) ?(.*)$")
_CHANGES = frozenset({"install", "upgrade", "remove", "purge", "downgrade"})
_APT_ACTIONS = ("Install", "Upgrade", "Remove", "Purge", "Downgrade", "Reinstall")
_APT_PACKAGE = re.compile(r"([^\s,(]+) \(([^)]*)\)")


def _local(text: str) -> datetime | None:
    try:
        return datetime.strptime(" ".join(text.split()), "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        return None


class DpkgLogParser:
    """``dpkg.log``: package installs, upgrades and removals, line by line."""

    NAME: ClassVar[str] = "dpkg_log"
    VERSION: ClassVar[str] = "1"
    DESCRIPTION: ClassVar[str] = "Debian dpkg.log (install/upgrade/remove/purge lines)"

    def check(self, member: MemberContext, head: bytes) -> bool:
        if member.logical_name == "dpkg.log":
            return True
        line = first_text_line(head)
        return bool(line and (m := _DPKG.match(line)) and m[2] in
                    {"startup", "status", "install", "upgrade", "remove", "configure"})

    def parse(self, member: MemberContext) -> Iterator[Event | Rejection]:
        with member.open() as stream:
            for line in iter_lines(stream):
                if line.text is None:
                    yield Rejection(line.ref, line.problem or "unreadable")
                    continue
                if not line.text.strip():
                    continue
                yield self._line(line.text, line.ref)

    @staticmethod
    def _line(text: str, ref: str) -> Event | Rejection:
        m = _DPKG.match(text)
        if not m:
            return Rejection(ref, "not a dpkg.log line")
        ts = _local(m[1])
        if ts is None:
            return Rejection(ref, f"invalid date {m[1]}")
        action, rest = m[2], m[3].split()
        attrs: dict[str, Any] = {"tz_assumed": "UTC", "action": action}
        if action in _CHANGES and rest:
            name, _, arch = rest[0].partition(":")
            old = rest[1] if len(rest) > 1 and rest[1] != "<none>" else None
            new = rest[2] if len(rest) > 2 and rest[2] != "<none>" else None
            attrs.update(package=name, arch=arch or None, old_version=old, new_version=new)
            versions = f"{old or '-'} -> {new or '-'}"
            return Event(ts=ts, ts_desc="dpkg action logged", event_type="package_change",
                         message=f"dpkg {action} {rest[0]} {versions}", record_ref=ref,
                         process="dpkg", attributes=attrs)
        if action == "status" and len(rest) >= 2:
            attrs.update(state=rest[0], package=rest[1].partition(":")[0])
        elif action in ("configure", "trigproc") and rest:
            attrs["package"] = rest[0].partition(":")[0]
        return Event(ts=ts, ts_desc="dpkg action logged", event_type="other",
                     message=f"dpkg {text[20:]}", record_ref=ref, process="dpkg",
                     attributes=attrs)


class AptHistoryParser:
    """``apt/history.log``: one package_change event per apt run (stanza)."""

    NAME: ClassVar[str] = "apt_history"
    VERSION: ClassVar[str] = "1"
    DESCRIPTION: ClassVar[str] = "Debian apt history.log (one event per apt run)"

    def check(self, member: MemberContext, head: bytes) -> bool:
        if member.logical_name == "history.log" and "/apt/" in member.source_path:
            return True
        line = first_text_line(head)
        return bool(line and line.startswith("Start-Date: "))

    def parse(self, member: MemberContext) -> Iterator[Event | Rejection]:
        stanza: list[tuple[int, str]] = []
        with member.open() as stream:
            for line in iter_lines(stream):
                if line.text is None:
                    yield from self._stanza(stanza)
                    stanza = []
                    yield Rejection(line.ref, line.problem or "unreadable")
                elif not line.text.strip():
                    yield from self._stanza(stanza)
                    stanza = []
                elif line.text.startswith("Start-Date:") and stanza:
                    yield from self._stanza(stanza)
                    stanza = [(line.number, line.text)]
                else:
                    stanza.append((line.number, line.text))
        yield from self._stanza(stanza)

    @staticmethod
    def _stanza(stanza: list[tuple[int, str]]) -> Iterator[Event | Rejection]:
        if not stanza:
            return
        fields: dict[str, str] = {}
        start_line = stanza[0][0]
        for number, text in stanza:
            key, sep, value = text.partition(": ")
            if not sep:
                continue
            fields.setdefault(key.strip(), value.strip())
            if key.strip() == "Start-Date":
                start_line = number
        ref = f"line:{start_line}"
        ts = _local(fields.get("Start-Date", ""))
        if ts is None:
            yield Rejection(ref, "apt history stanza without a valid Start-Date")
            return
        attrs: dict[str, Any] = {"tz_assumed": "UTC", "lines": len(stanza)}
        summary = []
        for action in _APT_ACTIONS:
            if action in fields:
                packages = [f"{n} ({v})" for n, v in _APT_PACKAGE.findall(fields[action])]
                attrs[action.lower()] = packages
                summary.append(f"{action.lower()} {len(packages)}")
        for key in ("End-Date", "Error", "Requested-By"):
            if key in fields:
                attrs[key.lower().replace("-", "_")] = fields[key]
        user = None
        if "Requested-By" in fields:
            user = fields["Requested-By"].split(" (", 1)[0]
        command = fields.get("Commandline")
        message = f"apt: {command or '?'} ({', '.join(summary) or 'no package changes'})"
        yield Event(ts=ts, ts_desc="apt run started", event_type="package_change",
                    message=message, record_ref=ref, user=user, process="apt",
                    command_line=command, attributes=attrs)
