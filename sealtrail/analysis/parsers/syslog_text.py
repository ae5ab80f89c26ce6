"""Text syslog files (``/var/log/syslog``, ``auth.log``, ``messages``, ``secure``, ...).

Line formats read:

* RFC 3164 / BSD: ``[<pri>]Mmm dd hh:mm:ss[.frac][:] [host] prog[pid]: message``; the host may
  be missing (``Nov 18 08:30:20 kernel: ...``) and so may the program (``Job `cron.daily'
  terminated``);
* ISO (rsyslog high-precision): ``2026-03-10T02:14:07.123456+01:00 host prog[pid]: message``;
* RFC 5424: ``<pri>1 2026-03-10T02:14:07.123Z host app procid msgid [sd]|- message``.

What each message means comes from :mod:`sealtrail.analysis.parsers.auth_messages`.

Records: one per non-blank line. Blank lines are skipped without a record. A line that starts
with whitespace right after an event (a multi-line message) is an ``other`` event of its own,
timed like the line it continues, with ``attributes["continuation_of"]``. ``--- last message
repeated N times ---`` is an ``other`` event with ``attributes["repeated"] = N``; rsyslog's
``prog: message repeated N times: [ msg]`` is read as ``msg`` (a repeated ``Failed password``
is a ``logon_failure``) with ``attributes["repeated"] = N``: one event, standing for N more.
Lines with no recognisable timestamp are rejected.

Time zone: BSD and ISO-without-zone lines carry no zone; they are read as UTC and marked
``attributes["tz_assumed"] = "UTC"`` (a later ``--tz`` may override). ISO and RFC 5424 times
with a zone are converted to UTC.

Year inference (BSD lines have no year): the member's mtime anchors the **last** line, which
cannot be later than the file's last write. The file is read twice: a cheap first pass looks only
at the month token of each line, counting rollovers (a month smaller than the previous one) and
remembering the last line's date; the second pass starts at ``anchor_year - rollovers`` and adds
a year at every rollover, so months stay monotonic and the last line lands at or before mtime.
Memory is O(1); the cost is reading (and decompressing) the member twice. The last line counts
as "after mtime" (so belongs to the year before) only when it is more than two days later in the
year than mtime, which tolerates a host clock in a zone ahead of UTC. Without an mtime the
current year is the anchor and events say ``attributes["year_inferred"] = "no mtime"``; with it,
``"mtime"``. A date that does not exist in its inferred year (Feb 29) is rejected.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, ClassVar

from sealtrail.analysis.parsers.auth_messages import interpret
from sealtrail.analysis.parsers.base import MemberContext
from sealtrail.analysis.parsers.text_lines import (
    NOT_TEXT,
    TOO_LONG,
    decode_line,
    first_text_line,
    iter_raw_lines,
)
from sealtrail.analysis.records import Event, Rejection

MONTHS = {m: i for i, m in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)}

_BSD = re.compile(
    r"^(?:<(?P<pri>\d{1,3})>)?(?P<mon>[A-Z][a-z]{2}) {1,2}(?P<day>\d{1,2}) "
    r"(?P<h>\d\d):(?P<m>\d\d):(?P<s>\d\d)(?P<frac>\.\d{1,9})?:?(?: +|$)(?P<rest>.*)$"
)
_BSD_MONTH = re.compile(rb"^(?:<\d{1,3}>)?([A-Z][a-z]{2}) {1,2}(\d{1,2}) (\d\d):(\d\d):(\d\d)")
_ISO = re.compile(
    r"^(?:<(?P<pri>\d{1,3})>)?(?P<v>1 )?(?P<date>\d{4}-\d\d-\d\d)[T ](?P<time>\d\d:\d\d:\d\d)"
    r"(?P<frac>\.\d{1,9})?(?P<tz>Z|[+-]\d\d:?\d\d)? +(?P<rest>.*)$"
)
_PROG = re.compile(r"^(?P<prog>[^\s\[\]:]+)(?:\[(?P<pid>[^\]]*)\])?: ?(?P<msg>.*)$", re.S)
_NO_HOST = re.compile(r"^[^\s\[\]:]+(?:\[[^\]]*\])?:(?: |$)")
_REPEATED = re.compile(
    r"^-*\s*(?:last )?message repeated (?P<n>\d+) times?(?::\s*\[(?P<what>.*)\])?\s*-*\s*$"
)
_SD_VALUE_END = re.compile(r'(?<!\\)"')

LOGICAL_NAMES = frozenset({
    "syslog", "messages", "auth.log", "secure", "kern.log", "daemon.log", "cron", "cron.log",
    "user.log", "mail.log", "maillog", "debug", "ufw.log", "boot.log", "local0.log", "warn",
    "sudo.log", "authpriv", "localmessages",
})


def _zone(text: str | None) -> timezone | None:
    if text is None:
        return None
    if text == "Z":
        return UTC
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    return timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:4])))


def _micro(frac: str | None) -> int:
    return int((frac[1:] + "000000")[:6]) if frac else 0


def _split_sd(text: str) -> tuple[str | None, str]:
    """RFC 5424 ``STRUCTURED-DATA MSG`` -> (structured data or None, message)."""
    if text.startswith("- ") or text == "-":
        return None, text[2:]
    if not text.startswith("["):
        return None, text
    i, n = 0, len(text)
    while i < n and text[i] == "[":
        # Walk one SD-ELEMENT, honouring quoted PARAM-VALUEs with \" and \] escapes.
        i += 1
        in_quotes = False
        while i < n:
            ch = text[i]
            if ch == "\\" and in_quotes:
                i += 2
                continue
            if ch == '"':
                in_quotes = not in_quotes
            elif ch == "]" and not in_quotes:
                i += 1
                break
            i += 1
    return text[:i], text[i:].lstrip(" ")


class _YearPlan:
    """Which year each BSD line gets: ``start`` plus the rollovers seen so far."""

    def __init__(self, start: int, source: str) -> None:
        self.year = start
        self.source = source
        self.last_month = 0

    def year_for(self, month: int) -> int:
        if month < self.last_month:
            self.year += 1
        self.last_month = month
        return self.year


def plan_years(member: MemberContext, now: datetime | None = None) -> _YearPlan:
    """First pass: count month rollovers and place the last line at or before mtime."""
    rollovers = 0
    previous = 0
    last: tuple[int, int, int, int, int] | None = None
    with member.open() as stream:
        for _number, raw in iter_raw_lines(stream):
            if raw is None:
                continue
            m = _BSD_MONTH.match(raw)
            if not m:
                continue
            month = MONTHS.get(m[1].decode("ascii"))
            if month is None:
                continue
            if month < previous:
                rollovers += 1
            previous = month
            last = (month, int(m[2]), int(m[3]), int(m[4]), int(m[5]))
    anchor = member.mtime
    source = "mtime"
    if anchor is None:
        anchor = now or datetime.now(UTC)
        source = "no mtime"
    anchor = anchor.astimezone(UTC)
    year = anchor.year
    if last is not None:
        # Compare within the anchor's year (Feb 29 compared as Mar 1 in a common year).
        month, day, hh, mm, ss = last
        try:
            last_dt = datetime(year, month, day, hh, mm, ss, tzinfo=UTC)
        except ValueError:
            last_dt = datetime(year, month, 28, hh, mm, ss, tzinfo=UTC) + timedelta(days=1)
        if last_dt > anchor + timedelta(days=2):
            year -= 1
    return _YearPlan(year - rollovers, source)


class SyslogParser:
    """Text syslog, BSD (RFC 3164), ISO and RFC 5424 lines."""

    NAME: ClassVar[str] = "syslog"
    VERSION: ClassVar[str] = "1"
    DESCRIPTION: ClassVar[str] = (
        "text syslog (RFC 3164 with year inference, RFC 5424, ISO): sshd, sudo, su, accounts, "
        "cron, PAM, systemd, kernel"
    )

    def __init__(self, now: datetime | None = None) -> None:
        self._now = now

    def check(self, member: MemberContext, head: bytes) -> bool:
        if member.logical_name in LOGICAL_NAMES:
            return True
        line = first_text_line(head)
        if line is None:
            return False
        if m := _BSD.match(line):
            return bool(_PROG.match(_strip_host(m["rest"])[1]))
        if m := _ISO.match(line):
            return bool(m["v"] or _PROG.match(_strip_host(m["rest"])[1]))
        return False

    def parse(self, member: MemberContext) -> Iterator[Event | Rejection]:
        plan = plan_years(member, self._now)
        previous: Event | None = None
        with member.open() as stream:
            for number, raw in iter_raw_lines(stream):
                ref = f"line:{number}"
                if raw is None:
                    previous = None
                    yield Rejection(ref, TOO_LONG)
                    continue
                text = decode_line(raw)
                if text is None:
                    previous = None
                    yield Rejection(ref, NOT_TEXT)
                    continue
                if not text.strip():
                    continue
                if text[0] in " \t" and previous is not None:
                    yield _continuation(previous, text, ref)
                    continue
                result = self._line(text, ref, plan)
                previous = result if isinstance(result, Event) else None
                yield result

    def _line(self, text: str, ref: str, plan: _YearPlan) -> Event | Rejection:
        m = _BSD.match(text)
        attrs: dict[str, Any]
        if m:
            month = MONTHS.get(m["mon"])
            if month is None:
                return Rejection(ref, f"not a syslog line: unknown month {m['mon']!r}")
            year = plan.year_for(month)
            try:
                ts = datetime(year, month, int(m["day"]), int(m["h"]), int(m["m"]), int(m["s"]),
                              _micro(m["frac"]), tzinfo=UTC)
            except ValueError:
                return Rejection(ref, f"invalid date {m['mon']} {m['day']} in inferred year {year}")
            attrs = {"tz_assumed": "UTC", "year_inferred": plan.source}
            host, rest = _strip_host(m["rest"])
            return _event(ts, ref, host, rest, m["pri"], attrs, rfc5424=False)
        m = _ISO.match(text)
        if m:
            try:
                naive = datetime.fromisoformat(f"{m['date']}T{m['time']}").replace(
                    microsecond=_micro(m["frac"]))
            except ValueError:
                return Rejection(ref, f"invalid date {m['date']} {m['time']}")
            zone = _zone(m["tz"])
            attrs = {}
            if zone is None:
                zone = UTC
                attrs["tz_assumed"] = "UTC"
            ts = naive.replace(tzinfo=zone).astimezone(UTC)
            if m["v"]:
                return _event5424(ts, ref, m["rest"], m["pri"], attrs)
            host, rest = _strip_host(m["rest"])
            return _event(ts, ref, host, rest, m["pri"], attrs, rfc5424=False)
        return Rejection(ref, "not a syslog line (no timestamp)")


def _strip_host(rest: str) -> tuple[str | None, str]:
    """Split off the host name unless the line goes straight to ``prog[pid]:`` or a marker."""
    if not rest or _NO_HOST.match(rest) or rest.startswith("-") or _REPEATED.match(rest):
        return None, rest
    host, _, remainder = rest.partition(" ")
    return host, remainder


def _pri_attrs(pri: str | None, attrs: dict[str, Any]) -> None:
    if pri is not None and int(pri) < 192:
        attrs["facility"] = int(pri) // 8
        attrs["severity"] = int(pri) % 8


def _event(ts: datetime, ref: str, host: str | None, rest: str, pri: str | None,
           attrs: dict[str, Any], *, rfc5424: bool) -> Event:
    _pri_attrs(pri, attrs)
    if r := _REPEATED.match(rest):
        attrs["repeated"] = int(r["n"])
        if r["what"]:
            attrs["repeated_message"] = r["what"]
        return Event(ts=ts, ts_desc="syslog entry written", event_type="other",
                     message=rest.strip(" -"), record_ref=ref, computer=host, attributes=attrs)
    p = _PROG.match(rest)
    program = pid = None
    message = rest
    if p:
        program, pid, message = p["prog"], p["pid"], p["msg"]
        if pid:
            attrs["pid"] = int(pid) if pid.isdigit() else pid
    return _with_meaning(ts, ref, host, program, message, attrs)


def _event5424(ts: datetime, ref: str, rest: str, pri: str | None,
               attrs: dict[str, Any]) -> Event | Rejection:
    parts = rest.split(" ", 4)
    if len(parts) < 4:
        return Rejection(ref, "RFC 5424 header incomplete")
    host, app, procid, msgid = (None if p == "-" else p for p in parts[:4])
    sd, message = _split_sd(parts[4] if len(parts) > 4 else "")
    if message.startswith("\ufeff"):
        message = message[1:]
    _pri_attrs(pri, attrs)
    attrs["rfc5424"] = True
    if procid:
        attrs["pid"] = int(procid) if procid.isdigit() else procid
    if msgid:
        attrs["msgid"] = msgid
    if sd:
        attrs["structured_data"] = sd
    return _with_meaning(ts, ref, host, app, message, attrs)


def _with_meaning(ts: datetime, ref: str, host: str | None, program: str | None, message: str,
                  attrs: dict[str, Any]) -> Event:
    repeated = _REPEATED.match(message) if "repeated" in message[:40] else None
    if repeated and repeated["what"]:
        # rsyslog's "message repeated N times: [ msg]": the line stands for N more of msg.
        attrs["repeated"] = int(repeated["n"])
        meaning = interpret(program, repeated["what"].strip())
    else:
        meaning = interpret(program, message)
    if meaning.attributes:
        attrs.update(meaning.attributes)
    shown = f"{program}: {message}" if program else message
    return Event(
        ts=ts, ts_desc="syslog entry written", event_type=meaning.event_type, message=shown,
        record_ref=ref, user=meaning.user, src_ip=meaning.src_ip, src_port=meaning.src_port,
        dst_ip=meaning.dst_ip, process=program, command_line=meaning.command_line,
        computer=host, target_user=meaning.target_user, attributes=attrs,
    )


def _continuation(previous: Event, text: str, ref: str) -> Event:
    attrs = {k: v for k, v in (previous.attributes or {}).items()
             if k in ("tz_assumed", "year_inferred", "pid")}
    attrs["continuation_of"] = previous.record_ref
    return Event(ts=previous.ts, ts_desc=previous.ts_desc, event_type="other",
                 message=text.strip(), record_ref=ref, process=previous.process,
                 computer=previous.computer, attributes=attrs)
