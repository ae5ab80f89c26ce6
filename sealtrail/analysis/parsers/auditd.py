"""Linux audit logs (``/var/log/audit/audit.log``), raw and enriched formats.

A line is ``[node=N ]type=T msg=audit(<epoch>.<ms>:<serial>): key=value ...``; the enriched
format (``log_format = ENRICHED``) appends ``\\x1d`` and resolved names (``UID="root"``). The
lines sharing an event serial (and time and node) are one record, so one event: ``SYSCALL`` +
``EXECVE`` + ``CWD`` + ``PATH`` + ``PROCTITLE`` of one ``execve`` make one ``process_start``.
``record_ref`` is the group's first line; ``attributes["lines"]`` lists all of them.

Records of one serial are written together, normally back to back and closed by ``EOE``; a group
is emitted at ``EOE``, or once :data:`OPEN_GROUPS` newer serials have started after it (bounded
memory; a straggler after that becomes a second event of the same serial with
``attributes["split"] = True``). A line that is not an audit record is rejected on its own.

Event types, by the most telling record in the group:

``EXECVE`` -> ``process_start`` (``command_line`` from ``a0..aN``, hex-encoded arguments decoded,
split ``aN[k]`` pieces joined); ``USER_CMD`` -> ``privilege_use`` (sudo; ``cmd`` decoded);
``ADD_USER`` -> ``account_created``; ``DEL_USER`` -> ``account_deleted``; ``USER_MGMT`` with an
add/remove-to-group op -> ``group_membership_changed``, otherwise ``account_changed``;
``ADD_GROUP``/``DEL_GROUP``/``GRP_MGMT``/``USER_CHAUTHTOK``/``ACCT_LOCK``/``ACCT_UNLOCK`` ->
``account_changed``; ``USER_LOGIN`` -> ``logon_success``/``logon_failure`` by ``res``;
``USER_AUTH`` with ``res=failed`` -> ``logon_failure`` (a successful USER_AUTH is ``other``: the
USER_LOGIN that follows is the logon); ``USER_LOGOUT`` -> ``logoff``; ``SERVICE_START``/
``SERVICE_STOP`` -> ``service_state``; ``SYSTEM_BOOT``/``SYSTEM_SHUTDOWN`` -> ``system_boot``/
``system_shutdown``; anything else -> ``other``. ``attributes["success"]`` carries ``res``.
Users: the enriched names when present; otherwise ``acct`` for account records and the numeric
``auid``/``uid`` in attributes (raw logs hold no names).
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from sealtrail.analysis.parsers.base import MemberContext
from sealtrail.analysis.parsers.text_lines import first_text_line, iter_lines
from sealtrail.analysis.records import Event, Rejection

OPEN_GROUPS = 32
_LINE = re.compile(
    r"^(?:node=(?P<node>\S+) )?type=(?P<type>\S+) msg=audit\((?P<sec>\d+)\.(?P<ms>\d+):"
    r"(?P<serial>\d+)\):\s?(?P<body>.*)$", re.S
)
_TOKEN = re.compile(r"""([\w-]+(?:\[\d+\])?)=('[^']*'|"[^"]*"|\S*)""")
_HEX = re.compile(r"^(?:[0-9A-F]{2})+$")
_ENCODED = frozenset({"cmd", "acct", "exe", "comm", "cwd", "name", "proctitle", "grp", "path",
                      "new-group", "old-group", "unit", "key", "hostname", "terminal"})
_ARG = re.compile(r"^a(\d+)(?:\[(\d+)\])?$")
_PRIORITY = ("EXECVE", "USER_CMD", "ADD_USER", "DEL_USER", "USER_MGMT", "ADD_GROUP", "DEL_GROUP",
             "GRP_MGMT", "USER_CHAUTHTOK", "ACCT_LOCK", "ACCT_UNLOCK", "USER_LOGIN", "USER_AUTH",
             "USER_LOGOUT", "SERVICE_START", "SERVICE_STOP", "SYSTEM_BOOT", "SYSTEM_SHUTDOWN")
