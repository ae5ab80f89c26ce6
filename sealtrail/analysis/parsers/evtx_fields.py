"""Which Windows events mean what: (channel, event id) -> event_type, columns and a summary.

Pure Python, no third-party imports: both EVTX back ends (``evtx`` JSON and python-evtx XML)
hand this module the same shape, a flat ``dict`` of the record's EventData (named ``Data``
elements) or of the single element inside UserData. Values may be ``str``, ``int``, ``bool``,
``None`` or nested ``dict``/``list``; python-evtx gives only strings, ``evtx`` gives numbers
where the template types them, so every column is read through ``_text``/``_int``.

The table ``RULES`` is the whole mapping. Choices worth knowing when querying:

* ``user`` is the most relevant account: the *target* for logon/logoff events (4624, 4625,
  4634, 4647, 4776), the *subject* (the actor) for everything else, the Sysmon ``User`` for
  Sysmon events and the ``User`` line of ``ContextInfo`` for PowerShell 4103.
* 4648 ("a logon was attempted using explicit credentials") is ``other``, not
  ``logon_success``: it records an attempt made *from* this host (runas, a password spray
  from this machine) and says nothing about whether it succeeded. Its columns are filled like
  a logon's so it can still be queried by target_user / src_ip.
* 4776 (NTLM credential validation) is ``other`` whatever its status: a failed network logon
  on a member server writes both a 4776 and a 4625, and counting both would double every
  brute-force attempt. The status is in the message and in the attributes.
* 4729/4733/4757 (member removed from a group) are ``group_membership_changed`` like
  4728/4732/4756 (member added); the other 4722-4738 events (enable, disable, password
  reset, group created/changed...) and 4781 (rename) are ``account_changed``.
* 4608 (Windows is starting) and System 12 (Kernel-General) are ``system_boot`` besides 6005;
  1100 (event logging service shut down) and System 13 are ``system_shutdown`` besides 6006.
* PowerShell 4104 is ``shell_command`` with ``script_block``; 4103 (module logging) is
  ``shell_command`` with ``command_line`` = the Payload (the bound command), no script block.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

SECURITY = "Security"
SYSTEM = "System"
SYSMON = "Microsoft-Windows-Sysmon/Operational"
POWERSHELL = "Microsoft-Windows-PowerShell/Operational"

_MISSING = frozenset({"", "-", "%%1793"})  # "-" and "<value not set>" mean "no value"


def _text(value: Any) -> str | None:
    """A column value as text; '-', '' and None are None; {'#text': x} is x."""
    kind = type(value)
    if kind is str:
        value = value.strip()
        return None if value in _MISSING else value
    if value is None:
        return None
    if kind is int:
        return str(value)
    if kind is bool:
        return str(value).lower()
    if kind is dict:
        return _text(value.get("#text"))
    if kind is list:
        parts = [t for t in (_text(v) for v in value) if t]
        return ", ".join(parts) or None
    return str(value)


def _int(value: Any) -> int | None:
    """A column value as an int (decimal or 0x hex); None if it is not a number."""
    kind = type(value)
    if kind is int:
        return value
    if kind is bool:
        return None
    text = _text(value)
    if text is None:
        return None
    try:
        return int(text, 16) if text[:2].lower() == "0x" else int(text)
    except ValueError:
        return None


def _account(data: Mapping[str, Any], domain: str, name: str) -> str | None:
    """``DOMAIN\\user`` from two columns; just the user when the domain is missing."""
    user = _text(data.get(name))
    if user is None:
        return None
    dom = _text(data.get(domain))
    return f"{dom}\\{user}" if dom else user


def _port(value: Any) -> int | None:
    port = _int(value)
    return port if port is not None and 0 < port < 65536 else None


# --- column extractors: declared as data, so the same table drives Python and SQL ----------
#
# Each node reads the flat EventData/UserData dict and returns one column value; ``extract``
# calls them.


@dataclass(frozen=True, slots=True)
class Text:
    """``_text`` of the first of ``names`` that gives a value (``a or b``)."""

    names: tuple[str, ...]

    def __call__(self, data: Mapping[str, Any]) -> str | None:
        for name in self.names:
            value = data.get(name)
            if type(value) is str:  # the common case, inlined from _text
                value = value.strip()
                if value not in _MISSING:
                    return value
                continue
            text = _text(value)
            if text is not None:
                return text
        return None


@dataclass(frozen=True, slots=True)
class FirstRaw:
    """``_text(data.get(a) or data.get(b) or ...)``: the first *raw* value that is truthy
    (so a raw ``"-"`` stops the search and gives None)."""

    names: tuple[str, ...]

    def __call__(self, data: Mapping[str, Any]) -> str | None:
        value = None
        for name in self.names:
            value = data.get(name)
            if value:
                break
        return _text(value)


@dataclass(frozen=True, slots=True)
class Int:
    name: str

    def __call__(self, data: Mapping[str, Any]) -> int | None:
        return _int(data.get(self.name))


@dataclass(frozen=True, slots=True)
class Port:
    name: str

    def __call__(self, data: Mapping[str, Any]) -> int | None:
        return _port(data.get(self.name))


@dataclass(frozen=True, slots=True)
class Account:
    """``DOMAIN\\user`` from two fields (see ``_account``)."""

    domain: str
    name: str

    def __call__(self, data: Mapping[str, Any]) -> str | None:
        return _account(data, self.domain, self.name)


@dataclass(frozen=True, slots=True)
class ContextLine:
    """One ``Key = value`` line of a text field (PowerShell ``ContextInfo``)."""

    field: str
    key: str

    def __call__(self, data: Mapping[str, Any]) -> str | None:
        return _context_line(_text(data.get(self.field)), self.key)


@dataclass(frozen=True, slots=True)
class WhenPresent:
    """``then`` if the raw field ``name`` is present and not null, else ``otherwise``."""

    name: str
    then: Node
    otherwise: Node

    def __call__(self, data: Mapping[str, Any]) -> Any:
        return (self.then if data.get(self.name) is not None else self.otherwise)(data)


Node = Text | FirstRaw | Int | Port | Account | ContextLine | WhenPresent
Columns = dict[str, Any]
ColumnSpec = Mapping[str, Node]


def _context_line(context: str | None, key: str) -> str | None:
    """One ``Key = value`` line of a PowerShell ContextInfo block."""
    if not context:
        return None
    for line in context.splitlines():
        name, sep, value = line.partition("=")
        if sep and name.strip() == key:
            return value.strip() or None
    return None


_SUBJECT: ColumnSpec = {
    "subject_user": Account("SubjectDomainName", "SubjectUserName"),
    "subject_sid": Text(("SubjectUserSid",)),
}
_TARGET: ColumnSpec = {
    "target_user": Account("TargetDomainName", "TargetUserName"),
    "target_sid": Text(("TargetUserSid", "TargetSid")),
}
_LOGON: ColumnSpec = {
    **_SUBJECT, **_TARGET,
    "logon_type": Int("LogonType"),
    "src_ip": Text(("IpAddress",)),
    "src_port": Port("IpPort"),
    "process": Text(("ProcessName",)),
}
_PROCESS_4688: ColumnSpec = {
    **_SUBJECT,
    "process": Text(("NewProcessName",)),
    "command_line": Text(("CommandLine",)),
    "parent_process": Text(("ParentProcessName",)),
}
_PROCESS_4689: ColumnSpec = {**_SUBJECT, "process": Text(("ProcessName",))}
_SERVICE_INSTALL: ColumnSpec = {
    **_SUBJECT,
    "service_name": Text(("ServiceName",)),
    "service_path": FirstRaw(("ImagePath", "ImageFileName", "ServiceFileName")),
}
_SERVICE_STATE: ColumnSpec = {"service_name": Text(("param1",))}
_TASK: ColumnSpec = {**_SUBJECT, "task_name": Text(("TaskName",))}
# 4781 rename: the new name is the target
_ACCOUNT_MGMT: ColumnSpec = {
    **_SUBJECT, **_TARGET,
    "target_user": WhenPresent("NewTargetUserName",
                               Account("TargetDomainName", "NewTargetUserName"),
                               Account("TargetDomainName", "TargetUserName")),
}
# TargetUserName/TargetSid name the *group*; the member is MemberName (an LDAP DN, often "-"
# for local accounts) and MemberSid.
_GROUP_MEMBER: ColumnSpec = {
    **_SUBJECT,
    "target_user": Text(("MemberName", "MemberSid")),
    "target_sid": Text(("MemberSid",)),
}
_CRED_VALIDATION: ColumnSpec = {"target_user": Text(("TargetUserName",))}
_SYSMON_PROCESS: ColumnSpec = {
    "process": Text(("Image",)),
    "command_line": Text(("CommandLine",)),
    "parent_process": Text(("ParentImage",)),
    "sysmon_user": Text(("User",)),
}
_SYSMON_NETWORK: ColumnSpec = {
    "process": Text(("Image",)),
    "src_ip": Text(("SourceIp",)),
    "src_port": Port("SourcePort"),
    "dst_ip": Text(("DestinationIp",)),
    "sysmon_user": Text(("User",)),
}
_SYSMON_FILE: ColumnSpec = {
    "process": Text(("Image",)),
    "path": Text(("TargetFilename",)),
    "sysmon_user": Text(("User",)),
}
_PS_SCRIPT_BLOCK: ColumnSpec = {"script_block": Text(("ScriptBlockText",)),
                                "path": Text(("Path",))}
_PS_MODULE: ColumnSpec = {
    "command_line": Text(("Payload",)),
    "process": ContextLine("ContextInfo", "Host Application"),
    "sysmon_user": ContextLine("ContextInfo", "User"),
}
_LOG_CLEARED: ColumnSpec = _SUBJECT
_NOTHING: ColumnSpec = {}


# --- the table -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rule:
    """How to read one kind of event.

    Attributes:
        event_type: one of ``records.EVENT_TYPES``.
        columns: column name -> node that reads it from the flat EventData/UserData dict.
        user: which column becomes ``user``: "target_user", "subject_user", "sysmon_user".
        summary: ``str.format`` template over the columns plus ``eid`` and the raw data keys
            (missing values print as "?").
        providers: if set, the rule applies only to these providers (System is shared by many).
    """

    event_type: str
    columns: ColumnSpec
    user: str | None
    summary: str
    providers: frozenset[str] | None = None


_SCM = frozenset({"Service Control Manager"})
_EVENTLOG = frozenset({"EventLog"})
_KERNEL_GENERAL = frozenset({"Microsoft-Windows-Kernel-General"})
_EVENTLOG_PROVIDER = frozenset({"Microsoft-Windows-Eventlog"})

_LOGON_SUMMARY = "{eid} logon type {logon_type} by {target_user} from {src_ip}"
_ACCT = "{eid} account {target_user} changed by {subject_user}"

RULES: dict[tuple[str, int], Rule] = {
    (SECURITY, 4624): Rule("logon_success", _LOGON, "target_user", _LOGON_SUMMARY),
    (SECURITY, 4625): Rule(
        "logon_failure", _LOGON, "target_user",
        "{eid} failed logon type {logon_type} for {target_user} from {src_ip}"
        " (status {Status}/{SubStatus})"),
    (SECURITY, 4634): Rule("logoff", _LOGON, "target_user",
                           "{eid} logoff of {target_user} (logon type {logon_type})"),
    (SECURITY, 4647): Rule("logoff", _LOGON, "target_user",
                           "{eid} user-initiated logoff of {target_user}"),
    (SECURITY, 4648): Rule(
        "other", _LOGON, "subject_user",
        "{eid} explicit-credential logon attempt by {subject_user} as {target_user}"
        " to {TargetServerName}"),
    (SECURITY, 4672): Rule("privilege_use", _SUBJECT, "subject_user",
                           "{eid} special privileges assigned to {subject_user}"),
    (SECURITY, 4688): Rule("process_start", _PROCESS_4688, "subject_user",
                           "{eid} process {process} started by {subject_user}: {command_line}"),
    (SECURITY, 4689): Rule("process_end", _PROCESS_4689, "subject_user",
                           "{eid} process {process} ended"),
    (SECURITY, 4697): Rule("service_installed", _SERVICE_INSTALL, "subject_user",
                           "{eid} service {service_name} installed: {service_path}"),
    (SECURITY, 4698): Rule("scheduled_task_created", _TASK, "subject_user",
                           "{eid} scheduled task {task_name} created by {subject_user}"),
    (SECURITY, 4720): Rule("account_created", _ACCOUNT_MGMT, "subject_user",
                           "{eid} account {target_user} created by {subject_user}"),
    (SECURITY, 4726): Rule("account_deleted", _ACCOUNT_MGMT, "subject_user",
                           "{eid} account {target_user} deleted by {subject_user}"),
    (SECURITY, 4776): Rule(
        "other", _CRED_VALIDATION, "target_user",
        "{eid} credential validation for {target_user} from {Workstation} (status {Status})"),
    (SECURITY, 4781): Rule(
        "account_changed", _ACCOUNT_MGMT, "subject_user",
        "{eid} account {OldTargetUserName} renamed to {target_user} by {subject_user}"),
    (SECURITY, 1102): Rule("log_cleared", _LOG_CLEARED, "subject_user",
                           "{eid} Security log cleared by {subject_user}"),
    (SECURITY, 4608): Rule("system_boot", _NOTHING, None, "{eid} Windows is starting up"),
    (SECURITY, 1100): Rule("system_shutdown", _NOTHING, None,
                           "{eid} event logging service shut down"),
    (SYSTEM, 7045): Rule("service_installed", _SERVICE_INSTALL, None,
                         "{eid} service {service_name} installed: {service_path}", _SCM),
    (SYSTEM, 7036): Rule("service_state", _SERVICE_STATE, None,
                         "{eid} service {service_name} entered the {param2} state", _SCM),
    (SYSTEM, 7040): Rule("service_state", _SERVICE_STATE, None,
                         "{eid} start type of service {service_name} changed from {param2}"
                         " to {param3}", _SCM),
    (SYSTEM, 104): Rule("log_cleared", _LOG_CLEARED, "subject_user",
                        "{eid} {Channel} log cleared by {subject_user}", _EVENTLOG_PROVIDER),
    (SYSTEM, 6005): Rule("system_boot", _NOTHING, None, "{eid} event log service started",
                         _EVENTLOG),
    (SYSTEM, 6006): Rule("system_shutdown", _NOTHING, None, "{eid} event log service stopped",
                         _EVENTLOG),
    (SYSTEM, 12): Rule("system_boot", _NOTHING, None, "{eid} operating system started",
                       _KERNEL_GENERAL),
    (SYSTEM, 13): Rule("system_shutdown", _NOTHING, None, "{eid} operating system shut down",
                       _KERNEL_GENERAL),
    (SYSMON, 1): Rule("process_start", _SYSMON_PROCESS, "sysmon_user",
                      "{eid} process {process} started by {sysmon_user}: {command_line}"),
    (SYSMON, 2): Rule("file_changed", _SYSMON_FILE, "sysmon_user",
                      "{eid} creation time of {path} changed by {process}"),
    (SYSMON, 3): Rule("network_connection", _SYSMON_NETWORK, "sysmon_user",
                      "{eid} {process} connection {src_ip}:{src_port} -> {dst_ip}"
                      ":{DestinationPort}"),
    (SYSMON, 5): Rule("process_end", _SYSMON_PROCESS, "sysmon_user",
                      "{eid} process {process} ended"),
    (SYSMON, 11): Rule("file_created", _SYSMON_FILE, "sysmon_user",
                       "{eid} file {path} created by {process}"),
    (POWERSHELL, 4104): Rule("shell_command", _PS_SCRIPT_BLOCK, None,
                             "{eid} PowerShell script block: {script_block}"),
    (POWERSHELL, 4103): Rule("shell_command", _PS_MODULE, "sysmon_user",
                             "{eid} PowerShell pipeline by {sysmon_user}: {command_line}"),
}

for _eid in (*range(4722, 4726), *range(4727, 4739)):
    RULES.setdefault((SECURITY, _eid), Rule("account_changed", _ACCOUNT_MGMT, "subject_user",
                                            _ACCT))
for _eid in (4728, 4729, 4732, 4733, 4756, 4757):
    _verb = "added to" if _eid in (4728, 4732, 4756) else "removed from"
    RULES[(SECURITY, _eid)] = Rule(
        "group_membership_changed", _GROUP_MEMBER, "subject_user",
        "{eid} {target_user} " + _verb + " group {TargetDomainName}\\{TargetUserName}"
        " by {subject_user}")

# Columns an Event has; anything else a column function returns is only used for ``user``
# and the summary (``sysmon_user``).
EVENT_COLUMNS = frozenset({
    "user", "src_ip", "src_port", "dst_ip", "process", "command_line", "path", "logon_type",
    "subject_user", "subject_sid", "target_user", "target_sid", "parent_process",
    "service_name", "service_path", "task_name", "script_block",
})

SUMMARY_LIMIT = 300


class _Fill(dict):
    """format_map helper: columns first, then raw data values; missing ones print as '?'."""

    __slots__ = ("data",)

    def __missing__(self, key: str) -> str:
        value = self.data.get(key)
        text = None if type(value) is dict or type(value) is list else _text(value)
        return "?" if text is None else text


def _shorten(text: str) -> str:
    if "\n" in text or "\r" in text or "\t" in text or "  " in text:
        text = " ".join(text.split())
    return text if len(text) <= SUMMARY_LIMIT else text[: SUMMARY_LIMIT - 3] + "..."


@dataclass(frozen=True, slots=True)
class _Plan:
    """A rule ready to apply: its readers in order, each marked if it is an Event column."""

    event_type: str
    readers: tuple[tuple[str, Node, bool], ...]
    user: str | None
    summary: str


_PLANS: dict[tuple[str | None, int | None, str | None], _Plan | None] = {}
_PLANS_LIMIT = 4096  # distinct (channel, event id, provider) keys remembered; hostile logs can
#                      invent any number of providers, so the cache stops growing here


def _plan(channel: str | None, event_id: int | None, provider: str | None) -> _Plan | None:
    key = (channel, event_id, provider)
    try:
        return _PLANS[key]
    except (KeyError, TypeError):  # TypeError: an unhashable value, never cached
        pass
    rule = RULES.get((channel, event_id)) if type(event_id) is int or event_id is None else None
    plan = None
    if rule is not None and (rule.providers is None or provider in rule.providers):
        plan = _Plan(rule.event_type,
                     tuple((name, node, name in EVENT_COLUMNS)
                           for name, node in rule.columns.items()),
                     rule.user, rule.summary)
    if len(_PLANS) < _PLANS_LIMIT and (type(channel) is str or channel is None) and (
            type(provider) is str or provider is None):
        _PLANS[key] = plan
    return plan


def extract(channel: str | None, provider: str | None, event_id: int | None,
            data: Mapping[str, Any]) -> tuple[str, str, dict[str, Any]]:
    """``(event_type, message, columns)`` for one record; columns are Event field values.

    Args:
        channel: ``System/Channel``.
        provider: ``System/Provider/@Name``.
        event_id: ``System/EventID`` (None if unreadable).
        data: the flat EventData/UserData dict (see the module docstring).
    """
    plan = _plan(channel, event_id, provider)
    if plan is None:
        return "other", _generic_summary(channel, provider, event_id, data), {}
    columns: dict[str, Any] = {}
    fill = _Fill()
    fill.data = data
    for name, node, is_column in plan.readers:
        value = node(data)
        if value is not None:
            fill[name] = value
            if is_column:
                columns[name] = value
    if plan.user is not None:
        user = fill.get(plan.user)
        if user is not None:
            columns["user"] = user
    fill["eid"] = event_id
    return plan.event_type, _shorten(plan.summary.format_map(fill)), columns


def _generic_summary(channel: str | None, provider: str | None, event_id: int | None,
                     data: Mapping[str, Any]) -> str:
    """'<eid> <provider>: k=v, k=v' with the first few scalar EventData values."""
    parts = []
    for key, value in data.items():
        if key[:1] == "#" or type(value) is dict or type(value) is list:
            continue
        text = _text(value)
        if text is not None:
            parts.append(f"{key}={text}")
            if len(parts) == 4:
                break
    head = f"{event_id if event_id is not None else '?'} {provider or channel or '?'}"
    return _shorten(f"{head}: {', '.join(parts)}" if parts else head)
