"""Login accounting files: ``wtmp``/``btmp``/``utmp`` (``struct utmp``) and ``lastlog``.

Both are arrays of fixed-size little-endian C structs as written by glibc on Linux x86-64 (and
32-bit x86, which has the same 384-byte ``struct utmp`` and 292-byte ``struct lastlog``).

``struct utmp`` (384 bytes)::

    0   ut_type     int16 (+2 bytes padding)     EMPTY 0 .. ACCOUNTING 9
    4   ut_pid      int32
    8   ut_line     char[32]    tty, "~" for boot/runlevel records
    40  ut_id       char[4]
    44  ut_user     char[32]
    76  ut_host     char[256]
    332 ut_exit     int16 e_termination, int16 e_exit
    336 ut_session  int32
    340 ut_tv       int32 tv_sec, int32 tv_usec
    348 ut_addr_v6  int32[4]    IPv4 in the first word only, else IPv6
    364 __unused    char[20]

How records become events (one ``Event`` or ``Rejection`` per 384-byte record):

- ``BOOT_TIME`` (2) -> ``system_boot``.
- ``RUN_LVL`` (1) -> ``system_shutdown`` when ``ut_user`` is ``shutdown`` (what systemd and
  ``last`` use) or the new runlevel is ``0`` or ``6`` (halt, reboot); any other runlevel change is
  ``other``. The runlevel is the low byte of ``ut_pid``, the previous one the next byte.
- ``USER_PROCESS`` (7) -> ``logon_success`` in wtmp/utmp.
- ``DEAD_PROCESS`` (8) -> ``logoff``.
- In ``btmp`` every login record is a failed login: ``logon_failure`` for ``USER_PROCESS`` and
  for ``LOGIN_PROCESS`` (6), which is what OpenSSH and util-linux ``login`` write there.
- ``LOGIN_PROCESS`` (6, a getty waiting), ``INIT_PROCESS`` (5), ``NEW_TIME``/``OLD_TIME`` (3/4,
  clock changes) and ``ACCOUNTING`` (9) -> ``other``.
- ``EMPTY`` (0) records are slots that were never used or were freed; they are not events and are
  not damage, but they are records looked at, so each is a ``Rejection`` with reason
  ``"empty slot"`` (keeps ``seen = loaded + rejected``; filter on that reason to ignore them).
- A ``ut_type`` outside 0..9, a zero or negative ``tv_sec`` or a ``tv_usec`` outside 0..999999
  is damage: ``Rejection``. Trailing bytes that do not fill a record (a torn write) are one
  ``Rejection`` ("torn record: N trailing bytes") at their offset.

``struct lastlog`` (292 bytes, indexed by uid: slot ``n`` at byte ``292 * n`` is uid ``n``)::

    0   ll_time     int32
    4   ll_line     char[32]
    36  ll_host     char[256]

lastlog is a sparse file: all-zero slots are holes (uids that never logged in), not written
records, so they are skipped without a ``Rejection``. Every other slot is an ``other`` event with
``ts_desc`` ``"last login"``; the uid goes into ``attributes`` and ``user`` stays None because
the parser has no passwd mapping. A slot with ``ll_time`` <= 0 but other bytes set, and a torn
tail, are ``Rejection``s.
"""

from __future__ import annotations

import ipaddress
import re
import struct
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from sealtrail.analysis.parsers.base import MemberContext
from sealtrail.analysis.records import Event, Rejection

UTMP_SIZE = 384
LASTLOG_SIZE = 292
_UTMP = struct.Struct("<hxxi32s4s32s256shhiii16s20s")
_LASTLOG = struct.Struct("<i32s256s")
_ADDR = struct.Struct("<4I")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_CHUNK = 1 << 20

EMPTY, RUN_LVL, BOOT_TIME, NEW_TIME, OLD_TIME = 0, 1, 2, 3, 4
INIT_PROCESS, LOGIN_PROCESS, USER_PROCESS, DEAD_PROCESS, ACCOUNTING = 5, 6, 7, 8, 9
UT_TYPE_NAMES = {
    EMPTY: "EMPTY",
    RUN_LVL: "RUN_LVL",
    BOOT_TIME: "BOOT_TIME",
    NEW_TIME: "NEW_TIME",
    OLD_TIME: "OLD_TIME",
    INIT_PROCESS: "INIT_PROCESS",
    LOGIN_PROCESS: "LOGIN_PROCESS",
    USER_PROCESS: "USER_PROCESS",
    DEAD_PROCESS: "DEAD_PROCESS",
    ACCOUNTING: "ACCOUNTING",
}
_UTMP_NAME = re.compile(r"^(wtmp|btmp|utmp)(?:-\d{8,10})?$")


