"""What a Linux auth/system log message means: ``(program, message) -> Meaning``.

Pure functions, no I/O: the syslog parser calls :func:`interpret` for every line, and a
journald parser can call it with ``SYSLOG_IDENTIFIER`` and ``MESSAGE``.

Choices, made so that counting one event type does not count one action twice:

* **sshd**: ``Accepted <method> for U from IP port P`` is the logon (``logon_success``);
  ``Failed <method> for [invalid user] U ...`` is ``logon_failure``; ``Invalid user U from IP``
  is also ``logon_failure`` (``reason=invalid_user``) as asked for, so a count of failed *password
  tries* should use ``attributes["auth_method"] == "password"``. ``pam_unix(sshd:auth):
  authentication failure`` and ``PAM n more authentication failures`` repeat what the ``Failed``
  line says: ``other``. ``pam_unix(sshd:session): session closed`` is the ``logoff`` (one per
  session in every OpenSSH version); ``session opened``, ``Disconnected from user``, ``Received
  disconnect``, ``Connection closed ... [preauth]`` are ``other``. ``Connection from IP`` is
  ``network_connection``. ``POSSIBLE BREAK-IN ATTEMPT`` is ``other`` with
  ``possible_break_in=True``.
* **sudo**: ``U : TTY=.. ; PWD=.. ; USER=T ; COMMAND=C`` is ``privilege_use`` (success).
  ``U : 3 incorrect password attempts ; ...``, ``user NOT in sudoers`` and ``command not
  allowed`` are ``privilege_use`` with ``success=False``: the user was already logged on, what
  failed is the elevation. ``pam_unix(sudo:auth): authentication failure`` repeats it: ``other``.
* **su**: ``(to T) U on TTY`` / ``Successful su for T by U`` -> ``privilege_use``; ``FAILED su``
  / ``FAILED SU`` -> ``privilege_use`` with ``success=False``.
* **accounts**: useradd ``new user`` -> ``account_created``; ``new group`` / groupadd ->
  ``account_changed`` (``action=group_created``; there is no group type in the vocabulary);
  ``add 'U' to group 'G'`` -> ``group_membership_changed`` while ``add 'U' to shadow group 'G'``
  (the gshadow twin of the same change) is ``other``; password changes (passwd, chpasswd,
  ``usermod -p``) and other usermod changes -> ``account_changed``; userdel ``delete user`` ->
  ``account_deleted``.
* **cron**: ``(U) CMD (cmd)`` -> ``other`` with ``command_line`` (``action=cron_job_run``); it is
  a job run, not something a person typed. ``crontab[..]: (U) REPLACE (U)`` ->
  ``scheduled_task_created`` (a user crontab was installed or replaced).
* **boot**: kernel ``Linux version`` -> ``system_boot`` (the moment the kernel starts);
  systemd ``Startup finished`` is ``other`` (``boot_stage=startup_finished``) so one boot is
  one ``system_boot`` per file. logind ``System is rebooting/powering down`` and systemd
  ``Shutting down.`` -> ``system_shutdown``.
* **logind** ``New session N of user U`` is ``other``: the sshd ``Accepted`` line (or
  ``login``) is the logon, logind only registers its session.
* **kernel** ``[UFW BLOCK] SRC=.. DST=..`` -> ``network_connection`` (``action=block``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Meaning:
    """The event type of one message and the fields found in it."""

    event_type: str
    user: str | None = None
    src_ip: str | None = None
    src_port: int | None = None
    dst_ip: str | None = None
    command_line: str | None = None
    target_user: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)


OTHER = Meaning("other")

_IP = r"(?P<ip>[0-9A-Fa-f:.]+|\S+?)"

# --- sshd -----------------------------------------------------------------------------------
_SSH_ACCEPTED = re.compile(
    r"Accepted (?P<method>\S+) for (?P<user>.+?) from " + _IP + r" port (?P<port>\d+)"
    r"(?: (?P<proto>ssh\d?))?(?::? (?P<keytype>[A-Z0-9-]+) (?P<fp>\S+))?"
)
_SSH_FAILED = re.compile(
    r"Failed (?P<method>\S+) for (?P<invalid>invalid user )?(?P<user>.*?) from " + _IP
    + r" port (?P<port>\d+)"
)
_SSH_INVALID = re.compile(
    r"^Invalid user (?P<user>.*?) from " + _IP + r"(?: port (?P<port>\d+))?\s*$"
)
_SSH_BREAKIN = re.compile(r"\[(?P<ip>[0-9A-Fa-f:.]+)\].*POSSIBLE BREAK-IN ATTEMPT")
_SSH_CONN_FROM = re.compile(r"^Connection from " + _IP + r" port (?P<port>\d+)")
_SSH_CLOSED = re.compile(
    r"^Connection (?:closed|reset) by (?:(?P<kind>authenticating user|invalid user|user) "
    r"(?P<user>\S+) )?" + _IP + r"(?: port (?P<port>\d+))?"
)
_SSH_DISCONNECTED = re.compile(
    r"^Disconnected from (?:(?P<kind>authenticating user|invalid user|user) (?P<user>\S+) )?"
    + _IP + r"(?: port (?P<port>\d+))?"
)
_SSH_RECEIVED_DISC = re.compile(r"^Received disconnect from " + _IP + r"(?: port (?P<port>\d+))?")
_SSH_MAXAUTH = re.compile(
    r"maximum authentication attempts exceeded for (?:invalid user )?(?P<user>\S+) from "
    + _IP + r" port (?P<port>\d+)"
)
_SSH_NO_IDENT = re.compile(r"^Did not receive identification string from " + _IP)
_SSH_USERAUTH_INVALID = re.compile(r"^input_userauth_request: invalid user (?P<user>\S+)")
# --- PAM (any service) ----------------------------------------------------------------------
_PAM = re.compile(r"^pam_unix\((?P<service>[^:)]+):(?P<kind>[^)]+)\): (?P<text>.*)$")
_PAM_SESSION = re.compile(
    r"session (?P<what>opened|closed) for user (?P<user>[^\s(]+)(?:\(uid=\d+\))?"
    r"(?: by (?P<by>[^\s(]*)(?:\(uid=\d+\))?)?"
)
_PAM_AUTHFAIL = re.compile(r"authentication failure;(?P<kv>.*)$")
_PAM_MORE = re.compile(r"^PAM (?P<n>\d+) more authentication failures?;(?P<kv>.*)$")
_PAM_PASSWORD = re.compile(r"password changed for (?P<user>\S+)")
_KV = re.compile(r"(\w+)=(\S*)")
# --- sudo / su ------------------------------------------------------------------------------
_SUDO = re.compile(r"^\s*(?P<user>\S+) : (?P<rest>.*)$")
_SU_TO = re.compile(r"^\(to (?P<target>[^)]+)\) (?P<user>\S+) on (?P<tty>\S+)")
_SU_OK = re.compile(r"^Successful su for (?P<target>\S+) by (?P<user>\S+)")
_SU_FAIL = re.compile(
    r"^FAILED (?:su for (?P<target>\S+) by (?P<user>\S+)|SU \(to (?P<target2>[^)]+)\) "
    r"(?P<user2>\S+) on (?P<tty>\S+))"
)
# --- account management ---------------------------------------------------------------------
_NEW_USER = re.compile(r"^new user: name=(?P<user>[^,]+),(?P<rest>.*)$")
_NEW_GROUP = re.compile(r"^(?:new group|group added to \S+): name=(?P<group>[^,]+)(?P<rest>.*)$")
_ADD_TO_GROUP = re.compile(
    r"^add '(?P<user>[^']+)' to (?P<shadow>shadow )?group '(?P<group>[^']+)'"
)
_DEL_FROM_GROUP = re.compile(
    r"^delete '(?P<user>[^']+)' from (?P<shadow>shadow )?group '(?P<group>[^']+)'"
)
_DEL_USER = re.compile(r"^delete user '(?P<user>[^']+)'")
_CHANGE_USER = re.compile(r"^(?:change|lock|unlock) user '(?P<user>[^']+)'(?P<rest>.*)$")
_GROUP_REMOVED = re.compile(r"^(?:group '(?P<g1>[^']+)' removed|removed group '(?P<g2>[^']+)')")
# --- cron -----------------------------------------------------------------------------------
_CRON_CMD = re.compile(r"^\((?P<user>[^)]+)\) CMD \((?P<cmd>.*)\)\s*$")
_CRONTAB_ACTION = re.compile(r"^\((?P<user>[^)]+)\) (?P<action>[A-Z]+) \((?P<target>[^)]*)\)")
# --- kernel / systemd -----------------------------------------------------------------------
_KERNEL_STAMP = re.compile(r"^\[\s*\d+\.\d+\]\s*")
_UFW = re.compile(r"\[UFW (?P<action>[A-Z]+)\]")
_UFW_KV = re.compile(r"\b(SRC|DST|PROTO|SPT|DPT|IN|OUT)=(\S*)")
_LOGIND_NEW = re.compile(r"^New session (?P<session>\S+) of user (?P<user>[^\s.]+)\.?")
_LOGIND_REMOVED = re.compile(r"^Removed session (?P<session>[^\s.]+)")
_LOGIND_SHUTDOWN = re.compile(r"^System is (?P<what>rebooting|powering down|powering off|halting)")
_LOGIN_FAILED = re.compile(r"^FAILED LOGIN \(\d+\) on '(?P<tty>[^']+)' FOR '(?P<user>[^']+)'")
_LOGIN_OK = re.compile(r"^(?:ROOT LOGIN|LOGIN) ON (?P<tty>\S+)(?: BY (?P<user>\S+))?")


def _int(value: str | None) -> int | None:
    return int(value) if value is not None and value.isdigit() else None


def _pam_kv(text: str) -> dict[str, str]:
    return {k: v for k, v in _KV.findall(text) if v}


def _sshd(message: str) -> Meaning:
    msg = message.strip()
    if m := _SSH_ACCEPTED.search(msg):
        attrs: dict[str, Any] = {"auth_method": m["method"]}
        if m["keytype"]:
            attrs["key_type"] = m["keytype"]
            attrs["key_fingerprint"] = m["fp"]
        return Meaning("logon_success", user=m["user"], src_ip=m["ip"], src_port=_int(m["port"]),
                       attributes=attrs)
    if m := _SSH_FAILED.search(msg):
        attrs = {"auth_method": m["method"], "invalid_user": bool(m["invalid"])}
        return Meaning("logon_failure", user=m["user"], src_ip=m["ip"], src_port=_int(m["port"]),
                       attributes=attrs)
    if m := _SSH_INVALID.match(msg):
        return Meaning("logon_failure", user=m["user"], src_ip=m["ip"], src_port=_int(m["port"]),
                       attributes={"reason": "invalid_user"})
    if m := _PAM.match(msg):
        return _pam(m)
    if m := _PAM_MORE.match(msg):
        kv = _pam_kv(m["kv"])
        return Meaning("other", user=kv.get("user"), src_ip=kv.get("rhost"),
                       attributes={"action": "pam_more_failures", "count": int(m["n"]),
                                   "duplicate_of": "Failed <method> lines"})
    if m := _SSH_BREAKIN.search(msg):
        return Meaning("other", src_ip=m["ip"], attributes={"possible_break_in": True})
    if m := _SSH_CONN_FROM.match(msg):
        return Meaning("network_connection", src_ip=m["ip"], src_port=_int(m["port"]),
                       attributes={"action": "ssh_connection"})
    if m := _SSH_DISCONNECTED.match(msg):
        return Meaning("other", user=m["user"], src_ip=m["ip"], src_port=_int(m["port"]),
                       attributes={"action": "disconnected", "stage": m["kind"] or "unknown"})
    if m := _SSH_CLOSED.match(msg):
        attrs = {"action": "connection_closed", "preauth": "[preauth]" in msg}
        if m["kind"] == "invalid user":
            attrs["invalid_user"] = True
        return Meaning("other", user=m["user"], src_ip=m["ip"], src_port=_int(m["port"]),
                       attributes=attrs)
    if m := _SSH_RECEIVED_DISC.match(msg):
        return Meaning("other", src_ip=m["ip"], src_port=_int(m["port"]),
                       attributes={"action": "received_disconnect"})
    if m := _SSH_MAXAUTH.search(msg):
        return Meaning("other", user=m["user"], src_ip=m["ip"], src_port=_int(m["port"]),
                       attributes={"action": "max_auth_exceeded"})
    if m := _SSH_NO_IDENT.match(msg):
        return Meaning("other", src_ip=m["ip"], attributes={"action": "no_identification"})
    if m := _SSH_USERAUTH_INVALID.match(msg):
        return Meaning("other", user=m["user"],
                       attributes={"reason": "invalid_user", "duplicate_of": "Invalid user line"})
    return OTHER


def _pam(m: re.Match[str]) -> Meaning:
    service, kind, text = m["service"], m["kind"], m["text"]
    base = {"pam_service": service, "pam_kind": kind}
    if s := _PAM_SESSION.match(text):
        what = s["what"]
        attrs = {**base, "action": f"session_{what}"}
        if s["by"]:
            attrs["by"] = s["by"]
        event_type = "logoff" if what == "closed" and service in ("sshd", "login") else "other"
        return Meaning(event_type, user=s["user"], attributes=attrs)
    if a := _PAM_AUTHFAIL.search(text):
        kv = _pam_kv(a["kv"])
        attrs = {**base, "action": "pam_authentication_failure", **kv}
        return Meaning("other", user=kv.get("user") or kv.get("ruser"), src_ip=kv.get("rhost"),
                       attributes=attrs)
    if p := _PAM_PASSWORD.search(text):
        return Meaning("account_changed", target_user=p["user"], user=None,
                       attributes={**base, "action": "password_changed"})
    return Meaning("other", attributes=base)


def _sudo(message: str) -> Meaning:
    if m := _PAM.match(message.strip()):
        return _pam(m)
    m = _SUDO.match(message)
    if not m:
        return OTHER
    parts = [p.strip() for p in m["rest"].split(" ; ")]
    fields: dict[str, str] = {}
    problems: list[str] = []
    for part in parts:
        key, sep, value = part.partition("=")
        if sep and key in {"TTY", "PWD", "USER", "GROUP", "COMMAND", "ENV"}:
            fields[key] = value
        else:
            problems.append(part)
    # COMMAND= is last and may itself contain " ; ": keep everything after it.
    if "COMMAND=" in m["rest"]:
        fields["COMMAND"] = m["rest"].split("COMMAND=", 1)[1]
    if not fields:
        return OTHER
    attrs: dict[str, Any] = {"success": not problems}
    if problems:
        attrs["reason"] = "; ".join(problems)
    if "TTY" in fields:
        attrs["tty"] = fields["TTY"]
    if "PWD" in fields:
        attrs["cwd"] = fields["PWD"]
    return Meaning("privilege_use", user=m["user"], command_line=fields.get("COMMAND"),
                   target_user=fields.get("USER"), attributes=attrs)


def _su(message: str) -> Meaning:
    msg = message.strip()
    if m := _PAM.match(msg):
        return _pam(m)
    if m := _SU_TO.match(msg):
        return Meaning("privilege_use", user=m["user"], target_user=m["target"],
                       attributes={"success": True, "tty": m["tty"]})
    if m := _SU_OK.match(msg):
        return Meaning("privilege_use", user=m["user"], target_user=m["target"],
                       attributes={"success": True})
    if m := _SU_FAIL.match(msg):
        attrs: dict[str, Any] = {"success": False}
        if m["tty"]:
            attrs["tty"] = m["tty"]
        return Meaning("privilege_use", user=m["user"] or m["user2"],
                       target_user=m["target"] or m["target2"], attributes=attrs)
    return OTHER


def _accounts(message: str) -> Meaning:
    msg = message.strip()
    if m := _PAM.match(msg):
        return _pam(m)
    if m := _NEW_USER.match(msg):
        attrs: dict[str, Any] = {"action": "user_created"}
        for key, value in re.findall(r"(\w+)=([^,]*)", m["rest"]):
            attrs[key.lower()] = value
        return Meaning("account_created", target_user=m["user"], attributes=attrs)
    if m := _NEW_GROUP.match(msg):
        attrs = {"action": "group_created", "group": m["group"]}
        if g := re.search(r"GID=(\d+)", m["rest"]):
            attrs["gid"] = g[1]
        return Meaning("account_changed", attributes=attrs)
    if m := _ADD_TO_GROUP.match(msg):
        attrs = {"action": "added_to_group", "group": m["group"]}
        if m["shadow"]:
            attrs["shadow"] = True
            return Meaning("other", target_user=m["user"], attributes=attrs)
        return Meaning("group_membership_changed", target_user=m["user"], attributes=attrs)
    if m := _DEL_FROM_GROUP.match(msg):
        attrs = {"action": "removed_from_group", "group": m["group"]}
        if m["shadow"]:
            attrs["shadow"] = True
            return Meaning("other", target_user=m["user"], attributes=attrs)
        return Meaning("group_membership_changed", target_user=m["user"], attributes=attrs)
    if m := _DEL_USER.match(msg):
        return Meaning("account_deleted", target_user=m["user"],
                       attributes={"action": "user_deleted"})
    if m := _CHANGE_USER.match(msg):
        rest = m["rest"].strip()
        action = "password_changed" if rest == "password" else "user_changed"
        return Meaning("account_changed", target_user=m["user"],
                       attributes={"action": action, "change": msg})
    if m := _PAM_PASSWORD.search(msg):
        return Meaning("account_changed", target_user=m["user"],
                       attributes={"action": "password_changed"})
    if m := _GROUP_REMOVED.match(msg):
        return Meaning("account_changed",
                       attributes={"action": "group_deleted", "group": m["g1"] or m["g2"]})
    return OTHER


def _cron(message: str) -> Meaning:
    msg = message.strip()
    if m := _PAM.match(msg):
        return _pam(m)
    if m := _CRON_CMD.match(msg):
        return Meaning("other", user=m["user"], command_line=m["cmd"],
                       attributes={"action": "cron_job_run"})
    if m := _CRONTAB_ACTION.match(msg):
        action = m["action"]
        attrs = {"action": f"crontab_{action.lower()}", "crontab_of": m["target"]}
        if action == "REPLACE":
            return Meaning("scheduled_task_created", user=m["user"], attributes=attrs)
        return Meaning("other", user=m["user"], attributes=attrs)
    return OTHER


def _kernel(message: str) -> Meaning:
    msg = _KERNEL_STAMP.sub("", message.strip(), count=1)
    if msg.startswith("Linux version "):
        return Meaning("system_boot", attributes={"kernel": msg.split()[2]})
    if m := _UFW.search(msg):
        kv = dict(_UFW_KV.findall(msg))
        attrs: dict[str, Any] = {"action": m["action"].lower(), "firewall": "ufw"}
        if kv.get("PROTO"):
            attrs["protocol"] = kv["PROTO"]
        if kv.get("DPT", "").isdigit():
            attrs["dst_port"] = int(kv["DPT"])
        if kv.get("IN"):
            attrs["interface"] = kv["IN"]
        return Meaning("network_connection", src_ip=kv.get("SRC") or None,
                       src_port=_int(kv.get("SPT")), dst_ip=kv.get("DST") or None,
                       attributes=attrs)
    return OTHER


def _systemd(message: str) -> Meaning:
    msg = message.strip()
    if msg.startswith("Startup finished in"):
        return Meaning("other", attributes={"boot_stage": "startup_finished"})
    if msg == "Shutting down.":
        return Meaning("system_shutdown")
    return OTHER


def _logind(message: str) -> Meaning:
    msg = message.strip()
    if m := _LOGIND_NEW.match(msg):
        return Meaning("other", user=m["user"],
                       attributes={"action": "session_new", "session": m["session"]})
    if m := _LOGIND_REMOVED.match(msg):
        return Meaning("other", attributes={"action": "session_removed", "session": m["session"]})
    if m := _LOGIND_SHUTDOWN.match(msg):
        return Meaning("system_shutdown", attributes={"action": m["what"].replace(" ", "_")})
    return OTHER


def _login(message: str) -> Meaning:
    msg = message.strip()
    if m := _PAM.match(msg):
        return _pam(m)
    if m := _LOGIN_FAILED.match(msg):
        return Meaning("logon_failure", user=m["user"], attributes={"tty": m["tty"]})
    if m := _LOGIN_OK.match(msg):
        return Meaning("logon_success", user=m["user"] or "root", attributes={"tty": m["tty"]})
    return OTHER


_HANDLERS = {
    "sshd": _sshd,
    "sshd-session": _sshd,
    "sudo": _sudo,
    "su": _su,
    "useradd": _accounts,
    "usermod": _accounts,
    "userdel": _accounts,
    "groupadd": _accounts,
    "groupmod": _accounts,
    "groupdel": _accounts,
    "gpasswd": _accounts,
    "passwd": _accounts,
    "chpasswd": _accounts,
    "chage": _accounts,
    "cron": _cron,
    "crond": _cron,
    "crontab": _cron,
    "anacron": lambda _msg: OTHER,
    "kernel": _kernel,
    "systemd": _systemd,
    "systemd-logind": _logind,
    "login": _login,
}


def interpret(program: str | None, message: str) -> Meaning:
    """The meaning of ``message`` logged by ``program`` (``sshd``, ``/usr/sbin/cron``, ``CRON``).

    Unknown programs and unrecognised messages are ``other``; a few recognisers (PAM lines)
    apply whatever the program.
    """
    if program:
        name = program.rsplit("/", 1)[-1].lower()
        handler = _HANDLERS.get(name)
        if handler is not None:
            return handler(message)
    if message.lstrip().startswith("pam_unix(") and (m := _PAM.match(message.strip())):
        return _pam(m)
    return OTHER