_ACCOUNT_CHANGED = frozenset({"ADD_GROUP", "DEL_GROUP", "GRP_MGMT", "USER_CHAUTHTOK",
                              "ACCT_LOCK", "ACCT_UNLOCK"})


def _strip(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def decode_value(value: str, *, encoded: bool = True) -> str:
    """A field value as text: quotes removed, or hex decoded (auditd's encoding of untrusted
    strings), NULs (proctitle's argument separators) shown as spaces."""
    if value[:1] in "\"'":
        return _strip(value)
    if encoded and _HEX.match(value):
        return bytes.fromhex(value).decode("utf-8", errors="replace").replace("\x00", " ").strip()
    return value


def parse_fields(body: str) -> dict[str, str]:
    """``key=value`` pairs of one record; the quoted ``msg='...'`` of user records is flattened
    into the same dict (its keys win)."""
    fields: dict[str, str] = {}
    for key, value in _TOKEN.findall(body):
        if key == "msg" and value.startswith("'"):
            fields.update(parse_fields(value[1:-1]))
        else:
            fields[key] = value
    return fields


@dataclass
class _Record:
    number: int
    type: str
    fields: dict[str, str]
    names: dict[str, str]


@dataclass
class _Group:
    key: tuple[str | None, str, str, str]
    ts: datetime
    records: list[_Record] = field(default_factory=list)
    split: bool = False


class AuditdParser:
    """auditd logs, raw or enriched: one event per event serial."""

    NAME: ClassVar[str] = "auditd"
    VERSION: ClassVar[str] = "1"
    DESCRIPTION: ClassVar[str] = "Linux audit.log (raw/enriched), one event per audit serial"

    def check(self, member: MemberContext, head: bytes) -> bool:
        if member.logical_name == "audit.log":
            return True
        line = first_text_line(head)
        return bool(line and _LINE.match(line))

    def parse(self, member: MemberContext) -> Iterator[Event | Rejection]:
        pending: OrderedDict[tuple[str | None, str, str, str], _Group] = OrderedDict()
        done: set[tuple[str | None, str, str, str]] = set()  # bounded: cleared with pending
        with member.open() as stream:
            for line in iter_lines(stream):
                if line.text is None:
                    yield Rejection(line.ref, line.problem or "unreadable")
                    continue
                if not line.text.strip():
                    continue
                m = _LINE.match(line.text)
                if not m:
                    yield Rejection(line.ref, "not an audit record")
                    continue
                key = (m["node"], m["sec"], m["ms"], m["serial"])
                group = pending.get(key)
                if group is None:
                    ts = datetime.fromtimestamp(int(m["sec"]), tz=UTC) + timedelta(
                        milliseconds=int(m["ms"][:3].ljust(3, "0")))
                    group = _Group(key, ts, split=key in done)
                    pending[key] = group
                    while len(pending) > OPEN_GROUPS:
                        _, oldest = pending.popitem(last=False)
                        done.add(oldest.key)
                        yield _event(oldest)
                body, _, enriched = m["body"].partition("\x1d")
                record = _Record(line.number, m["type"], parse_fields(body),
                                 {k: _strip(v) for k, v in _TOKEN.findall(enriched)})
                group.records.append(record)
                if m["type"] == "EOE":
                    del pending[key]
                    done.add(key)
                    yield _event(group)
                if len(done) > 4 * OPEN_GROUPS:
                    done.clear()
        for group in pending.values():
            yield _event(group)


def _get(records: list[_Record], name: str) -> str | None:
    for record in records:
        if name in record.fields:
            value = record.fields[name]
            return decode_value(value, encoded=name in _ENCODED)
    return None


def _named(records: list[_Record], name: str) -> str | None:
    for record in records:
        if name in record.names:
            return record.names[name]
    return None


def _argv(record: _Record) -> list[str]:
    pieces: dict[int, dict[int, str]] = {}
    for key, value in record.fields.items():
        m = _ARG.match(key)
        if m:
            pieces.setdefault(int(m[1]), {})[int(m[2] or 0)] = decode_value(value)
    return ["".join(parts[k] for k in sorted(parts)) for _, parts in sorted(pieces.items())]


def _ip(value: str | None) -> str | None:
    return value if value and value not in ("?", "(none)") else None


def _event(group: _Group) -> Event:
    records = group.records
    types = [r.type for r in records]
    main_type = next((t for t in _PRIORITY if t in types), types[0])
    main = records[types.index(main_type)]
    res = main.fields.get("res") or _get(records, "res")
    success = None if res is None else res in ("success", "1", "yes")
    attrs: dict[str, Any] = {
        "audit_type": main_type, "record_types": types, "serial": int(group.key[3]),
        "lines": [r.number for r in records],
    }
    if group.key[0]:
        attrs["node"] = group.key[0]
    if group.split:
        attrs["split"] = True
    if success is not None:
        attrs["success"] = success
    for name in ("auid", "uid", "pid", "ppid", "ses", "syscall", "key", "op", "terminal"):
        value = _get(records, name)
        if value is not None and value not in ("?", "(null)"):
            attrs[name] = value
    cwd = _get(records, "cwd")
    if cwd:
        attrs["cwd"] = cwd
    user = _named(records, "AUID") or _named(records, "UID")
    if user == "unset":
        user = _named(records, "UID")
    acct = _get([main], "acct")
    exe = _get(records, "exe")
    src_ip = _ip(_get([main], "addr"))
    command_line = None
    target_user = None
    event_type = "other"
    if main_type == "EXECVE":
        event_type = "process_start"
        argv = _argv(main)
        attrs["argv"] = argv
        command_line = " ".join(argv)
    elif main_type == "USER_CMD":
        event_type = "privilege_use"
        command_line = _get([main], "cmd")
    elif main_type in ("ADD_USER", "DEL_USER"):
        event_type = "account_created" if main_type == "ADD_USER" else "account_deleted"
        target_user = acct or _get([main], "id")
    elif main_type == "USER_MGMT":
        op = main.fields.get("op", "")
        grp = _get([main], "grp")
        if grp:
            attrs["group"] = grp
        in_group = "group" in op and ("add" in op or "del" in op or "remove" in op)
        event_type = "group_membership_changed" if in_group else "account_changed"
        target_user = acct or _get([main], "id")
    elif main_type in _ACCOUNT_CHANGED:
        event_type = "account_changed"
        target_user = acct or _get([main], "id")
    elif main_type == "USER_LOGIN":
        event_type = "logon_success" if success else "logon_failure"
        user = acct or user
        if user is None and (ident := _get([main], "id")):
            attrs["login_uid"] = ident
    elif main_type == "USER_AUTH":
        event_type = "logon_failure" if success is False else "other"
        user = acct or user
    elif main_type == "USER_LOGOUT":
        event_type = "logoff"
        user = acct or user
    elif main_type in ("SERVICE_START", "SERVICE_STOP"):
        event_type = "service_state"
    elif main_type == "SYSTEM_BOOT":
        event_type = "system_boot"
    elif main_type == "SYSTEM_SHUTDOWN":
        event_type = "system_shutdown"
    service = _get([main], "unit") if main_type.startswith("SERVICE_") else None
    summary = command_line or target_user or acct or service or attrs.get("op") or ""
    outcome = "" if res is None else f" (res={res})"
    message = f"{main_type} {summary}".strip() + outcome
    return Event(
        ts=group.ts, ts_desc="audit event recorded", event_type=event_type, message=message,
        record_ref=f"line:{records[0].number}", user=user, src_ip=src_ip, process=exe,
        command_line=command_line, target_user=target_user, service_name=service,
        attributes=attrs,
    )
