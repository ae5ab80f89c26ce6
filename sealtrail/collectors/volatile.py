"""Capture the volatile state of a running Linux host, most volatile first (RFC 3227 sec. 2.1).

`capture_volatile` reads the kernel's views in ``/proc`` (and a few files of the host root:
``/run/utmp``, ``/etc/localtime``, ``/etc/os-release``, NTP configuration) and returns one
`Capture` per kind of state, in this order, each read in turn and stamped with its own UTC time:

1. ``clock``: system time, monotonic and boot-time clocks, the kernel's NTP state (``adjtimex``
   with ``modes = 0``, a read), time zone and configured NTP servers. First, because every
   other timestamp is only as good as this clock.
2. ``processes``: every ``/proc/[pid]``.
3. ``network``: sockets of ``/proc/net/{tcp,tcp6,udp,udp6,unix}`` joined to the pids holding them.
4. ``logged_in``: ``USER_PROCESS`` records of utmp.
5. ``mounts``: ``/proc/[self]/mountinfo``.
6. ``modules``: ``/proc/modules`` and ``/proc/sys/kernel/tainted``.
7. ``system``: uptime, boot time, host name, kernel, ``/etc/os-release``, load average.

Rules, each answering a live-collection hazard:

- Nothing is written and nothing is executed: every value is read from a file or a symlink's
  target. ``adjtimex`` is called with ``modes = 0``, which only reads.
- Symlinks are never followed below ``proc_root`` and ``root``: every path is opened one
  component at a time with ``O_NOFOLLOW``, and links (``exe``, ``cwd``, ``fd/*``,
  ``/etc/localtime``) are only read with ``readlink``. ``/proc/self`` and ``/proc/net`` are
  symlinks, so the collector's own pid is taken from ``readlink(proc_root/self)`` and its
  ``net`` and ``mountinfo`` are read under ``proc_root/<pid>/``. FIFOs and devices are never
  opened (each file is ``lstat``-ed first and must be regular).
- One failing read never aborts a capture: it is recorded in the capture's ``errors`` with the
  path and the errno name. A process that exits while it is read is recorded with
  ``"vanished": true`` and whatever was read before, not as an error.
- Bytes that are not UTF-8 (command lines, paths, names) are kept losslessly, like manifest
  paths: the text field holds a readable rendering (``backslashreplace``: ``\\xff``) and a
  sibling ``<field>_b64`` holds the raw bytes in base64; it exists only when some byte is not
  UTF-8. For ``cmdline`` the sibling ``cmdline_b64`` lists every argument, so indexes match.
- No floats, and no integers beyond 2**53 (JSON readers in other languages lose them): clock
  readings in nanoseconds are decimal strings, times are RFC 3339 UTC text, and values the
  kernel prints as decimals (load average, uptime) are kept as the kernel's text.

Each capture's ``data`` is UTF-8 JSON (sorted keys, ASCII, one line) of
``{"captured_at", "source", "items", "errors"}``. Every item has a ``kind``.
"""

from __future__ import annotations

import base64
import ctypes
import errno
import ipaddress
import json
import os
import pwd
import stat
import struct
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

__all__ = ["CAPTURE_ORDER", "Capture", "capture_volatile"]

#: The captures, most volatile first; `capture_volatile` returns them in this order.
CAPTURE_ORDER = (
    "clock", "processes", "network", "logged_in", "mounts", "modules", "system",
)

#: Largest file read whole (a /proc/net table of a busy server is tens of MB at most).
READ_LIMIT = 64 << 20

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Capture:
    """One kind of volatile state, ready to be stored as ``volatile/<name>.json``.

    Same fields as `sealtrail.acquisition.collection.VolatileCapture` (collectors do not import
    custody; the caller converts).
    """

    name: str
    data: bytes
    captured_at: str
    description: str


# -- small helpers ----------------------------------------------------------------------------


def _errno_name(exc: OSError) -> str:
    return errno.errorcode.get(exc.errno or 0, "EIO")


