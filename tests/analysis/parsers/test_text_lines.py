"""The shared line reader, and robustness and speed of every text parser built on it."""

from __future__ import annotations

import gzip
import os
import random
import shutil
import subprocess
import time
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sealtrail.analysis.parsers.auditd import AuditdParser
from sealtrail.analysis.parsers.base import MemberContext
from sealtrail.analysis.parsers.crontab import CrontabParser
from sealtrail.analysis.parsers.package_logs import AptHistoryParser, DpkgLogParser
from sealtrail.analysis.parsers.shell_history import ShellHistoryParser
from sealtrail.analysis.parsers.syslog_text import SyslogParser
from sealtrail.analysis.parsers.text_lines import decode_line, iter_lines
from sealtrail.analysis.parsers.web_access import WebAccessParser
from sealtrail.analysis.records import Event, Rejection
from tests.analysis.helpers import member_from_bytes

ROOT = Path(__file__).resolve().parents[3]
MTIME = datetime(2026, 3, 12, tzinfo=UTC)

# (parser, a source path it would be given)
PARSERS = [
    (SyslogParser, "/var/log/syslog"),
    (WebAccessParser, "/var/log/nginx/access.log"),
    (ShellHistoryParser, "/home/eve/.bash_history"),
    (DpkgLogParser, "/var/log/dpkg.log"),
    (AptHistoryParser, "/var/log/apt/history.log"),
    (AuditdParser, "/var/log/audit/audit.log"),
    (CrontabParser, "/var/spool/cron/crontabs/eve"),
]
IDS = [p.NAME for p, _ in PARSERS]


def file_member(path: Path, source_path: str, mtime: datetime | None = MTIME) -> MemberContext:
    """A member streamed from disk (not read into memory, unlike member_from_file)."""
    return MemberContext(bundle_id="b", member_name="data" + source_path, member_sha256="0" * 64,
                         source_path=source_path, size=path.stat().st_size, mtime=mtime,
                         host="t", opener=lambda: path.open("rb"))


def garbage(lines: int = 50, width: int = 200) -> bytes:
    rng = random.Random(1)
    out = []
    for _ in range(lines):
        out.append(rng.randbytes(width).replace(b"\n", b"\x00").replace(b"\r", b"\x00"))
    return b"\n".join(out) + b"\n"


def test_decode_line() -> None:
    assert decode_line(b"plain ascii") == "plain ascii"
    assert decode_line("ümlaut".encode()) == "ümlaut"
    assert decode_line(b"one bad \xff byte in a line") == "one bad \ufffd byte in a line"
    assert decode_line(b"\x00\x01\x02\x03abc") is None
    assert decode_line(garbage(1)) is None


def test_line_numbers_count_blank_lines_and_crlf() -> None:
    lines = list(iter_lines(__import__("io").BytesIO(b"a\r\n\nb")))
    assert [(x.number, x.text) for x in lines] == [(1, "a"), (2, ""), (3, "b")]


@pytest.mark.parametrize(("parser", "source"), PARSERS, ids=IDS)
def test_binary_garbage_is_rejected_line_by_line(parser: type, source: str) -> None:
    data = garbage()
    records = list(parser().parse(member_from_bytes(source, data, mtime=MTIME)))
    assert records == [Rejection(f"line:{n}", "not text") for n in range(1, 51)]


@pytest.mark.parametrize(("parser", "source"), PARSERS, ids=IDS)
def test_empty_file_gives_no_records(parser: type, source: str) -> None:
    assert list(parser().parse(member_from_bytes(source, b"", mtime=MTIME))) == []
    assert list(parser().parse(member_from_bytes(source, b"\n\n  \n", mtime=MTIME))) == []


@pytest.mark.parametrize(("parser", "source"), PARSERS, ids=IDS)
def test_invalid_utf8_does_not_raise(parser: type, source: str) -> None:
    data = (b"Mar 10 02:14:51 h app: caf\xe9\n2026-03-06 06:41:12 status \xff\xfe x 1\n"
            b"# caf\xc3 comment\n")
    records = list(parser().parse(member_from_bytes(source, data, mtime=MTIME)))
    assert all(isinstance(r, Event | Rejection) for r in records)
    assert all(r.reason != "not text" for r in records if isinstance(r, Rejection))


