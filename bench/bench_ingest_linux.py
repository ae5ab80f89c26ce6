"""Linux log ingest rate (lines/s, MB/s) against ``wc -l`` and a plain Python line loop.

Usage: python bench/bench_ingest_linux.py [--syslog-mb 200] [--nginx-mb 100] [--runs 3] [--keep]

Generates (fixed seed; cached under bench/out/ingest/ while its manifest matches) a Linux host
folder: ``etc/hostname``, ``etc/passwd``, ``var/log/auth.log`` and ``var/log/syslog`` (half of
``--syslog-mb`` each: RFC 3164 lines from sshd failures and accepts, invalid users, PAM
sessions, sudo, cron, systemd and kernel/UFW messages, 1 January to 31 March 2026, the files'
mtime set to 2026-03-31 23:59:59 UTC so the year is inferred as 2026) and
``var/log/nginx/access.log`` (``--nginx-mb`` of combined-format lines). The folder is collected
once into a case with the library (``plan_collection`` + ``run_collection``, the triage set plus
``--path 'var/log/**'``, as ``tests/conftest.py``'s ``collect``). Then, interleaved, ``--runs``
times: the references over the three log files (``wc -l FILES``, and ``for line in open(f,
'rb'): pass`` in this process), and ``ingest_case(case, key, workers=2)`` on a fresh copy of the
collected case, in a fresh Python process (verify, parse in 2 sandboxed workers, Parquet, DuckDB
load, sort, checkpoint, digest, ledger entry), timed inside that process around the call.

Prints lines/s and MB/s of log input for each (MB = 10^6 bytes; "lines" = lines of the three
log files, the same count for every side), events/s into DuckDB for ingest, the ratios, and the
ingest's peak RSS (ru_maxrss of RUSAGE_SELF and of RUSAGE_CHILDREN, the largest worker).
"""

from __future__ import annotations

import argparse
import calendar
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from machine import cpu_model  # bench/machine.py (bench/ is on sys.path)

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE / "out" / "ingest"
SEED = 20260331
MTIME = calendar.timegm((2026, 3, 31, 23, 59, 59))
START = calendar.timegm((2026, 1, 1, 0, 0, 0))
LOGS = ("var/log/auth.log", "var/log/syslog", "var/log/nginx/access.log")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
from sealtrail.analysis.ingest import ingest_case
from sealtrail.custody.case import Case
from sealtrail.custody.keys import load_private_key
case = Case.load(Path(sys.argv[1]))
key = load_private_key(sys.argv[2])
t = time.perf_counter()
report = ingest_case(case, key, workers=2)
seconds = time.perf_counter() - t
accounts = [{"path": a.member_path, "parser": a.parser, "seen": a.seen, "loaded": a.loaded,
             "rejected": a.rejected, "failure": a.failure} for a in report.accounts]