def _text(raw: bytes) -> str:
    """A NUL-terminated C string; undecodable bytes kept as ``\\xNN`` escapes."""
    return raw.split(b"\0", 1)[0].decode("utf-8", errors="backslashreplace")


def _ip_or_none(text: str) -> str | None:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def _addr(raw: bytes) -> str | None:
    """``ut_addr_v6``: IPv4 when only the first word is set, IPv6 otherwise, None when zero."""
    words = _ADDR.unpack(raw)
    if not any(words):
        return None
    if not any(words[1:]):
        return str(ipaddress.IPv4Address(raw[:4]))
    return str(ipaddress.IPv6Address(raw))


def _file_kind(member: MemberContext) -> str | None:
    """``wtmp``, ``btmp`` or ``utmp`` from the name, also ``btmp-20240301`` (dateext rotation).

    ``wtmp.db`` (wtmpdb, SQLite) and ``wtmpx``/``utmpx`` (other layouts) are not ours.
    """
    match = _UTMP_NAME.match(member.logical_name)
    return match.group(1) if match else None


def _read_all(member: MemberContext) -> Iterator[tuple[int, bytes]]:
    """The member's bytes in chunks, with the offset of each chunk."""
    offset = 0
    with member.open() as stream:
        while chunk := stream.read(_CHUNK):
            yield offset, chunk
            offset += len(chunk)


def _records(member: MemberContext, size: int) -> Iterator[tuple[int, bytes]]:
    """Fixed-size records with their offsets; a short last piece is yielded as it is."""
    pending = b""
    start = 0  # offset of pending[0]
    for _offset, chunk in _read_all(member):
        pending += chunk
        usable = len(pending) - len(pending) % size
        for at in range(0, usable, size):
            yield start + at, pending[at : at + size]
        start += usable
        pending = pending[usable:]
    if pending:
        yield start, pending


def _plausible_utmp(record: bytes) -> bool:
    """Sniffing: a used record with a known type, a sane time and a printable ``ut_line``."""
    ut_type, _pid, line, *_rest = _UTMP.unpack(record)
    if not any(record):
        return True
    sec, usec = struct.unpack_from("<ii", record, 340)
    line_text = line.split(b"\0", 1)[0]
    return (
        RUN_LVL <= ut_type <= ACCOUNTING
        and 0 < sec
        and 0 <= usec < 1_000_000
        and all(32 <= byte < 127 for byte in line_text)
    )


