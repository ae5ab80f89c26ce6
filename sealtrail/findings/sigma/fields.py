"""Sigma field names -> SQL over the ``sigma_events`` view, as data.

Windows rules name EVTX EventData keys (``Image``, ``TargetUserName``...); the ingest keeps every
EventData (or UserData) key in ``attributes`` under its EVTX name, with the raw value (``-``
stays ``-``), so a Windows field is read from there: the raw value is what Sigma rules are
written against. ``EVTX_RENAMES`` holds the events whose keys differ from the Sysmon names rules
use (Security 4688: ``NewProcessName`` is ``Image``). System fields come from typed columns.

Linux rules run over our own parsers' rows, whose attributes are not named like Sigma's fields:
only the fields of ``LINUX_FIELDS`` exist there. A Windows field that is not in the tables below
is still an EventData key (EVTX is open-ended, SigmaHQ uses hundreds of them); a Linux field that
is not in ``LINUX_FIELDS`` is an unknown field and fails the rule (`UnknownField`).
"""

from __future__ import annotations

# ruff: noqa: S608 - this module writes SQL; rule values are quoted as SQL string literals
# (quotes doubled), field names checked against a name pattern, the rest our constants.
import re

#: The view every Sigma rule reads.
VIEW = "sigma_events"

#: Sigma field -> typed ``events`` column, for every product (EVTX System values).
SYSTEM_FIELDS = {
    "EventID": "event_id",
    "Channel": "channel",
    "Computer": "computer",
    "Provider_Name": "provider",
}

#: (channel, event id) -> {Sigma field: the EVTX key that holds it there}.
EVTX_RENAMES: dict[tuple[str, int], dict[str, str]] = {
    ("Security", 4688): {
        "Image": "NewProcessName",
        "ParentImage": "ParentProcessName",
        "ProcessId": "NewProcessId",
        "ParentProcessId": "ProcessId",
        "LogonId": "SubjectLogonId",
        "User": "SubjectUserName",
        "IntegrityLevel": "MandatoryLabel",
    },
}

_PROCESS = {"Image": "process", "CommandLine": "command_line", "ParentImage": "parent_process"}
_SYSMON = "Microsoft-Windows-Sysmon/Operational"

#: (channel, event id) -> {Sigma field: the typed ``events`` column the ingest fills from that
#: very EVTX key} (sealtrail/analysis/parsers/evtx_fields.py). A rule routed only to such events
#: reads the column instead of parsing ``attributes``: the same value, trimmed, ``-`` as NULL.
#: Over 1,000 SigmaHQ rules are process_creation rules over these three fields.
TYPED: dict[tuple[str, int], dict[str, str]] = {
    ("Security", 4688): _PROCESS,
    (_SYSMON, 1): _PROCESS,
    (_SYSMON, 3): {"Image": "process"},
    (_SYSMON, 11): {"Image": "process", "TargetFilename": "path"},
}

#: Sigma field -> ``events`` column for rows of our Linux parsers.
LINUX_FIELDS = {
    "Image": "process",
    "CommandLine": "command_line",
    "ParentImage": "parent_process",
    "User": "user",
    "TargetUserName": "target_user",
    "SubjectUserName": "subject_user",
    "ServiceName": "service_name",
    "SourceIp": "src_ip",
    "DestinationIp": "dst_ip",
    "TargetFilename": "path",
    "CurrentDirectory": "attributes->>'$.cwd'",
    "pam_user": "target_user",
}

#: The Sigma fields the view exposes as columns (others are read inline, same expression).
VIEW_FIELDS = (
    "Image", "CommandLine", "ParentImage", "ParentCommandLine", "OriginalFileName",
    "TargetUserName", "SubjectUserName", "TargetDomainName", "IpAddress", "LogonType",
    "ServiceName", "ImagePath", "TaskName", "ScriptBlockText", "TargetFilename",
    "TargetObject", "Details", "TargetImage", "SourceImage", "GrantedAccess",
    "DestinationIp", "DestinationHostname", "QueryName", "ImageLoaded", "Hashes",
)


_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")


class UnknownField(ValueError):
    """A field no column or attribute of ours holds (the rule fails with this reason)."""


def sql_literal(text: str) -> str:
    """``text`` as a SQL string literal (quotes doubled; DuckDB keeps backslashes as they are)."""
    return "'" + text.replace("'", "''") + "'"


def _evtx_key(key: str) -> str:
    """The raw value of one EventData/UserData key, as text."""
    path = sql_literal(f'$.EventData."{key}"')
    user_data = sql_literal(f'$.UserData.*."{key}"')
    return (f"coalesce(json_extract_string(attributes, {path}), "
            f"json_extract_string(attributes, {user_data})[1])")


def evtx_sql(name: str) -> str:
    """SQL for a Windows field over the view's ``attributes`` (with the renames)."""
    plain = _evtx_key(name)
    cases = [f"WHEN channel = {sql_literal(ch)} AND event_id = {eid} THEN {_evtx_key(keys[name])}"
             for (ch, eid), keys in EVTX_RENAMES.items() if name in keys]
    return f"CASE {' '.join(cases)} ELSE {plain} END" if cases else plain


def field_sql(name: str, *, windows: bool,
              needs: frozenset[tuple[str | None, int | None]] = frozenset()) -> str:
    """SQL that reads Sigma field ``name`` in a rule over the view, routed to ``needs``.

    Raises:
        UnknownField: a non-Windows rule names a field our Linux parsers do not fill, or the
            name cannot be an EVTX key.
    """
    if name in SYSTEM_FIELDS:
        return SYSTEM_FIELDS[name]
    if not _NAME.match(name):
        raise UnknownField(f"field {name!r} is not a name an event can carry")
    if windows:
        typed = {TYPED.get(pair, {}).get(name) for pair in needs} if needs else {None}
        if len(typed) == 1 and None not in typed:
            return typed.pop()  # type: ignore[return-value]
        if name in VIEW_FIELDS:
            return f'"{name}"'
        return evtx_sql(name)
    if name in LINUX_FIELDS:
        return LINUX_FIELDS[name]
    raise UnknownField(f"unknown field {name!r} for a non-Windows logsource "
                       f"(our Linux parsers fill {', '.join(sorted(LINUX_FIELDS))})")


def view_sql() -> str:
    """The SELECT of ``sigma_events``: every ``events`` column plus the Sigma-named ones (no
    Sigma column is named like an events column, even ignoring case)."""
    cols = ["*"]
    cols.append("json_extract_string(attributes, '$.provider') AS provider")
    for name in VIEW_FIELDS:
        linux = LINUX_FIELDS.get(name, "NULL")
        cols.append(f"CASE WHEN source = 'winevtx' THEN {evtx_sql(name)} ELSE {linux} END "
                    f'AS "{name}"')
    return "SELECT " + ", ".join(cols) + " FROM events"
