"""Shell history files: bash (with or without ``#<epoch>`` lines), zsh extended, plain.

* bash with ``HISTTIMEFORMAT``: ``#1773108000`` gives the time of the command after it. As bash
  itself does when reading such a file, the lines between two timestamps are one entry (a
  multi-line command), joined with newlines.
* zsh ``EXTENDED_HISTORY``: ``: 1773108000:0;command``; a command ending in ``\\`` continues on
  the next line.
* plain (no times): one command per line.

Records: one per command entry. A ``#<epoch>`` line belongs to the entry after it (its
``record_ref`` is the line of the command's first line, ``attributes["timestamp_line"]`` the
epoch line); a timestamp with no command after it is rejected. Blank lines are skipped without a
record. A command with no time of its own gets the file's mtime, ``ts_desc="history file modified
(command time unknown)"`` and ``attributes["time_known"] = False``; without an mtime it is
rejected ("no timestamp").

``user`` is the owner of the home folder the file is in (``/home/U/...`` -> U, ``/root/...`` ->
root), None elsewhere.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import ClassVar

from sealtrail.analysis.parsers.base import MemberContext
from sealtrail.analysis.parsers.text_lines import epoch_to_utc, iter_lines
from sealtrail.analysis.records import Event, Rejection

_EPOCH = re.compile(r"^#(\d{9,11})\s*$")
_ZSH = re.compile(r"^: (\d{9,11}):(\d+);(.*)$", re.S)
LOGICAL_NAMES = frozenset({
    ".bash_history", ".zsh_history", ".zhistory", ".history", ".sh_history", ".ash_history",
    ".mksh_history", "bash_history", "zsh_history",
})
_HISTTIME_DESC = "command run (history timestamp)"
_MTIME_DESC = "history file modified (command time unknown)"


def home_owner(path: str) -> str | None:
    """``/home/alice/.bash_history`` -> alice; ``/root/...`` -> root; else None."""
    parts = [p for p in path.replace("\\", "/").split("/") if p]
    if len(parts) > 1 and parts[0] == "root":
        return "root"
    for base in ("home", "Users"):
        if base in parts:
            i = parts.index(base)
            if i + 1 < len(parts) - 1:  # a folder below home, not the file itself
                return parts[i + 1]
    return None


@dataclass
class _Entry:
    first_line: int
    lines: list[str] = field(default_factory=list)
    ts: datetime | None = None
    ts_line: int | None = None
    duration: int | None = None
    kind: str = "bash"


class ShellHistoryParser:
    """bash / zsh / sh history files, timestamped or not."""

    NAME: ClassVar[str] = "shell_history"
    VERSION: ClassVar[str] = "1"
    DESCRIPTION: ClassVar[str] = "bash (#epoch), zsh extended and plain shell history files"

    def check(self, member: MemberContext, head: bytes) -> bool:
        return member.logical_name in LOGICAL_NAMES or member.file_name.endswith("_history")

    def parse(self, member: MemberContext) -> Iterator[Event | Rejection]:
        user = home_owner(member.source_path)
        timestamped = False  # bash: seen a #epoch line, so lines until the next one join
        pending: _Entry | None = None
        with member.open() as stream:
            for line in iter_lines(stream):
                if line.text is None:
                    if pending is not None:
                        yield from self._emit(pending, member, user)
                        pending = None
                    yield Rejection(line.ref, line.problem or "unreadable")
                    continue
                text = line.text
                if not text.strip():
                    continue
                if m := _EPOCH.match(text):
                    if pending is not None:
                        yield from self._emit(pending, member, user)
                    timestamped = True
                    ts = epoch_to_utc(int(m[1]))
                    pending = _Entry(first_line=line.number, ts=ts, ts_line=line.number)
                    continue
                zsh = _ZSH.match(text)
                if zsh:
                    if pending is not None:
                        yield from self._emit(pending, member, user)
                    pending = _Entry(first_line=line.number, ts=epoch_to_utc(int(zsh[1])),
                                     duration=int(zsh[2]), kind="zsh")
                    pending.lines.append(zsh[3])
                    continue
                if pending is not None and pending.kind == "zsh" and pending.lines \
                        and pending.lines[-1].endswith("\\"):
                    pending.lines.append(text)
                    continue
                if pending is not None and pending.ts_line is not None and timestamped:
                    if not pending.lines:
                        pending.first_line = line.number
                    pending.lines.append(text)
                    continue
                if pending is not None:
                    yield from self._emit(pending, member, user)
                pending = _Entry(first_line=line.number, lines=[text])
                if not timestamped:
                    yield from self._emit(pending, member, user)
                    pending = None
        if pending is not None:
            yield from self._emit(pending, member, user)

    def _emit(self, entry: _Entry, member: MemberContext,
              user: str | None) -> Iterator[Event | Rejection]:
        ref = f"line:{entry.first_line}"
        if not entry.lines:
            yield Rejection(ref, "history timestamp without a command")
            return
        command = "\n".join(entry.lines)
        attrs: dict[str, object] = {"shell": entry.kind}
        if entry.ts_line is not None:
            attrs["timestamp_line"] = entry.ts_line
        if entry.duration is not None:
            attrs["duration_s"] = entry.duration
        if len(entry.lines) > 1:
            attrs["lines"] = len(entry.lines)
        if entry.ts is not None:
            ts, desc = entry.ts, _HISTTIME_DESC
            attrs["time_known"] = True
        elif member.mtime is not None:
            ts, desc = member.mtime, _MTIME_DESC
            attrs["time_known"] = False
        else:
            yield Rejection(ref, "no timestamp")
            return
        yield Event(ts=ts, ts_desc=desc, event_type="shell_command", message=command,
                    record_ref=ref, user=user, command_line=command, path=member.source_path,
                    attributes=attrs)