class UtmpParser:
    """wtmp, btmp and utmp: glibc x86-64/x86 ``struct utmp`` login records."""

    NAME: ClassVar[str] = "utmp"
    VERSION: ClassVar[str] = "1"
    DESCRIPTION: ClassVar[str] = (
        "Linux wtmp/btmp/utmp login records (glibc struct utmp, 384 bytes, little-endian)"
    )

    def check(self, member: MemberContext, head: bytes) -> bool:
        if _file_kind(member) is not None:
            return True
        # Content sniffing only for uncompressed members whose size is a whole number of records,
        # all of them in the head plausible and at least one of them used.
        if member.compression or member.size == 0 or member.size % UTMP_SIZE:
            return False
        records = [head[at : at + UTMP_SIZE] for at in range(0, len(head) - UTMP_SIZE + 1,
                                                             UTMP_SIZE)]
        return (
            bool(records)
            and any(any(record) for record in records)
            and all(_plausible_utmp(record) for record in records)
        )

    def parse(self, member: MemberContext) -> Iterator[Event | Rejection]:
        kind = _file_kind(member) or "wtmp"
        for offset, record in _records(member, UTMP_SIZE):
            ref = f"offset:{offset}"
            if len(record) < UTMP_SIZE:
                yield Rejection(ref, f"torn record: {len(record)} trailing bytes")
                continue
            yield self._record(record, ref, kind)

    def _record(self, record: bytes, ref: str, kind: str) -> Event | Rejection:
        (ut_type, pid, line_raw, id_raw, user_raw, host_raw, e_termination, e_exit, session,
         sec, usec, addr_raw, _unused) = _UTMP.unpack(record)
        if ut_type == EMPTY:
            return Rejection(ref, "empty slot")
        if ut_type not in UT_TYPE_NAMES:
            return Rejection(ref, f"invalid ut_type {ut_type}")
        if sec <= 0:
            return Rejection(ref, f"invalid timestamp: tv_sec {sec}")
        if not 0 <= usec < 1_000_000:
            return Rejection(ref, f"invalid timestamp: tv_usec {usec}")
        ts = _EPOCH + timedelta(seconds=sec, microseconds=usec)
        line, host, raw_user = _text(line_raw), _text(host_raw), _text(user_raw)
        src_ip = _addr(addr_raw) or _ip_or_none(host)
        attributes: dict[str, Any] = {
            "file": kind,
            "ut_type": ut_type,
            "ut_type_name": UT_TYPE_NAMES[ut_type],
            "line": line,
            "id": _text(id_raw),
            "pid": pid,
            "host": host,
            "session": session,
            "exit_termination": e_termination,
            "exit_status": e_exit,
            "ut_user": raw_user,
        }
        # Boot, runlevel and clock records put a pseudo-user ("reboot", "runlevel") in ut_user.
        user: str | None = raw_user or None
        where = f" on {line}" if line else ""
        origin = f" from {host or src_ip}" if (host or src_ip) else ""
        if ut_type == BOOT_TIME:
            event_type, ts_desc, user = "system_boot", "boot", None
            message = f"system boot (kernel {host})" if host else "system boot"
        elif ut_type == RUN_LVL:
            level, previous = chr(pid & 0xFF) if pid & 0xFF else "", chr((pid >> 8) & 0xFF)
            previous = previous if previous.isprintable() and previous != "\0" else ""
            attributes["runlevel"] = level
            attributes["previous_runlevel"] = previous
            if raw_user == "shutdown" or level in {"0", "6"}:
                event_type, ts_desc = "system_shutdown", "shutdown"
                message = "system shutdown" + (f" (runlevel {level})" if level else "")
            else:
                event_type, ts_desc = "other", "runlevel change"
                message = f"runlevel change to {level or '?'}" + (
                    f" from {previous}" if previous else ""
                )
            user = None
        elif ut_type in (NEW_TIME, OLD_TIME):
            event_type, user = "other", None
            ts_desc = "clock change (" + ("new" if ut_type == NEW_TIME else "old") + " time)"
            message = f"system clock change: {ts_desc}"
        elif kind == "btmp" and ut_type in (USER_PROCESS, LOGIN_PROCESS):
            event_type, ts_desc = "logon_failure", "failed login"
            message = f"failed login for {raw_user or '?'}{where}{origin}"
        elif ut_type == USER_PROCESS:
            event_type, ts_desc = "logon_success", "login"
            message = f"login of {raw_user or '?'}{where}{origin}"
        elif ut_type == DEAD_PROCESS:
            event_type, ts_desc = "logoff", "logout"
            message = f"logout{where} (pid {pid})" + (f" of {raw_user}" if raw_user else "")
        elif ut_type == LOGIN_PROCESS:
            event_type, ts_desc, user = "other", "login process", None  # ut_user is "LOGIN"
            message = f"login process (getty){where} (pid {pid})"
        elif ut_type == INIT_PROCESS:
            event_type, ts_desc, user = "other", "init process", None
            message = f"process spawned by init{where} (pid {pid})"
        else:
            event_type, ts_desc = "other", "accounting"
            message = f"accounting record{where}"
        return Event(
            ts=ts,
            ts_desc=ts_desc,
            event_type=event_type,
            message=message,
            record_ref=ref,
            user=user,
            src_ip=src_ip,
            attributes=attributes,
            parser=self.NAME,
        )


class LastlogParser:
    """lastlog: the last login time, tty and host per uid (292-byte slots, sparse)."""

    NAME: ClassVar[str] = "lastlog"
    VERSION: ClassVar[str] = "1"
    DESCRIPTION: ClassVar[str] = "Linux /var/log/lastlog (struct lastlog, 292 bytes per uid)"

    def check(self, member: MemberContext, head: bytes) -> bool:
        # No magic number and mostly zeros: by name only.
        return member.logical_name == "lastlog"

    def parse(self, member: MemberContext) -> Iterator[Event | Rejection]:
        for offset, slot in _records(member, LASTLOG_SIZE):
            ref = f"offset:{offset}"
            if len(slot) < LASTLOG_SIZE:
                yield Rejection(ref, f"torn record: {len(slot)} trailing bytes")
                continue
            if not any(slot):
                continue  # a hole: this uid never logged in; not a record
            yield self._slot(slot, offset // LASTLOG_SIZE, ref)

    def _slot(self, slot: bytes, uid: int, ref: str) -> Event | Rejection:
        sec, line_raw, host_raw = _LASTLOG.unpack(slot)
        if sec <= 0:
            return Rejection(ref, f"invalid timestamp: ll_time {sec}")
        line, host = _text(line_raw), _text(host_raw)
        where = f" on {line}" if line else ""
        origin = f" from {host}" if host else ""
        return Event(
            ts=_EPOCH + timedelta(seconds=sec),
            ts_desc="last login",
            event_type="other",
            message=f"last login of uid {uid}{where}{origin}",
            record_ref=ref,
            src_ip=_ip_or_none(host),
            attributes={"uid": uid, "line": line, "host": host},
            parser=self.NAME,
        )
