"""Web server access logs: nginx and Apache, common and combined formats.

``client ident user [10/Mar/2026:01:47:33 +0000] "GET /x?y HTTP/1.1" 200 40260 "referer" "agent"``
with the referer/agent pair optional (common format) and anything after it kept as
``attributes["extra"]`` (nginx ``$request_time``, Apache ``%D``...). One ``http_request`` event
per line; blank lines are skipped without a record; lines of another shape are rejected. A
request that is not ``METHOD TARGET PROTOCOL`` (TLS bytes sent to the HTTP port, ``-``, a bare
path) is still an event: the client did connect; ``attributes["method"]`` is then None and the
raw request is in ``attributes["request"]``. Timestamps carry their zone and are converted to UTC.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, ClassVar

from sealtrail.analysis.parsers.base import MemberContext
from sealtrail.analysis.parsers.text_lines import first_text_line, iter_lines
from sealtrail.analysis.records import Event, Rejection

_MONTHS = {m: i for i, m in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)}
_QUOTED = r'"([^"\\]*(?:\\.[^"\\]*)*)"'  # unrolled: no per-character alternation
_LINE = re.compile(
    r"^(\S+) (\S+) (\S+) \[(\d\d)/([A-Z][a-z]{2})/(\d{4}):(\d\d):(\d\d):(\d\d)(?:\.(\d+))? "
    r"([+-]\d{4})\] " + _QUOTED + r" (\d{3}|-) (\d+|-)(?: " + _QUOTED + r" " + _QUOTED
    + r")?(.*)$"
)
_REQUEST = re.compile(r"^([A-Za-z][A-Za-z-]*) (\S+)(?: (HTTP/[\d.]+|[A-Z]+/[\d.]+))?$")
LOGICAL_NAMES = frozenset({
    "access.log", "access_log", "ssl_access.log", "ssl_access_log", "other_vhosts_access.log",
    "ssl_request_log", "localhost_access_log",
})
_ZONES: dict[str, timezone] = {}


def _zone(text: str) -> timezone:
    zone = _ZONES.get(text)
    if zone is None:
        sign = -1 if text[0] == "-" else 1
        offset = sign * timedelta(hours=int(text[1:3]), minutes=int(text[3:5]))
        zone = UTC if not offset else timezone(offset)
        _ZONES[text] = zone
    return zone


def _unescape(value: str | None) -> str | None:
    if value is None or value == "-":
        return None
    return value.replace('\\"', '"') if "\\" in value else value


class WebAccessParser:
    """nginx / Apache access logs (common, combined, combined plus extra fields)."""

    NAME: ClassVar[str] = "web_access"
    VERSION: ClassVar[str] = "1"
    DESCRIPTION: ClassVar[str] = "nginx/Apache access logs, common and combined formats"

    def check(self, member: MemberContext, head: bytes) -> bool:
        line = first_text_line(head)
        looks = line is not None and _LINE.match(line) is not None
        name = member.logical_name
        return looks or (name in LOGICAL_NAMES and not head.strip())

    def parse(self, member: MemberContext) -> Iterator[Event | Rejection]:
        with member.open() as stream:
            for line in iter_lines(stream):
                if line.text is None:
                    yield Rejection(line.ref, line.problem or "unreadable")
                elif line.text.strip():
                    yield parse_line(line.text, line.ref)


def parse_line(text: str, ref: str) -> Event | Rejection:
    """One access-log line as an ``http_request`` event, or why it is not one."""
    m = _LINE.match(text)
    if not m:
        return Rejection(ref, "not a common/combined access log line")
    (client, ident, user, day, mon, year, hh, mi, ss, frac, tz, request, status, size,
     referer, agent, extra) = m.groups()
    month = _MONTHS.get(mon)
    if month is None:
        return Rejection(ref, f"unknown month {mon!r}")
    try:
        micro = int((frac + "000000")[:6]) if frac else 0
        local = datetime(int(year), month, int(day), int(hh), int(mi), int(ss), micro,
                         tzinfo=_zone(tz))
    except ValueError:
        return Rejection(ref, "invalid date")
    ts = local.astimezone(UTC)
    request = _unescape(request) or ""
    r = _REQUEST.match(request)
    method = target = protocol = None
    if r:
        method, target, protocol = r.groups()
    path = query = None
    if target is not None:
        path, sep, q = target.partition("?")
        query = q if sep else None
    status_code = int(status) if status != "-" else None
    size_bytes = int(size) if size != "-" else None
    attrs: dict[str, Any] = {
        "method": method, "status": status_code, "bytes": size_bytes,
        "referer": _unescape(referer), "user_agent": _unescape(agent),
        "protocol": protocol, "query": query,
    }
    if ident != "-":
        attrs["ident"] = ident
    if r is None:
        attrs["request"] = request
    extra = extra.strip()
    if extra:
        attrs["extra"] = extra
    shown_bytes = "-" if size_bytes is None else f"{size_bytes} bytes"
    shown = f"{method} {target}" if r else f"{request!r}"
    message = f"{shown} -> {status if status_code is not None else '-'} ({shown_bytes})"
    return Event(
        ts=ts, ts_desc="request received", event_type="http_request", message=message,
        record_ref=ref, user=None if user == "-" else user, src_ip=client, path=path,
        attributes=attrs,
    )