@pytest.fixture(scope="module")
def hundred_mb_line(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("long") / "one-line.log"
    chunk = b"A" * (1 << 20)
    with path.open("wb") as out:
        for _ in range(100):
            out.write(chunk)
        out.write(b"\nMar 10 02:14:51 web01 app[1]: after the long line\n")
    return path


@pytest.mark.parametrize(("parser", "source"), PARSERS, ids=IDS)
def test_a_100_mb_line_is_rejected_in_bounded_memory(parser: type, source: str,
                                                     hundred_mb_line: Path) -> None:
    member = file_member(hundred_mb_line, source)
    tracemalloc.start()
    try:
        records = list(parser().parse(member))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 50 * 1024 * 1024
    assert records[0] == Rejection("line:1", "line too long")
    assert len(records) == 2
    assert records[1].record_ref == "line:2"


def test_syslog_line_after_the_long_line_still_parses(hundred_mb_line: Path) -> None:
    records = list(SyslogParser().parse(file_member(hundred_mb_line, "/var/log/syslog")))
    assert records[1].message == "app: after the long line"
    assert records[1].ts == datetime(2026, 3, 10, 2, 14, 51, tzinfo=UTC)


def test_gzip_member_reads_the_same_records() -> None:
    data = (ROOT / "fixtures/hosts/web01/var/log/auth.log.1").read_bytes()
    plain = list(SyslogParser().parse(member_from_bytes("/var/log/auth.log.1", data,
                                                        mtime=MTIME)))
    packed = list(SyslogParser().parse(member_from_bytes(
        "/var/log/auth.log.1.gz", gzip.compress(data, mtime=0), mtime=MTIME)))
    assert plain == packed


# --- speed ----------------------------------------------------------------------------------

def _generate(path: Path, template: Path, size: int) -> None:
    block = template.read_bytes()
    if template.suffix == ".gz":
        block = gzip.decompress(block)
    with path.open("wb") as out:
        written = 0
        while written < size:
            out.write(block)
            written += len(block)


def _bench(path: Path, source: str, parser: type) -> None:
    size = path.stat().st_size
    t0 = time.perf_counter()
    with path.open("rb") as f:
        lines = 0
        for _ in f:
            lines += 1
    loop = time.perf_counter() - t0
    wc = None
    if shutil.which("wc"):
        t0 = time.perf_counter()
        subprocess.run(["wc", "-l", str(path)], check=True, capture_output=True)
        wc = time.perf_counter() - t0
    member = file_member(path, source)
    t0 = time.perf_counter()
    records = 0
    for _ in parser().parse(member):
        records += 1
    took = time.perf_counter() - t0
    mb = size / 1e6
    wc_text = f"{mb / wc:8.1f} MB/s" if wc else "n/a"
    print(f"\n{parser.NAME:>10}: {lines:,} lines, {mb:.0f} MB: parser {lines / took:,.0f} lines/s "
          f"{mb / took:.1f} MB/s; python loop {lines / loop:,.0f} lines/s {mb / loop:.1f} MB/s; "
          f"wc -l {wc_text}")
    assert records == lines


def _bench_size() -> int:
    return int(os.environ.get("SEALTRAIL_BENCH_MB", "8")) * 1_000_000


@pytest.mark.parametrize(("parser", "source", "template"), [
    (SyslogParser, "/var/log/auth.log", "fixtures/hosts/web01/var/log/auth.log"),
    (WebAccessParser, "/var/log/nginx/access.log", "fixtures/hosts/web01/var/log/nginx/access.log"),
], ids=["syslog", "web_access"])
def test_speed_small(parser: type, source: str, template: str, tmp_path: Path) -> None:
    path = tmp_path / "big.log"
    _generate(path, ROOT / template, _bench_size())
    _bench(path, source, parser)


@pytest.mark.slow
@pytest.mark.parametrize(("parser", "source", "template"), [
    (SyslogParser, "/var/log/auth.log", "fixtures/hosts/web01/var/log/auth.log"),
    (WebAccessParser, "/var/log/nginx/access.log", "fixtures/hosts/web01/var/log/nginx/access.log"),
], ids=["syslog", "web_access"])
def test_speed_200_mb(parser: type, source: str, template: str, tmp_path: Path) -> None:
    path = tmp_path / "big.log"
    _generate(path, ROOT / template, 200_000_000)
    _bench(path, source, parser)