print(json.dumps({
    "seconds": seconds, "report_seconds": report.seconds, "events": report.events_added,
    "fs_events": report.fs_events, "errors": report.errors_added, "accounts": accounts,
    "db_bytes": Path(report.database).stat().st_size,
    "rss_self_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    "rss_children_kib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
}))
"""

# -- the host folder ------------------------------------------------------------------------------

USERS = ["alice", "bob", "carol", "deploy", "backup", "www-data"]
BAD_USERS = ["admin", "test", "oracle", "ubuntu", "guest", "pi", "user", "postgres", "git"]
PATHS = ["/", "/index.html", "/login", "/api/v1/items", "/api/v1/items/42", "/static/app.js",
         "/static/style.css", "/favicon.ico", "/wp-login.php", "/.env", "/search?q=shoes",
         "/cart", "/checkout", "/robots.txt", "/images/logo.png"]
AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/122.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_3) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.3 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:123.0) Gecko/20100101 Firefox/123.0",
    "curl/8.5.0", "python-requests/2.31.0", "Googlebot/2.1 (+http://www.google.com/bot.html)",
]


def _ip(rng: random.Random, pool: list[str]) -> str:
    return pool[min(int(rng.expovariate(0.02)), len(pool) - 1)]


def _stamp(t: int) -> str:
    g = time.gmtime(t)
    return f"{MONTHS[g.tm_mon - 1]} {g.tm_mday:2d} {g.tm_hour:02d}:{g.tm_min:02d}:{g.tm_sec:02d}"


def _auth_line(rng: random.Random, t: int, ips: list[str]) -> str:
    ts = _stamp(t)
    pid = rng.randint(1000, 65000)
    r = rng.random()
    ip = _ip(rng, ips)
    port = rng.randint(1024, 65535)
    if r < 0.40:
        user = rng.choice(BAD_USERS + ["root"])
        return f"{ts} web01 sshd[{pid}]: Failed password for {user} from {ip} port {port} ssh2"
    if r < 0.52:
        user = rng.choice(BAD_USERS)
        return (f"{ts} web01 sshd[{pid}]: Failed password for invalid user {user} from {ip} "
                f"port {port} ssh2")
    if r < 0.60:
        return f"{ts} web01 sshd[{pid}]: Invalid user {rng.choice(BAD_USERS)} from {ip} port {port}"
    if r < 0.66:
        user = rng.choice(USERS[:4])
        how = rng.choice(("publickey", "password"))
        tail = ": RSA SHA256:7Yx0dX3k9p2Qm4s1Zr8bVw6tLc5uHn0eJg3fKa2iPoE" \
            if how == "publickey" else ""
        return f"{ts} web01 sshd[{pid}]: Accepted {how} for {user} from {ip} port {port} ssh2{tail}"
    if r < 0.72:
        user = rng.choice(USERS[:4])
        return (f"{ts} web01 sshd[{pid}]: pam_unix(sshd:session): session opened for user "
                f"{user}(uid=1000) by (uid=0)")
    if r < 0.77:
        return f"{ts} web01 sshd[{pid}]: pam_unix(sshd:session): session closed for user " \
               f"{rng.choice(USERS[:4])}"
    if r < 0.82:
        return f"{ts} web01 sshd[{pid}]: Disconnected from authenticating user root {ip} port " \
               f"{port} [preauth]"
    if r < 0.88:
        user = rng.choice(USERS[:3])
        cmd = rng.choice(("/usr/bin/apt update", "/usr/bin/systemctl restart nginx",
                          "/bin/cat /etc/shadow", "/usr/bin/tail -f /var/log/syslog"))
        return (f"{ts} web01 sudo: {user:>8} : TTY=pts/{rng.randint(0, 5)} ; PWD=/home/{user} ; "
                f"USER=root ; COMMAND={cmd}")
    if r < 0.91:
        return f"{ts} web01 sudo: pam_unix(sudo:session): session opened for user root(uid=0) " \
               f"by {rng.choice(USERS[:3])}(uid=1000)"
    return (f"{ts} web01 CRON[{pid}]: pam_unix(cron:session): session "
            f"{rng.choice(('opened', 'closed'))} for user root"
            + ("(uid=0) by (uid=0)" if rng.random() < 0.5 else ""))


def _syslog_line(rng: random.Random, t: int, ips: list[str]) -> str:
    ts = _stamp(t)
    r = rng.random()
    pid = rng.randint(1000, 65000)
    if r < 0.30:
        cmd = rng.choice(("cd / && run-parts --report /etc/cron.hourly",
                          "command -v debian-sa1 > /dev/null && debian-sa1 1 1",
                          "/usr/local/bin/backup.sh >/dev/null 2>&1"))
        return f"{ts} web01 CRON[{pid}]: ({rng.choice(('root', 'backup'))}) CMD ({cmd})"
    if r < 0.55:
        up = (t - START) + 12.345678
        return (f"{ts} web01 kernel: [{up:12.6f}] [UFW BLOCK] IN=eth0 OUT= "
                f"MAC=52:54:00:12:34:56:52:54:00:65:43:21:08:00 SRC={_ip(rng, ips)} "
                f"DST=10.0.0.7 LEN=44 TOS=0x00 PREC=0x00 TTL=243 ID={rng.randint(1, 65535)} "
                f"PROTO=TCP SPT={rng.randint(1024, 65535)} DPT={rng.choice((22, 23, 3389, 8080))} "
                "WINDOW=1024 RES=0x00 SYN URGP=0")
    if r < 0.75:
        n = rng.randint(1, 5000)
        what = rng.choice((f"Started Session {n} of User {rng.choice(USERS[:4])}.",
                           "Starting Daily apt download activities...",
                           "Finished Daily apt download activities.",
                           f"session-{n}.scope: Deactivated successfully.",
                           "Started Run anacron jobs."))
        return f"{ts} web01 systemd[1]: {what}"
    if r < 0.85:
        return f"{ts} web01 systemd-logind[612]: New session {rng.randint(1, 5000)} of user " \
               f"{rng.choice(USERS[:4])}."
    if r < 0.93:
        return (f"{ts} web01 nginx[{pid}]: 2026/01/01 00:00:00 [error] 812#812: *{pid} open() "
                f"\"/var/www/html/favicon.ico\" failed (2: No such file or directory)")
    return f"{ts} web01 rsyslogd: [origin software=\"rsyslogd\" swVersion=\"8.2312.0\"] " \
           "rsyslogd was HUPed"


def _nginx_line(rng: random.Random, t: int, ips: list[str]) -> str:
    g = time.gmtime(t)
    ts = f"{g.tm_mday:02d}/{MONTHS[g.tm_mon - 1]}/{g.tm_year}:{g.tm_hour:02d}:{g.tm_min:02d}:" \
         f"{g.tm_sec:02d} +0000"
    method = "POST" if rng.random() < 0.12 else "GET"
    path = rng.choice(PATHS)
    status = rng.choices((200, 304, 301, 404, 403, 500), (70, 10, 4, 12, 3, 1))[0]
    size = rng.randint(0, 60000) if status == 200 else rng.randint(0, 600)
    ref = rng.choice(("-", "https://www.example.com/", "https://www.google.com/"))
    return (f'{_ip(rng, ips)} - - [{ts}] "{method} {path} HTTP/1.1" {status} {size} "{ref}" '
            f'"{rng.choice(AGENTS)}"')


def _write_log(path: Path, size: int, make_line, rng: random.Random, ips: list[str]) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    avg = {_auth_line: 110, _syslog_line: 150, _nginx_line: 190}[make_line]
    step = (MTIME - 3600 - START) / (size / avg)
    t, written, lines = float(START), 0, 0
    with path.open("w", encoding="ascii", newline="\n") as out:
        batch: list[str] = []
        while written < size:
            t += rng.expovariate(1 / step)
            line = make_line(rng, int(min(t, MTIME - 1)), ips) + "\n"
            batch.append(line)
            written += len(line)
            lines += 1
            if len(batch) >= 10000:
                out.write("".join(batch))
                batch.clear()
        out.write("".join(batch))
    os.utime(path, (MTIME, MTIME))
    return lines


def build_host(syslog_mb: int, nginx_mb: int) -> tuple[Path, dict]:
    base = OUT / f"host-{syslog_mb}-{nginx_mb}"
    host, manifest_path = base / "host", base / "manifest.json"
    want = {"seed": SEED, "syslog_mb": syslog_mb, "nginx_mb": nginx_mb, "version": 1}
    if manifest_path.exists():
        got = json.loads(manifest_path.read_text())
        if got.get("want") == want:
            print(f"host folder: reusing {base.relative_to(ROOT)}")
            return host, got
    shutil.rmtree(base, ignore_errors=True)
    t = time.perf_counter()
    rng = random.Random(SEED)
    ips = [f"{rng.choice((45, 61, 103, 185, 193, 203))}.{rng.randint(0, 255)}."
           f"{rng.randint(0, 255)}.{rng.randint(1, 254)}" for _ in range(5000)]
    (host / "etc").mkdir(parents=True)
    (host / "etc/hostname").write_text("web01\n")
    (host / "etc/passwd").write_text(
        "root:x:0:0:root:/root:/bin/bash\n"
        + "".join(f"{u}:x:{1000 + i}:{1000 + i}::/home/{u}:/bin/bash\n"
                  for i, u in enumerate(USERS)))
    (host / "etc/os-release").write_text('NAME="Ubuntu"\nID=ubuntu\nVERSION_ID="24.04"\n')
    half = syslog_mb * 1_000_000 // 2
    lines = {
        LOGS[0]: _write_log(host / LOGS[0], half, _auth_line, rng, ips),
        LOGS[1]: _write_log(host / LOGS[1], half, _syslog_line, rng, ips),
        LOGS[2]: _write_log(host / LOGS[2], nginx_mb * 1_000_000, _nginx_line, rng, ips),
    }
    info = {"want": want, "lines": lines,
            "bytes": {rel: (host / rel).stat().st_size for rel in LOGS}}
    manifest_path.write_text(json.dumps(info))
    print(f"host folder: built {base.relative_to(ROOT)} in {time.perf_counter() - t:.1f} s")
    return host, info


def collect_case(host: Path, base: Path) -> tuple[Path, Path, float]:
    """Collect ``host`` into a new case under ``base``; returns (case, private key, seconds)."""
    from sealtrail.acquisition.session import requested_fields, run_collection
    from sealtrail.collectors.plan import plan_collection
    from sealtrail.collectors.source import DirectorySource
    from sealtrail.custody.case import Case
    from sealtrail.custody.keys import SigningKey, write_key_pair

    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    key = SigningKey.generate("bench")
    private, _public = write_key_pair(key, base / "keys")
    case = Case.init(base / "case", title="ingest bench", examiner="bench", key=key)
    paths = ("var/log/**",)
    t = time.perf_counter()
    source = DirectorySource(host)
    plan = plan_collection(source, path_globs=paths)
    run_collection(case, key, source, plan, source_label=str(host),
                   requested=requested_fields((), paths, plan.os_name, None))
    return base / "case", private, time.perf_counter() - t


# -- the runs ---------------------------------------------------------------------------------


def wc_lines(files: list[Path]) -> tuple[float, int]:
    t = time.perf_counter()
    out = subprocess.run(["wc", "-l", *map(str, files)], capture_output=True, text=True,
                         check=True).stdout
    seconds = time.perf_counter() - t
    total = int(out.strip().splitlines()[-1].split()[0])
    return seconds, total


def python_lines(files: list[Path]) -> tuple[float, int]:
    t = time.perf_counter()
    n = 0
    for f in files:
        for _line in open(f, "rb"):  # noqa: SIM115 - the plain loop is the point
            n += 1
    return time.perf_counter() - t, n


def run_ingest(case_src: Path, private: Path) -> dict:
    work = OUT / "run-case"
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(case_src, work)
    os.sync()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", CHILD, str(work), str(private)],
                          capture_output=True, text=True, env=env)
    if proc.returncode:
        sys.exit(f"ingest failed:\n{proc.stderr}")
    shutil.rmtree(work, ignore_errors=True)
    lines = proc.stdout.strip().splitlines()
    result = json.loads(lines[-1])
    # Anything else on stdout came from the libraries: DuckDB draws its progress bar there
    # for long statements.
    result["stdout_lines"] = sum(1 for line in lines[:-1] if line.strip())
    return result


def machine() -> str:
    model = cpu_model()
    import duckdb
    import pyarrow

    wc = subprocess.run(["wc", "--version"], capture_output=True, text=True).stdout
    return (f"machine: {os.cpu_count()} CPUs ({model}), Python {platform.python_version()}, "
            f"DuckDB {duckdb.__version__}, pyarrow {pyarrow.__version__}, "
            f"{wc.splitlines()[0]}, Linux {platform.release()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--syslog-mb", type=int, default=200,
                        help="auth.log + syslog, MB (half each)")
    parser.add_argument("--nginx-mb", type=int, default=100, help="nginx access.log, MB")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the host folder")
    args = parser.parse_args()
    print(machine())
    host, info = build_host(args.syslog_mb, args.nginx_mb)
    files = [host / rel for rel in LOGS]
    nbytes = sum(info["bytes"].values())
    nlines = sum(info["lines"].values())
    for rel in LOGS:
        print(f"  {rel}: {info['bytes'][rel] / 1e6:,.1f} MB, {info['lines'][rel]:,} lines")
    case, private, collect_s = collect_case(host, OUT / "base")
    print(f"collected into a case in {collect_s:.1f} s; {args.runs} runs a side, interleaved; "
          "page cache warm")
    python_lines(files)  # warm the page cache

    wc_s, py_s, ing = [], [], []
    for run in range(1, args.runs + 1):
        seconds, count = wc_lines(files)
        assert count == nlines, (count, nlines)
        wc_s.append(seconds)
        seconds, count = python_lines(files)
        assert count == nlines, (count, nlines)
        py_s.append(seconds)
        got = run_ingest(case, private)
        ing.append(got)
        print(f"  run {run}: wc -l {wc_s[-1]:.2f} s, python loop {py_s[-1]:.2f} s, ingest "
              f"{got['seconds']:.2f} s ({got['events']:,} events, {got['errors']:,} rejected; "
              f"peak RSS {got['rss_self_kib'] / 1024:.0f} MiB self, "
              f"{got['rss_children_kib'] / 1024:.0f} MiB largest worker; "
              f"{got['stdout_lines']} other lines on stdout)")
    last = ing[-1]
    print("members (last run):")
    for a in last["accounts"]:
        print(f"  {a['path']}: parser {a['parser']}, seen {a['seen']:,}, loaded {a['loaded']:,}, "
              f"rejected {a['rejected']:,}" + (f", FAILED {a['failure']}" if a["failure"] else ""))
    log_events = sum(a["loaded"] for a in last["accounts"]
                     if a["path"].lstrip("/") in LOGS)
    ing_s = statistics.median(g["seconds"] for g in ing)
    wc_m, py_m = statistics.median(wc_s), statistics.median(py_s)
    print()
    print(f"input: {nlines:,} lines, {nbytes / 1e6:,.1f} MB in 3 log files")
    print("median of runs                       seconds     lines/s        MB/s")
    for label, s in (("wc -l", wc_m), ("python for line in open(f,'rb')", py_m),
                     ("sealtrail ingest_case(workers=2)", ing_s)):
        print(f"  {label:<33} {s:8.2f} {nlines / s:11,.0f} {nbytes / s / 1e6:11.1f}")
    print(f"  ingest: {last['events']:,} events into DuckDB ({log_events:,} from the 3 logs, "
          f"{last['fs_events']:,} file-system times from the manifest), "
          f"{last['events'] / ing_s:,.0f} events/s; database {last['db_bytes'] / 1e6:,.0f} MB")
    print(f"  ratio ingest/wc -l: {wc_m / ing_s:.3f}; ingest/python loop: {py_m / ing_s:.3f}")
    print(f"  peak RSS of ingest: {max(g['rss_self_kib'] for g in ing) / 1024:.0f} MiB "
          f"(RUSAGE_SELF) + {max(g['rss_children_kib'] for g in ing) / 1024:.0f} MiB "
          f"(RUSAGE_CHILDREN: the largest worker) = "
          f"{max(g['rss_self_kib'] + g['rss_children_kib'] for g in ing) / 1024:.0f} MiB")
    shutil.rmtree(OUT / "base", ignore_errors=True)
    shutil.rmtree(OUT / "run-case", ignore_errors=True)
    if not args.keep:
        shutil.rmtree(OUT, ignore_errors=True)
        print("scratch data removed (use --keep to keep it)")


if __name__ == "__main__":
    main()
