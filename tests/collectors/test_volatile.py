"""Tests for sealtrail/collectors/volatile.py: the real /proc of this machine, then a fake
proc tree whose decoded values are known exactly."""

from __future__ import annotations

import base64
import dataclasses
import errno
import json
import os
import pwd
import socket
import struct
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from sealtrail.collectors.volatile import (
    CAPTURE_ORDER,
    UTMP_RECORD,
    Capture,
    capture_volatile,
    decode_address,
)

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
little_endian = pytest.mark.skipif(
    sys.byteorder != "little", reason="fake /proc/net lines are written as a little-endian host"
)


def decoded(captures: list[Capture]) -> dict[str, dict[str, Any]]:
    return {c.name: json.loads(c.data) for c in captures}


def kinds(document: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [item for item in document["items"] if item["kind"] == kind]


# -- the real host ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def listening() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    yield sock
    sock.close()


@pytest.fixture(scope="module")
def live(listening: socket.socket) -> tuple[list[Capture], float]:
    started = time.perf_counter()
    captures = capture_volatile()
    return captures, time.perf_counter() - started


@linux_only
def test_live_capture_is_fast_and_in_order_of_volatility(live):
    captures, seconds = live
    print(f"\nvolatile capture of this host: {seconds * 1000:.0f} ms, "
          f"{sum(len(c.data) for c in captures):,} bytes")
    assert seconds < 3.0
    assert [c.name for c in captures] == list(CAPTURE_ORDER)
    stamps = [c.captured_at for c in captures]
    assert stamps == sorted(stamps)
    for capture in captures:
        document = json.loads(capture.data.decode("utf-8"))
        assert set(document) == {"captured_at", "source", "items", "errors"}
        assert document["captured_at"] == capture.captured_at
        assert document["source"] == capture.description
        assert capture.data == json.dumps(document, sort_keys=True).encode()
        time.strptime(capture.captured_at, "%Y-%m-%dT%H:%M:%S.%fZ")


@linux_only
def test_live_capture_converts_to_a_custody_volatile_capture(live):
    from sealtrail.acquisition.collection import VolatileCapture
    from sealtrail.custody.bundle_format import volatile_member_name

    for capture in live[0]:
        converted = VolatileCapture(**dataclasses.asdict(capture))
        assert converted.data == capture.data
        assert volatile_member_name(f"{capture.name}.json") == f"volatile/{capture.name}.json"


@linux_only
def test_live_clock_reads_utc_time_close_to_now(live):
    clock = decoded(live[0])["clock"]
    readings = {i["name"]: i for i in kinds(clock, "clock")}
    assert abs(int(readings["realtime"]["ns"]) - time.time_ns()) < 10 * 10**9
    assert readings["realtime"]["utc"].endswith("Z")
    assert int(readings["boottime"]["ns"]) >= int(readings["monotonic"]["ns"]) > 0
    adjtimex = kinds(clock, "adjtimex")
    if adjtimex:
        assert adjtimex[0]["synchronised"] == ("STA_UNSYNC" not in adjtimex[0]["status_flags"]
                                              and adjtimex[0]["state"] != "TIME_ERROR")
    else:
        assert any(e["path"] == "adjtimex(2)" for e in clock["errors"])
    assert len(kinds(clock, "timezone")) == 1


@linux_only
def test_live_processes_include_this_test_and_its_parent(live):
    processes = {p["pid"]: p for p in decoded(live[0])["processes"]["items"]}
    me = processes[os.getpid()]
    raw = Path(f"/proc/{os.getpid()}/cmdline").read_bytes()
    assert me["cmdline"] == [a.decode() for a in raw.split(b"\0")[:-1]]
    assert any("pytest" in arg for arg in me["cmdline"])
    assert me["ppid"] == os.getppid()
    assert me["uid"] == os.getuid() and me["euid"] == os.geteuid()
    assert me["user"] == pwd.getpwuid(os.getuid()).pw_name
    assert me["exe"] == os.readlink("/proc/self/exe")
    assert me["exe_deleted"] is False
    assert me["cwd"] == os.getcwd()
    assert me["vanished"] is False
    assert me["start_time"] <= live[0][1].captured_at
    assert me["threads"] >= 1 and me["rss_bytes"] > 0
    assert os.getppid() in processes


@linux_only
def test_live_network_joins_a_listening_socket_to_this_process(live, listening):
    port = listening.getsockname()[1]
    sockets = decoded(live[0])["network"]["items"]
    mine = [s for s in sockets if s["protocol"] == "tcp" and s["local_port"] == port
            and s["local_address"] == "127.0.0.1"]
    assert len(mine) == 1
    assert mine[0]["state"] == "LISTEN"
    assert mine[0]["inode"] == os.fstat(listening.fileno()).st_ino
    assert mine[0]["pids"] == [os.getpid()]
    assert {"pid": os.getpid(), "fd": listening.fileno()} in mine[0]["owners"]


@linux_only
def test_live_mounts_include_the_root(live):
    mounts = decoded(live[0])["mounts"]["items"]
    assert "/" in {m["mount_point"] for m in mounts}
    assert "proc" in {m["fs_type"] for m in mounts}


@linux_only
def test_live_system_names_this_kernel(live):
    system = decoded(live[0])["system"]["items"][0]
    assert system["kernel"]["release"] == os.uname().release
    assert system["boot_time"] < live[0][-1].captured_at


# -- a fake proc tree -------------------------------------------------------------------------

BTIME = 1_700_000_000


def write(path: Path, data: bytes | str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)


def link(path: Path, target: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(target, path)


def stat_line(pid: int, comm: str, *, ppid: int, start: int, threads: int, rss: int) -> str:
    # fields after comm: state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt
    # cmajflt utime stime cutime cstime priority nice num_threads itrealvalue starttime vsize rss
    return (f"{pid} ({comm}) S {ppid} {pid} {pid} 34816 -1 4194304 0 0 0 0 0 0 0 0 20 0 "
            f"{threads} 0 {start} 123456 {rss} 18446744073709551615 0 0 0\n")


def status(uid: int, euid: int, gid: int, egid: int) -> str:
    return (f"Name:\tx\nUid:\t{uid}\t{euid}\t{euid}\t{euid}\n"
            f"Gid:\t{gid}\t{egid}\t{egid}\t{egid}\nThreads:\t1\n")


TCP_HEADER = ("  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt"
              "   uid  timeout inode\n")
TCP6_LISTEN = ("   0: 00000000000000000000000001000000:1F90 "
               "00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 "
               "00000000  1000        0 5555 1 0000000000000000 100 0 0 10 0\n")
TCP6_ESTABLISHED = ("   1: B80D0120000000000000000001000000:01BB "
                    "0000000000000000FFFF00000500000A:D431 01 00000010:00000020 00:00000000 "
                    "00000000     0        0 7777 1 0000000000000000 20 4 30 10 -1\n")
TCP4_TIME_WAIT = ("   0: 0100007F:0016 0A000001:C350 06 00000000:00000000 03:00000F5A "
                  "00000000     0        0 0 3 0000000000000000\n")
UNIX = ("Num       RefCount Protocol Flags    Type St Inode Path\n"
        "0000000000000000: 00000002 00000000 00010000 0001 01 8888 /run/my sock\n"
        "0000000000000000: 00000003 00000000 00000000 0001 03 9999\n")
MOUNTINFO = (
    "1 0 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw,errors=remount-ro\n"
    "36 1 98:0 /mnt1 /mnt/my\\040disk rw,noatime master:1 - ext3 /dev/root rw\n"
)


def utmp_record(kind: int, pid: int, line: bytes, user: bytes, host: bytes, sec: int,
                usec: int, addr: bytes) -> bytes:
    return UTMP_RECORD.pack(kind, pid, line, line[-4:], user, host, 0, 0, pid, sec, usec, addr)


@pytest.fixture
def fake_host(tmp_path: Path) -> tuple[Path, Path]:
    proc = tmp_path / "proc"
    root = tmp_path / "root"
    link(proc / "self", "4242")
    write(proc / "stat", f"cpu  1 2 3 4\nbtime {BTIME}\nprocesses 999\n")
    write(proc / "uptime", "12345.67 54321.00\n")
    write(proc / "loadavg", "0.52 0.58 0.59 3/412 4243\n")
    write(proc / "sys/kernel/hostname", "web01\n")
    write(proc / "sys/kernel/tainted", "12289\n")  # bits 0, 12, 13: P, O, E
    write(proc / "modules", "rootkit 16384 0 - Live 0xffffffffc0a00000 (OE)\n"
                            "nf_nat 49152 2 nft_chain_nat,xt_MASQUERADE, Live 0x0000000000000000\n")

    me = proc / "4242"
    write(me / "stat", stat_line(4242, "sealtrail", ppid=1, start=250, threads=3, rss=100))
    write(me / "status", status(0, 0, 0, 0))
    write(me / "cmdline", b"/usr/bin/python3\0-m\0sealtrail\0")
    link(me / "exe", "/usr/bin/python3.11")
    link(me / "cwd", "/root")
    link(me / "fd/0", "/dev/null")
    link(me / "fd/3", "socket:[5555]")
    write(me / "net/tcp", TCP_HEADER + TCP4_TIME_WAIT)
    write(me / "net/tcp6", TCP_HEADER + TCP6_LISTEN + TCP6_ESTABLISHED)
    write(me / "net/udp", TCP_HEADER)
    write(me / "net/udp6", TCP_HEADER)
    write(me / "net/unix", UNIX)
    write(me / "mountinfo", MOUNTINFO)

    miner = proc / "100"  # comm with a space and a parenthesis; a deleted, odd executable
    write(miner / "stat", stat_line(100, "kw (x) 0", ppid=4242, start=12345, threads=9,
                                    rss=2048))
    write(miner / "status", status(1000, 0, 1000, 1000))
    write(miner / "cmdline", b"./miner\0--pool\0\xff\xfeevil\0")
    link(miner / "exe", "/tmp/.x/miner (deleted)")
    link(miner / "cwd", "/tmp/.x")
    link(miner / "fd/7", "socket:[7777]")
    link(miner / "fd/8", "socket:[7777]")
    link(miner / "fd/9", "pipe:[1234]")

    locked = proc / "200"  # exe unreadable (EACCES, simulated in the test)
    write(locked / "stat", stat_line(200, "sshd", ppid=1, start=100, threads=1, rss=10))
    write(locked / "status", status(0, 0, 0, 0))
    write(locked / "cmdline", b"sshd: /usr/sbin/sshd -D [listener]")  # rewritten, no NUL
    link(locked / "exe", "/usr/sbin/sshd")
    link(locked / "cwd", "/")

    (proc / "300").mkdir()  # listed, then gone before its stat could be read

    link(root / "etc/localtime", "/usr/share/zoneinfo/Europe/Amsterdam")
    link(root / "etc/os-release", "../usr/lib/os-release")
    write(root / "usr/lib/os-release", 'NAME="Debian GNU/Linux"\nID=debian\n# c\nVERSION_ID="12"\n')
    write(root / "etc/chrony/chrony.conf",
          "# servers\npool 2.debian.pool.ntp.org iburst\nserver 10.0.0.1\nmakestep 1 3\n")
    write(root / "etc/systemd/timesyncd.conf", "[Time]\nNTP=ntp1.example ntp2.example\n"
                                               "#FallbackNTP=x\n")
    addr = bytes([203, 0, 113, 9]) + bytes(12)
    write(root / "run/utmp",
          utmp_record(2, 0, b"~", b"reboot", b"6.1.0", BTIME, 0, bytes(16))
          + utmp_record(7, 4242, b"pts/0", b"alice", b"203.0.113.9", BTIME + 100, 250_000, addr)
          + utmp_record(8, 0, b"pts/1", b"", b"", BTIME + 50, 0, bytes(16)))
    return proc, root


class FakeClock:
    """Each reading one millisecond after the last."""

    def __init__(self) -> None:
        self.now = (BTIME + 1000) * 10**9

    def time_ns(self) -> int:
        self.now += 10**6
        return self.now

    def monotonic_ns(self) -> int:
        return 5 * 10**9


@pytest.fixture
def fake(fake_host, monkeypatch) -> dict[str, dict[str, Any]]:
    proc, root = fake_host
    real_readlink = os.readlink

    def readlink(path, *, dir_fd=None):
        if path == "exe" and dir_fd is not None and real_readlink(
            f"/proc/self/fd/{dir_fd}"
        ).endswith("/proc/200"):
            raise PermissionError(errno.EACCES, "Permission denied")
        return real_readlink(path, dir_fd=dir_fd)

    monkeypatch.setattr(os, "readlink", readlink)
    return decoded(capture_volatile(proc, root=root, clock=FakeClock()))


def test_fake_captures_are_stamped_each_with_its_own_time(fake_host):
    proc, root = fake_host
    captures = capture_volatile(proc, root=root, clock=FakeClock())
    # the clock capture reads the clock a second time (its realtime reading): ms 2
    assert [c.captured_at for c in captures] == [
        f"2023-11-14T22:30:00.{ms:03d}000Z" for ms in (1, 3, 4, 5, 6, 7, 8)
    ]


def test_fake_clock_reads_the_clock_zone_and_ntp_servers(fake):
    clock = fake["clock"]
    readings = {i["name"]: i for i in kinds(clock, "clock")}
    assert readings["realtime"] == {"kind": "clock", "name": "realtime",
                                    "ns": "1700001000002000000",
                                    "utc": "2023-11-14T22:30:00.002000000Z"}
    assert readings["monotonic"]["ns"] == "5000000000"
    assert readings["boottime"]["ns"] is None  # the fake clock has no CLOCK_BOOTTIME
    assert kinds(clock, "timezone")[0]["zone"] == "Europe/Amsterdam"
    assert kinds(clock, "timezone")[0]["localtime_link"] == "/usr/share/zoneinfo/Europe/Amsterdam"
    servers = [(i["directive"], i["server"]) for i in kinds(clock, "ntp_source")]
    assert servers == [("pool", "2.debian.pool.ntp.org"), ("server", "10.0.0.1"),
                       ("NTP", "ntp1.example"), ("NTP", "ntp2.example")]


def test_fake_processes_decode_exactly(fake):
    processes = {p["pid"]: p for p in fake["processes"]["items"]}
    assert sorted(processes) == [100, 200, 300, 4242]
    miner = processes[100]
    assert miner == {
        "kind": "process", "pid": 100, "ppid": 4242, "state": "S", "vanished": False,
        "comm": "kw (x) 0", "cmdline": ["./miner", "--pool", "\\xff\\xfeevil"],
        "cmdline_b64": [base64.b64encode(b).decode() for b in (b"./miner", b"--pool",
                                                                b"\xff\xfeevil")],
        "exe": "/tmp/.x/miner (deleted)", "exe_error": None, "exe_deleted": True,
        "cwd": "/tmp/.x", "cwd_error": None,
        "uid": 1000, "euid": 0, "gid": 1000, "egid": 1000,
        "user": _name(1000), "euser": _name(0),
        "start_ticks": 12345,
        "start_time": "2023-11-14T22:15:23.450000Z" if os.sysconf("SC_CLK_TCK") == 100
        else miner["start_time"],
        "threads": 9, "rss_bytes": 2048 * os.sysconf("SC_PAGE_SIZE"),
        "session": 100, "tty_nr": 34816,
    }


def _name(uid: int) -> str | None:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return None


def test_fake_unreadable_exe_is_recorded_with_its_errno(fake):
    sshd = next(p for p in fake["processes"]["items"] if p["pid"] == 200)
    assert (sshd["exe"], sshd["exe_error"], sshd["exe_deleted"]) == (None, "EACCES", None)
    assert sshd["cwd"] == "/"
    assert sshd["cmdline"] == ["sshd: /usr/sbin/sshd -D [listener]"]
    assert "cmdline_b64" not in sshd


def test_fake_vanished_process_is_not_an_error(fake):
    gone = next(p for p in fake["processes"]["items"] if p["pid"] == 300)
    assert gone["vanished"] is True
    assert gone["ppid"] is None
    assert fake["processes"]["errors"] == []


@little_endian
def test_fake_sockets_decode_ipv4_ipv6_and_unix_exactly(fake):
    sockets = fake["network"]["items"]
    by_inode = {(s["protocol"], s["inode"]): s for s in sockets}
    listen6 = by_inode[("tcp6", 5555)]
    assert {k: listen6[k] for k in ("local_address", "local_port", "remote_address",
                                    "remote_port", "state", "uid", "pids", "owners")} == {
        "local_address": "::1", "local_port": 8080, "remote_address": "::", "remote_port": 0,
        "state": "LISTEN", "uid": 1000, "pids": [4242], "owners": [{"pid": 4242, "fd": 3}],
    }
    est6 = by_inode[("tcp6", 7777)]
    assert (est6["local_address"], est6["local_port"]) == ("2001:db8::1", 443)
    assert (est6["remote_address"], est6["remote_port"]) == ("::ffff:10.0.0.5", 54321)
    assert (est6["state"], est6["tx_queue"], est6["rx_queue"]) == ("ESTABLISHED", 16, 32)
    assert est6["owners"] == [{"pid": 100, "fd": 7}, {"pid": 100, "fd": 8}]
    assert est6["pids"] == [100]
    wait4 = by_inode[("tcp", 0)]
    assert (wait4["local_address"], wait4["local_port"], wait4["remote_address"],
            wait4["remote_port"], wait4["state"], wait4["pids"]) == (
        "127.0.0.1", 22, "1.0.0.10", 50000, "TIME_WAIT", [])
    listening_unix = by_inode[("unix", 8888)]
    assert (listening_unix["path"], listening_unix["listening"], listening_unix["type"],
            listening_unix["state"]) == ("/run/my sock", True, "STREAM", "UNCONNECTED")
    assert by_inode[("unix", 9999)]["path"] is None
    assert fake["network"]["errors"] == []


def test_decode_address_matches_the_kernel_byte_order():
    word = struct.pack("=I", int.from_bytes(bytes([192, 168, 1, 20]), sys.byteorder))
    assert decode_address(f"{int.from_bytes(word, sys.byteorder):08X}:0050") == (
        "192.168.1.20", 80)
    with pytest.raises(ValueError, match="address of 8 bytes"):
        decode_address("0000000000000000:0000")


def test_fake_utmp_lists_only_open_sessions(fake):
    logged_in = fake["logged_in"]
    assert logged_in["items"] == [{
        "kind": "session", "record": 1, "user": "alice", "line": "pts/0", "id": "ts/0",
        "host": "203.0.113.9", "address": "203.0.113.9", "pid": 4242, "session": 4242,
        "login_time": "2023-11-14T22:15:00.250000Z",
    }]
    assert logged_in["errors"] == []


def test_fake_truncated_utmp_is_reported(fake_host):
    proc, root = fake_host
    with open(root / "run/utmp", "ab") as f:
        f.write(b"\0" * 10)
    logged_in = decoded(capture_volatile(proc, root=root, clock=FakeClock()))["logged_in"]
    assert len(logged_in["items"]) == 1
    assert logged_in["errors"] == [{"path": str(root / "run/utmp"), "errno": None,
                                    "detail": "10 trailing bytes after the last whole record"}]


def test_fake_missing_utmp_is_an_error_not_a_failure(fake_host):
    proc, root = fake_host
    (root / "run/utmp").unlink()
    logged_in = decoded(capture_volatile(proc, root=root, clock=FakeClock()))["logged_in"]
    assert logged_in["items"] == []
    assert [(e["path"], e["errno"]) for e in logged_in["errors"]] == [
        (str(root / "run/utmp"), "ENOENT"), (str(root / "var/run/utmp"), "ENOENT")]


def test_fake_mounts_unescape_mount_points(fake):
    mounts = fake["mounts"]["items"]
    assert mounts[1] == {
        "kind": "mount", "mount_id": 36, "parent_id": 1, "device": "98:0", "root": "/mnt1",
        "mount_point": "/mnt/my disk", "options": ["rw", "noatime"], "optional": ["master:1"],
        "fs_type": "ext3", "source": "/dev/root", "super_options": ["rw"],
    }
    assert mounts[0]["mount_point"] == "/"


def test_fake_modules_and_taint_flags(fake):
    modules = fake["modules"]["items"]
    assert modules[0] == {"kind": "module", "name": "rootkit", "size": 16384, "refcount": 0,
                          "dependencies": [], "state": "Live", "address": "0xffffffffc0a00000",
                          "taint": "OE"}
    assert modules[1]["dependencies"] == ["nft_chain_nat", "xt_MASQUERADE"]
    taint = kinds(fake["modules"], "kernel_taint")[0]
    assert (taint["value"], taint["flags"]) == (12289, ["P", "O", "E"])


def test_fake_system_reads_uptime_boot_and_os_release_without_following_links(fake):
    system = fake["system"]["items"][0]
    assert system["uptime"] == {"uptime_seconds": "12345.67", "idle_seconds": "54321.00"}
    assert system["loadavg"]["load1"] == "0.52"
    assert system["boot_time"] == "2023-11-14T22:13:20.000000Z"
    assert system["hostname"] == "web01"
    assert system["os_release"] == {"NAME": "Debian GNU/Linux", "ID": "debian",
                                    "VERSION_ID": "12"}
    assert system["os_release_link"] == "../usr/lib/os-release"
    assert system["os_release_path"].endswith("root/usr/lib/os-release")
    assert [e["path"].rsplit("/", 1)[-1] for e in fake["system"]["errors"]] == ["boot_id"]


def test_a_fifo_in_place_of_a_file_is_never_opened(fake_host):
    proc, root = fake_host
    (root / "run/utmp").unlink()
    os.mkfifo(root / "run/utmp")
    logged_in = decoded(capture_volatile(proc, root=root, clock=FakeClock()))["logged_in"]
    assert logged_in["errors"][0]["errno"] == "EINVAL"
    assert logged_in["errors"][0]["detail"] == "not a regular file"


def test_a_symlinked_folder_on_the_way_is_not_followed(fake_host, tmp_path):
    proc, root = fake_host
    (root / "run/utmp").rename(tmp_path / "utmp")  # what following the link would find
    (root / "run").rmdir()
    link(root / "run", str(tmp_path))
    logged_in = decoded(capture_volatile(proc, root=root, clock=FakeClock()))["logged_in"]
    assert logged_in["items"] == []
    assert logged_in["errors"][0]["errno"] == "ELOOP"


@linux_only
def test_capture_runs_no_command(monkeypatch):
    import subprocess

    def refuse(*_args, **_kwargs):
        raise AssertionError("a command was run")

    monkeypatch.setattr(subprocess, "Popen", refuse)
    monkeypatch.setattr(os, "fork", refuse)
    monkeypatch.setattr(os, "posix_spawn", refuse)
    assert len(capture_volatile()) == len(CAPTURE_ORDER)