def _utc_ns(ns: int) -> str:
    """Nanoseconds since the epoch as RFC 3339 UTC with microseconds and ``Z``."""
    return (_EPOCH + timedelta(microseconds=ns // 1000)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _utc_ns_full(ns: int) -> str:
    """Nanoseconds since the epoch as RFC 3339 UTC with all nine fraction digits."""
    seconds, fraction = divmod(ns, 1_000_000_000)
    return (_EPOCH + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S.") + (
        f"{fraction:09d}Z"
    )


def _put_text(record: dict[str, Any], key: str, raw: bytes | None) -> None:
    """``record[key]`` = text; ``record[key + "_b64"]`` = raw bytes when they are not UTF-8."""
    if raw is None:
        record[key] = None
        return
    try:
        record[key] = raw.decode("utf-8")
    except UnicodeDecodeError:
        record[key] = raw.decode("utf-8", "backslashreplace")
        record[key + "_b64"] = base64.b64encode(raw).decode()


def _encode(document: dict[str, Any]) -> bytes:
    """The bytes of a capture (the only serialisation in this module)."""
    return json.dumps(document, sort_keys=True, indent=None, allow_nan=False).encode("utf-8")


class _Errors:
    """The ``errors`` list of one capture."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []

    def os_error(self, path: str, exc: OSError) -> None:
        self.items.append({"path": path, "errno": _errno_name(exc), "detail": exc.strerror})

    def bad_data(self, path: str, detail: str) -> None:
        self.items.append({"path": path, "errno": None, "detail": detail})


class _Tree:
    """Read-only access below one folder that never follows a symlink.

    ``base`` itself is opened as given (the caller chose it); below it every component is
    opened with ``O_NOFOLLOW``, so a symlink anywhere on a path fails with ELOOP or ENOTDIR.
    """

    def __init__(self, base: Path) -> None:
        self.base = base
        self._base_bytes = os.fsencode(str(base))

    def show(self, rel: str) -> str:
        return str(self.base / rel) if rel else str(self.base)

    def open_dir(self, rel: str) -> int:
        """A descriptor of the folder ``rel`` (``""`` is the base); the caller closes it."""
        fd = os.open(self._base_bytes, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            for part in (p for p in rel.split("/") if p):
                try:
                    nxt = os.open(part, _DIR_FLAGS, dir_fd=fd)
                except NotADirectoryError:
                    st = os.stat(part, dir_fd=fd, follow_symlinks=False)
                    if stat.S_ISLNK(st.st_mode):  # say why: a link on the way, not followed
                        raise OSError(errno.ELOOP, "a symlink on the path (not followed)") from None
                    raise
                os.close(fd)
                fd = nxt
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _parent(self, rel: str) -> tuple[int, str]:
        head, _, name = rel.rpartition("/")
        return self.open_dir(head), name

    def read(self, rel: str) -> bytes:
        fd, name = self._parent(rel)
        try:
            return read_at(fd, name)
        finally:
            os.close(fd)

    def readlink(self, rel: str) -> bytes:
        fd, name = self._parent(rel)
        try:
            return os.fsencode(os.readlink(name, dir_fd=fd))
        finally:
            os.close(fd)

    def listdir(self, rel: str) -> list[str]:
        fd = self.open_dir(rel)
        try:
            return sorted(os.listdir(fd))
        finally:
            os.close(fd)


def read_at(dir_fd: int, name: str, limit: int = READ_LIMIT) -> bytes:
    """Read a regular file in a folder whole, without following a symlink or opening a FIFO.

    Raises:
        OSError: the file cannot be read; EINVAL when it is not a regular file, EFBIG when it
            is larger than ``limit``.
    """
    st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    if stat.S_ISLNK(st.st_mode):
        raise OSError(errno.ELOOP, "a symlink (not followed)")
    if not stat.S_ISREG(st.st_mode):
        raise OSError(errno.EINVAL, "not a regular file")
    fd = os.open(name, _FILE_FLAGS, dir_fd=dir_fd)
    try:
        chunks: list[bytes] = []
        size = 0
        while True:
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                return b"".join(chunks)
            size += len(chunk)
            if size > limit:
                raise OSError(errno.EFBIG, f"larger than {limit} bytes")
            chunks.append(chunk)
    finally:
        os.close(fd)


# -- 1. clock -------------------------------------------------------------------------------


class _Timeval(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long)]


class _Timex(ctypes.Structure):
    """glibc ``struct timex`` (sys/timex.h), with the trailing padding it reserves."""

    _fields_ = [
        ("modes", ctypes.c_uint), ("offset", ctypes.c_long), ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long), ("esterror", ctypes.c_long), ("status", ctypes.c_int),
        ("constant", ctypes.c_long), ("precision", ctypes.c_long),
        ("tolerance", ctypes.c_long), ("time", _Timeval), ("tick", ctypes.c_long),
        ("ppsfreq", ctypes.c_long), ("jitter", ctypes.c_long), ("shift", ctypes.c_int),
        ("stabil", ctypes.c_long), ("jitcnt", ctypes.c_long), ("calcnt", ctypes.c_long),
        ("errcnt", ctypes.c_long), ("stbcnt", ctypes.c_long), ("tai", ctypes.c_int),
        ("_padding", ctypes.c_int * 11),
    ]


_STA_FLAGS = (
    (0x0001, "STA_PLL"), (0x0002, "STA_PPSFREQ"), (0x0004, "STA_PPSTIME"), (0x0008, "STA_FLL"),
    (0x0010, "STA_INS"), (0x0020, "STA_DEL"), (0x0040, "STA_UNSYNC"), (0x0080, "STA_FREQHOLD"),
    (0x0100, "STA_PPSSIGNAL"), (0x0200, "STA_PPSJITTER"), (0x0400, "STA_PPSWANDER"),
    (0x0800, "STA_PPSERROR"), (0x1000, "STA_CLOCKERR"), (0x2000, "STA_NANO"),
    (0x4000, "STA_MODE"), (0x8000, "STA_CLK"),
)
_STA_UNSYNC = 0x0040
_STA_NANO = 0x2000
_TIME_STATES = {0: "TIME_OK", 1: "TIME_INS", 2: "TIME_DEL", 3: "TIME_OOP", 4: "TIME_WAIT",
                5: "TIME_ERROR"}


def read_adjtimex() -> dict[str, Any]:
    """The kernel clock's NTP discipline state, read with ``adjtimex(modes=0)``.

    Returns:
        An ``adjtimex`` item. ``synchronised`` is False when the kernel flags the clock
        ``STA_UNSYNC`` (no NTP daemon has disciplined it) or reports ``TIME_ERROR``.

    Raises:
        OSError: the call is not available (not Linux, no libc) or failed.
    """
    if not sys.platform.startswith("linux"):
        raise OSError(errno.ENOSYS, "adjtimex is Linux-only")
    # the running interpreter's own libc; ctypes.util.find_library would run ldconfig
    libc = ctypes.CDLL(None, use_errno=True)
    func = getattr(libc, "adjtimex", None) or getattr(libc, "ntp_adjtime", None)
    if func is None:
        raise OSError(errno.ENOSYS, "libc has no adjtimex")
    tx = _Timex()
    tx.modes = 0  # read only: no field of the kernel clock is changed
    func.argtypes = [ctypes.POINTER(_Timex)]
    func.restype = ctypes.c_int
    state = func(ctypes.byref(tx))
    if state < 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))
    nano = bool(tx.status & _STA_NANO)
    return {
        "kind": "adjtimex",
        "state": _TIME_STATES.get(state, str(state)),
        "status": tx.status,
        "status_flags": [name for bit, name in _STA_FLAGS if tx.status & bit],
        "synchronised": not (tx.status & _STA_UNSYNC) and state != 5,
        "offset_ns": tx.offset if nano else tx.offset * 1000,
        "maxerror_us": tx.maxerror,
        "esterror_us": tx.esterror,
        "freq_ppm_scaled": tx.freq,  # ppm with a 16-bit binary fraction
        "tick_us": tx.tick,
        "tai_offset_s": tx.tai,
    }


def _timezone(root: _Tree, errors: _Errors) -> dict[str, Any]:
    item: dict[str, Any] = {"kind": "timezone", "tz_environment": os.environ.get("TZ")}
    try:
        target = root.readlink("etc/localtime")
        _put_text(item, "localtime_link", target)
        text = item["localtime_link"]
        item["zone"] = text.split("zoneinfo/", 1)[1] if "zoneinfo/" in text else None
    except OSError as exc:
        item["localtime_link"] = None
        item["zone"] = None
        if exc.errno != errno.EINVAL:  # EINVAL: a copied zone file, not a link
            errors.os_error(root.show("etc/localtime"), exc)
    try:
        text_zone = root.read("etc/timezone").decode("utf-8", "backslashreplace").strip()
        item["etc_timezone"] = text_zone or None
    except OSError as exc:
        item["etc_timezone"] = None
        if exc.errno != errno.ENOENT:
            errors.os_error(root.show("etc/timezone"), exc)
    return item


_NTP_FILES = ("etc/chrony.conf", "etc/chrony/chrony.conf", "etc/ntp.conf", "etc/ntpsec/ntp.conf",
              "etc/openntpd/ntpd.conf", "etc/systemd/timesyncd.conf")
_NTP_DIRS = (("etc/chrony/sources.d", ".sources"), ("etc/chrony/conf.d", ".conf"),
             ("etc/systemd/timesyncd.conf.d", ".conf"))
_NTP_DIRECTIVES = {"server", "pool", "peer", "servers"}


def _ntp_config_paths(root: _Tree, errors: _Errors) -> list[str]:
    paths = list(_NTP_FILES)
    for folder, suffix in _NTP_DIRS:
        try:
            paths += [f"{folder}/{n}" for n in root.listdir(folder) if n.endswith(suffix)]
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                errors.os_error(root.show(folder), exc)
    return paths


def ntp_sources(root: _Tree, errors: _Errors) -> Iterator[dict[str, Any]]:
    """Servers named in chrony, ntpd, OpenNTPD and systemd-timesyncd configuration.

    Only what is configured, not what the daemon uses now (that needs asking the daemon).
    A missing file is not an error: most hosts run at most one of these.
    """
    for rel in _ntp_config_paths(root, errors):
        try:
            text = root.read(rel).decode("utf-8", "backslashreplace")
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                errors.os_error(root.show(rel), exc)
            continue
        section = ""
        for number, line in enumerate(text.splitlines(), 1):
            line = line.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("["):
                section = line
                continue
            if "timesyncd" in rel:
                key, sep, value = line.partition("=")
                if sep and section == "[Time]" and key.strip() in ("NTP", "FallbackNTP"):
                    for server in value.split():
                        yield {"kind": "ntp_source", "config": root.show(rel), "line": number,
                               "directive": key.strip(), "server": server}
                continue
            words = line.split()
            if words[0] in _NTP_DIRECTIVES and len(words) > 1:
                yield {"kind": "ntp_source", "config": root.show(rel), "line": number,
                       "directive": words[0], "server": words[1]}


def _clock_readings(clock: Any) -> list[dict[str, Any]]:
    """Realtime, monotonic and boot-time clocks, read back to back."""
    realtime = clock.time_ns()
    monotonic = clock.monotonic_ns()
    boottime = None
    if hasattr(clock, "clock_gettime_ns") and hasattr(clock, "CLOCK_BOOTTIME"):
        boottime = clock.clock_gettime_ns(clock.CLOCK_BOOTTIME)
    return [
        {"kind": "clock", "name": "realtime", "ns": str(realtime), "utc": _utc_ns_full(realtime)},
        {"kind": "clock", "name": "monotonic", "ns": str(monotonic)},
        {"kind": "clock", "name": "boottime", "ns": None if boottime is None else str(boottime)},
    ]


def capture_clock(root: _Tree, clock: Any, errors: _Errors) -> list[dict[str, Any]]:
    items = _clock_readings(clock)
    try:
        items.append(read_adjtimex())
    except OSError as exc:
        errors.os_error("adjtimex(2)", exc)
    items.append(_timezone(root, errors))
    items.extend(ntp_sources(root, errors))
    return items


# -- 2. processes ---------------------------------------------------------------------------


class _Proc:
    """The ``proc_root`` folder, opened once for the whole capture."""

    def __init__(self, base: Path) -> None:
        self.tree = _Tree(base)
        self.fd = self.tree.open_dir("")
        self.clk_tck = os.sysconf("SC_CLK_TCK")
        self.page_size = os.sysconf("SC_PAGE_SIZE")

    def close(self) -> None:
        os.close(self.fd)

    def show(self, rel: str) -> str:
        return self.tree.show(rel)

    def pids(self) -> list[int]:
        return sorted(int(n) for n in os.listdir(self.fd) if n.isdigit())

    def open_pid(self, pid: int) -> int:
        return os.open(str(pid), _DIR_FLAGS, dir_fd=self.fd)

    def self_pid(self) -> str:
        """Our own pid as this proc sees it (``readlink self``; never followed)."""
        return os.readlink("self", dir_fd=self.fd)


_VANISHED = (errno.ENOENT, errno.ESRCH)


class _Vanished(Exception):
    pass


def _user(uid: int | None, cache: dict[int, str | None]) -> str | None:
    if uid is None:
        return None
    if uid not in cache:
        try:
            cache[uid] = pwd.getpwuid(uid).pw_name
        except KeyError:
            cache[uid] = None
    return cache[uid]


def parse_stat(data: bytes) -> tuple[bytes, list[bytes]]:
    """``/proc/[pid]/stat``: (comm, fields after comm, the first being the state).

    comm may hold spaces and parentheses, so it ends at the *last* ``)``.
    """
    open_at = data.index(b"(")
    close_at = data.rindex(b")")
    return data[open_at + 1 : close_at], data[close_at + 1 :].split()


def _status_ids(data: bytes) -> dict[str, int | None]:
    found: dict[str, int | None] = {"uid": None, "euid": None, "gid": None, "egid": None}
    for line in data.splitlines():
        key, _, value = line.partition(b":")
        if key in (b"Uid", b"Gid"):
            values = value.split()
            name = key.decode().lower()
            found[name] = int(values[0])
            found["e" + name] = int(values[1])
    return found


def _link(pid_fd: int, name: str, record: dict[str, Any]) -> None:
    try:
        _put_text(record, name, os.fsencode(os.readlink(name, dir_fd=pid_fd)))
        record[name + "_error"] = None
    except OSError as exc:
        record[name] = None
        record[name + "_error"] = _errno_name(exc)


def _read_pid_file(pid_fd: int, name: str) -> bytes:
    try:
        return read_at(pid_fd, name)
    except OSError as exc:
        if exc.errno in _VANISHED:
            raise _Vanished from exc
        raise


def read_process(
    proc: _Proc, pid: int, btime: int | None, users: dict[int, str | None], errors: _Errors
) -> dict[str, Any]:
    """One process. A process gone before or while it is read is ``vanished``, not an error."""
    record: dict[str, Any] = {
        "kind": "process", "pid": pid, "vanished": False, "ppid": None, "state": None,
        "comm": None, "cmdline": None, "exe": None, "exe_error": None, "exe_deleted": None,
        "cwd": None, "cwd_error": None, "uid": None, "euid": None, "gid": None, "egid": None,
        "user": None, "euser": None, "start_time": None, "start_ticks": None,
        "threads": None, "rss_bytes": None, "session": None, "tty_nr": None,
    }
    try:
        pid_fd = proc.open_pid(pid)
    except OSError as exc:
        if exc.errno in _VANISHED:
            record["vanished"] = True
        else:
            errors.os_error(proc.show(str(pid)), exc)
        return record
    step = "stat"
    try:
        raw = _read_pid_file(pid_fd, "stat")
        try:
            comm, fields = parse_stat(raw)
            _put_text(record, "comm", comm)
            record["state"] = fields[0].decode("ascii", "replace")
            record["ppid"] = int(fields[1])
            record["session"] = int(fields[3])
            record["tty_nr"] = int(fields[4])
            record["threads"] = int(fields[17])
            ticks = int(fields[19])
            record["start_ticks"] = ticks
            record["rss_bytes"] = int(fields[21]) * proc.page_size
            if btime is not None:
                micros = btime * 1_000_000 + ticks * 1_000_000 // proc.clk_tck
                record["start_time"] = _utc_ns(micros * 1000)
        except (ValueError, IndexError):
            errors.bad_data(proc.show(f"{pid}/stat"), "unparsable stat line")
        step = "status"
        record.update(_status_ids(_read_pid_file(pid_fd, "status")))
        record["user"] = _user(record["uid"], users)
        record["euser"] = _user(record["euid"], users)
        step = "cmdline"
        args = _read_pid_file(pid_fd, "cmdline")
        parts = args[:-1].split(b"\0") if args.endswith(b"\0") else args.split(b"\0")
        parts = parts if args else []
        record["cmdline"] = [p.decode("utf-8", "backslashreplace") for p in parts]
        try:
            for p in parts:
                p.decode("utf-8")
        except UnicodeDecodeError:
            record["cmdline_b64"] = [base64.b64encode(p).decode() for p in parts]
        step = "links"
        _link(pid_fd, "exe", record)
        if record["exe"] is not None:
            record["exe_deleted"] = record["exe"].endswith(" (deleted)")
        _link(pid_fd, "cwd", record)
    except _Vanished:
        record["vanished"] = True
    except OSError as exc:
        errors.os_error(proc.show(f"{pid}/{step}"), exc)
    finally:
        os.close(pid_fd)
    return record


def _boot_time(proc: _Proc, errors: _Errors) -> int | None:
    try:
        data = read_at(proc.fd, "stat")
    except OSError as exc:
        errors.os_error(proc.show("stat"), exc)
        return None
    for line in data.splitlines():
        if line.startswith(b"btime "):
            return int(line.split()[1])
    errors.bad_data(proc.show("stat"), "no btime line")
    return None


def capture_processes(proc: _Proc, errors: _Errors) -> list[dict[str, Any]]:
    btime = _boot_time(proc, errors)
    users: dict[int, str | None] = {}
    return [read_process(proc, pid, btime, users, errors) for pid in proc.pids()]


# -- 3. network -----------------------------------------------------------------------------

TCP_STATES = {
    0x01: "ESTABLISHED", 0x02: "SYN_SENT", 0x03: "SYN_RECV", 0x04: "FIN_WAIT1",
    0x05: "FIN_WAIT2", 0x06: "TIME_WAIT", 0x07: "CLOSE", 0x08: "CLOSE_WAIT", 0x09: "LAST_ACK",
    0x0A: "LISTEN", 0x0B: "CLOSING", 0x0C: "NEW_SYN_RECV",
}
UNIX_STATES = {0x00: "FREE", 0x01: "UNCONNECTED", 0x02: "CONNECTING", 0x03: "CONNECTED",
               0x04: "DISCONNECTING"}
UNIX_TYPES = {1: "STREAM", 2: "DGRAM", 3: "RAW", 4: "RDM", 5: "SEQPACKET"}
_SO_ACCEPTCON = 0x10000


def decode_address(text: str) -> tuple[str, int]:
    """``0100007F:0016`` -> (``127.0.0.1``, 22); IPv6 when the address has 32 hex digits.

    The kernel prints the address as 32-bit words in host byte order (``%08X`` of each word
    of the network-order address), so on a little-endian host each 4-byte group is reversed;
    the port is a plain number.
    """
    addr_hex, port_hex = text.split(":")
    words = [int(addr_hex[i : i + 8], 16) for i in range(0, len(addr_hex), 8)]
    packed = struct.pack(f"={len(words)}I", *words)
    if len(packed) == 4:
        address = str(ipaddress.IPv4Address(packed))
    elif len(packed) == 16:
        ip6 = ipaddress.IPv6Address(packed)
        # one spelling on every Python version (3.13 changed how str() shows these)
        address = f"::ffff:{ip6.ipv4_mapped}" if ip6.ipv4_mapped else str(ip6)
    else:
        raise ValueError(f"address of {len(packed)} bytes")
    return address, int(port_hex, 16)


def parse_inet_table(protocol: str, data: bytes, path: str, errors: _Errors) -> list[dict]:
    rows = []
    for number, line in enumerate(data.decode("ascii", "replace").splitlines()[1:], 2):
        fields = line.split()
        try:
            local, local_port = decode_address(fields[1])
            remote, remote_port = decode_address(fields[2])
            state = int(fields[3], 16)
            tx_queue, rx_queue = (int(v, 16) for v in fields[4].split(":"))
            rows.append({
                "kind": "socket", "protocol": protocol,
                "local_address": local, "local_port": local_port,
                "remote_address": remote, "remote_port": remote_port,
                "state": TCP_STATES.get(state, f"0x{state:02X}"),
                "tx_queue": tx_queue, "rx_queue": rx_queue,
                "uid": int(fields[7]), "inode": int(fields[9]),
            })
        except (ValueError, IndexError):
            errors.bad_data(path, f"line {number}: unparsable socket line")
    return rows


def parse_unix_table(data: bytes, path: str, errors: _Errors) -> list[dict]:
    rows = []
    for number, line in enumerate(data.splitlines()[1:], 2):
        fields = line.split(None, 7)
        try:
            flags = int(fields[3], 16)
            kind = int(fields[4], 16)
            state = int(fields[5], 16)
            row: dict[str, Any] = {
                "kind": "socket", "protocol": "unix", "refcount": int(fields[1], 16),
                "flags": flags, "listening": bool(flags & _SO_ACCEPTCON),
                "type": UNIX_TYPES.get(kind, str(kind)),
                "state": UNIX_STATES.get(state, f"0x{state:02X}"), "inode": int(fields[6]),
            }
        except (ValueError, IndexError):
            errors.bad_data(path, f"line {number}: unparsable socket line")
            continue
        _put_text(row, "path", fields[7] if len(fields) > 7 else None)
        rows.append(row)
    return rows


def socket_owners(proc: _Proc, errors: _Errors) -> dict[int, list[tuple[int, int]]]:
    """Socket inode -> [(pid, fd)], from the ``socket:[inode]`` targets of ``/proc/[pid]/fd``."""
    owners: dict[int, list[tuple[int, int]]] = {}
    for pid in proc.pids():
        try:
            pid_fd = proc.open_pid(pid)
        except OSError as exc:
            if exc.errno not in _VANISHED:
                errors.os_error(proc.show(str(pid)), exc)
            continue
        try:
            fd_dir = os.open("fd", _DIR_FLAGS, dir_fd=pid_fd)
        except OSError as exc:
            if exc.errno not in _VANISHED:
                errors.os_error(proc.show(f"{pid}/fd"), exc)
            continue
        finally:
            os.close(pid_fd)
        try:
            names = os.listdir(fd_dir)
            for name in names:
                try:
                    target = os.readlink(name, dir_fd=fd_dir)
                except OSError:
                    continue  # closed between listing and reading
                if target.startswith("socket:[") and target.endswith("]"):
                    inode = int(target[8:-1])
                    owners.setdefault(inode, []).append((pid, int(name)))
        except OSError as exc:
            if exc.errno not in _VANISHED:
                errors.os_error(proc.show(f"{pid}/fd"), exc)
        finally:
            os.close(fd_dir)
    return owners


def capture_network(proc: _Proc, errors: _Errors) -> list[dict[str, Any]]:
    """Sockets of the collector's network namespace (``/proc/<own pid>/net``)."""
    try:
        own = proc.self_pid()
    except OSError as exc:
        errors.os_error(proc.show("self"), exc)
        return []
    rows: list[dict[str, Any]] = []
    for protocol in ("tcp", "tcp6", "udp", "udp6", "unix"):
        rel = f"{own}/net/{protocol}"
        try:
            data = proc.tree.read(rel)
        except OSError as exc:
            errors.os_error(proc.show(rel), exc)
            continue
        if protocol == "unix":
            rows += parse_unix_table(data, proc.show(rel), errors)
        else:
            rows += parse_inet_table(protocol, data, proc.show(rel), errors)
    owners = socket_owners(proc, errors)
    for row in rows:
        found = sorted(owners.get(row["inode"], [])) if row["inode"] else []
        row["pids"] = sorted({pid for pid, _ in found})
        row["owners"] = [{"pid": pid, "fd": fd} for pid, fd in found]
    return rows


# -- 4. logged-in users ---------------------------------------------------------------------

#: glibc ``struct utmp`` on 64-bit Linux: type, pid, line, id, user, host, exit, session,
#: tv_sec, tv_usec, addr_v6, reserved. 384 bytes, host byte order.
UTMP_RECORD = struct.Struct("=hxxi32s4s32s256shhiii16s20x")
USER_PROCESS = 7
UTMP_PATHS = ("run/utmp", "var/run/utmp")


def _cstring(raw: bytes) -> bytes:
    return raw.split(b"\0", 1)[0]


def parse_utmp(data: bytes, path: str, errors: _Errors) -> list[dict[str, Any]]:
    """``USER_PROCESS`` records (the sessions open now) of a utmp file."""
    size = UTMP_RECORD.size
    if len(data) % size:
        errors.bad_data(path, f"{len(data) % size} trailing bytes after the last whole record")
    rows = []
    for offset in range(0, len(data) - size + 1, size):
        (kind, pid, line, ut_id, user, host, _term, _exit, session, sec, usec,
         addr) = UTMP_RECORD.unpack_from(data, offset)
        if kind != USER_PROCESS:
            continue
        row: dict[str, Any] = {"kind": "session", "record": offset // size, "pid": pid,
                               "session": session,
                               "login_time": _utc_ns((sec * 1_000_000 + usec) * 1000)}
        _put_text(row, "user", _cstring(user))
        _put_text(row, "line", _cstring(line))
        _put_text(row, "id", _cstring(ut_id))
        _put_text(row, "host", _cstring(host))
        if addr[4:] == bytes(12):
            row["address"] = str(ipaddress.IPv4Address(addr[:4])) if any(addr[:4]) else None
        else:
            row["address"] = str(ipaddress.IPv6Address(addr))
        rows.append(row)
    return rows


def capture_logged_in(root: _Tree, errors: _Errors) -> tuple[list[dict[str, Any]], str]:
    missing: list[tuple[str, OSError]] = []
    for rel in UTMP_PATHS:
        try:
            data = root.read(rel)
        except OSError as exc:
            missing.append((rel, exc))
            continue
        return parse_utmp(data, root.show(rel), errors), root.show(rel)
    for rel, exc in missing:
        errors.os_error(root.show(rel), exc)
    return [], root.show(UTMP_PATHS[0])


# -- 5. mounts ------------------------------------------------------------------------------


def _unescape(field: bytes) -> bytes:
    """Undo mountinfo's octal escapes (``\\040`` is a space)."""
    out = bytearray()
    i = 0
    while i < len(field):
        if field[i : i + 1] == b"\\" and field[i + 1 : i + 4].isdigit() and i + 4 <= len(field):
            out.append(int(field[i + 1 : i + 4], 8) & 0xFF)
            i += 4
        else:
            out.append(field[i])
            i += 1
    return bytes(out)


def parse_mountinfo(data: bytes, path: str, errors: _Errors) -> list[dict[str, Any]]:
    rows = []
    for number, line in enumerate(data.splitlines(), 1):
        fields = line.split()
        try:
            dash = fields.index(b"-")
            row: dict[str, Any] = {
                "kind": "mount", "mount_id": int(fields[0]), "parent_id": int(fields[1]),
                "device": fields[2].decode("ascii", "replace"),
                "options": fields[5].decode("utf-8", "backslashreplace").split(","),
                "optional": [f.decode("utf-8", "backslashreplace") for f in fields[6:dash]],
                "fs_type": fields[dash + 1].decode("utf-8", "backslashreplace"),
                "super_options":
                    fields[dash + 3].decode("utf-8", "backslashreplace").split(",")
                    if len(fields) > dash + 3 else [],
            }
            _put_text(row, "root", _unescape(fields[3]))
            _put_text(row, "mount_point", _unescape(fields[4]))
            _put_text(row, "source", _unescape(fields[dash + 2]))
        except (ValueError, IndexError):
            errors.bad_data(path, f"line {number}: unparsable mountinfo line")
            continue
        rows.append(row)
    return rows


def capture_mounts(proc: _Proc, errors: _Errors) -> list[dict[str, Any]]:
    try:
        rel = f"{proc.self_pid()}/mountinfo"
        return parse_mountinfo(proc.tree.read(rel), proc.show(rel), errors)
    except OSError as exc:
        errors.os_error(proc.show("self/mountinfo"), exc)
        return []


# -- 6. modules -----------------------------------------------------------------------------

#: Bits of /proc/sys/kernel/tainted and their letters (Documentation/admin-guide/tainted-kernels).
TAINT_FLAGS = (
    (0, "P", "proprietary module"), (1, "F", "module force-loaded"),
    (2, "S", "out-of-specification system"), (3, "R", "module force-unloaded"),
    (4, "M", "machine check"), (5, "B", "bad page"), (6, "U", "tainted by user"),
    (7, "D", "kernel died (oops)"), (8, "A", "ACPI table overridden"),
    (9, "W", "kernel warning"), (10, "C", "staging driver"), (11, "I", "firmware workaround"),
    (12, "O", "out-of-tree module"), (13, "E", "unsigned module"), (14, "L", "soft lockup"),
    (15, "K", "live patched"), (16, "X", "auxiliary taint"), (17, "T", "randstruct build"),
    (18, "N", "test taint"),
)


def parse_modules(data: bytes, path: str, errors: _Errors) -> list[dict[str, Any]]:
    rows = []
    for number, line in enumerate(data.decode("utf-8", "backslashreplace").splitlines(), 1):
        fields = line.split()
        try:
            rows.append({
                "kind": "module", "name": fields[0], "size": int(fields[1]),
                "refcount": int(fields[2]) if fields[2] != "-" else None,
                "dependencies": [d for d in fields[3].split(",") if d and d != "-"],
                "state": fields[4], "address": fields[5],
                "taint": fields[6].strip("()") if len(fields) > 6 else "",
            })
        except (ValueError, IndexError):
            errors.bad_data(path, f"line {number}: unparsable module line")
    return rows


def capture_modules(proc: _Proc, errors: _Errors) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    try:
        items += parse_modules(proc.tree.read("modules"), proc.show("modules"), errors)
    except OSError as exc:
        errors.os_error(proc.show("modules"), exc)
    try:
        value = int(proc.tree.read("sys/kernel/tainted").strip())
        items.append({
            "kind": "kernel_taint", "value": value,
            "flags": [letter for bit, letter, _ in TAINT_FLAGS if value >> bit & 1],
            "meanings": [meaning for bit, _, meaning in TAINT_FLAGS if value >> bit & 1],
        })
    except OSError as exc:
        errors.os_error(proc.show("sys/kernel/tainted"), exc)
    except ValueError:
        errors.bad_data(proc.show("sys/kernel/tainted"), "not a number")
    return items


# -- 7. system ------------------------------------------------------------------------------


def parse_os_release(data: bytes) -> dict[str, str]:
    """``KEY=value`` lines of os-release(5); shell quotes removed."""
    fields = {}
    for line in data.decode("utf-8", "backslashreplace").splitlines():
        key, sep, value = line.strip().partition("=")
        if not sep or key.startswith("#"):
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        fields[key] = value
    return fields


def _os_release(root: _Tree, item: dict[str, Any], errors: _Errors) -> None:
    """os-release(5): ``/etc/os-release``, else ``/usr/lib/os-release`` (where the usual
    symlink at ``/etc/os-release`` points; the link itself is never followed)."""
    item["os_release"] = None
    item["os_release_path"] = None
    for rel in ("etc/os-release", "usr/lib/os-release"):
        try:
            item["os_release"] = parse_os_release(root.read(rel))
            item["os_release_path"] = root.show(rel)
            return
        except OSError as exc:
            if exc.errno == errno.ELOOP:  # the usual symlink: note it, read the fallback
                try:
                    _put_text(item, "os_release_link", root.readlink(rel))
                except OSError:
                    pass
                continue
            if exc.errno != errno.ENOENT or rel.startswith("usr"):
                errors.os_error(root.show(rel), exc)


def capture_system(proc: _Proc, root: _Tree, errors: _Errors) -> list[dict[str, Any]]:
    item: dict[str, Any] = {"kind": "system"}
    uname = os.uname()
    item["kernel"] = {"sysname": uname.sysname, "nodename": uname.nodename,
                      "release": uname.release, "version": uname.version,
                      "machine": uname.machine}
    readers: list[tuple[str, Callable[[bytes], Any]]] = [
        ("uptime", lambda d: dict(zip(("uptime_seconds", "idle_seconds"),
                                      d.decode().split(), strict=False))),
        ("loadavg", lambda d: dict(zip(("load1", "load5", "load15", "runnable", "last_pid"),
                                       d.decode().split(), strict=False))),
        ("sys/kernel/hostname", lambda d: d.decode("utf-8", "backslashreplace").strip()),
        ("sys/kernel/random/boot_id", lambda d: d.decode("ascii", "replace").strip()),
    ]
    for rel, parse in readers:
        key = rel.rsplit("/", 1)[-1]
        try:
            item[key] = parse(proc.tree.read(rel))
        except OSError as exc:
            item[key] = None
            errors.os_error(proc.show(rel), exc)
    btime = _boot_time(proc, errors)
    item["boot_time"] = None if btime is None else _utc_ns(btime * 1_000_000_000)
    _os_release(root, item, errors)
    return [item]


# -- the whole capture ----------------------------------------------------------------------


def _capture(name: str, description: str, clock: Any,
             read: Callable[[_Errors], list[dict[str, Any]]]) -> Capture:
    at = _utc_ns(clock.time_ns())
    errors = _Errors()
    try:
        items = read(errors)
    except OSError as exc:  # a whole source unreadable: still a capture, with the reason
        errors.os_error(description, exc)
        items = []
    document = {"captured_at": at, "source": description, "items": items,
                "errors": errors.items}
    return Capture(name, _encode(document), at, description)


def capture_volatile(
    proc_root: Path = Path("/proc"), *, root: Path = Path("/"), clock: Any = time
) -> list[Capture]:
    """Capture the live host's volatile state, most volatile first.

    Args:
        proc_root: the proc filesystem to read (a fake tree in tests).
        root: the host root for files outside proc (``run/utmp``, ``etc/localtime``,
            ``etc/os-release``, NTP configuration).
        clock: provides ``time_ns``, ``monotonic_ns`` and optionally ``clock_gettime_ns`` with
            ``CLOCK_BOOTTIME`` (the `time` module).

    Returns:
        One `Capture` per name of `CAPTURE_ORDER`, in that order.

    Raises:
        OSError: ``proc_root`` itself cannot be opened (nothing can be captured).
    """
    proc = _Proc(proc_root)
    host = _Tree(root)
    p = str(proc_root)
    try:
        return [
            _capture("clock", f"clock_gettime(2), adjtimex(2), {root / 'etc/localtime'}, "
                     "NTP configuration", clock, lambda e: capture_clock(host, clock, e)),
            _capture("processes", f"{p}/[pid]/{{stat,status,cmdline,exe,cwd}}", clock,
                     lambda e: capture_processes(proc, e)),
            _capture("network", f"{p}/[self]/net/{{tcp,tcp6,udp,udp6,unix}}, {p}/[pid]/fd",
                     clock, lambda e: capture_network(proc, e)),
            _capture("logged_in", f"{root / 'run/utmp'} (USER_PROCESS records)", clock,
                     lambda e: capture_logged_in(host, e)[0]),
            _capture("mounts", f"{p}/[self]/mountinfo", clock,
                     lambda e: capture_mounts(proc, e)),
            _capture("modules", f"{p}/modules, {p}/sys/kernel/tainted", clock,
                     lambda e: capture_modules(proc, e)),
            _capture("system", f"{p}/{{uptime,loadavg,stat,sys/kernel/hostname}}, uname(2), "
                     f"{root / 'etc/os-release'}", clock,
                     lambda e: capture_system(proc, host, e)),
        ]
    finally:
        proc.close()
