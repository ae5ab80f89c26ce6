"""AuditdParser: web01 raw audit.log and the upstream enriched sample."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

from sealtrail.analysis.parsers.auditd import OPEN_GROUPS, AuditdParser, decode_value
from sealtrail.analysis.records import Event, Rejection
from tests.analysis.helpers import member_from_bytes, member_from_file
from tests.shared_data import upstream_path

ROOT = Path(__file__).resolve().parents[3]
WEB01 = ROOT / "fixtures" / "hosts" / "web01"
TRUTH = json.loads((ROOT / "fixtures" / "hosts" / "web01.truth.json").read_text())
REL = "var/log/audit/audit.log"


def parse_web01() -> list[Event | Rejection]:
    return list(AuditdParser().parse(member_from_file(WEB01 / REL, source_path="/" + REL)))


def test_one_event_per_serial_and_types_match_the_truth() -> None:
    records = parse_web01()
    text = (WEB01 / REL).read_text()
    serials = set(re.findall(r"msg=audit\(\d+\.\d+:(\d+)\)", text))
    assert len(records) == len(serials)
    assert all(isinstance(r, Event) for r in records)
    lines = sorted(n for r in records for n in r.attributes["lines"])
    assert lines == list(range(1, TRUTH["counts"][REL]["lines"] + 1))
    counts = TRUTH["counts"][REL]
    types = Counter(r.event_type for r in records)
    assert types["process_start"] == counts["EXECVE"]
    assert types["privilege_use"] == counts["USER_CMD"]
    assert types["account_created"] == counts["ADD_USER"]
    assert types["group_membership_changed"] == counts["USER_MGMT"]
    assert types["account_changed"] == counts["ADD_GROUP"] + counts["USER_CHAUTHTOK"]
    assert types["logon_success"] + types["logon_failure"] == counts["USER_LOGIN"] + counts[
        "USER_AUTH"]


def test_exfiltration_commands_are_reassembled() -> None:
    commands = {r.command_line: r for r in parse_web01() if r.event_type == "process_start"}
    curl = [c for c in commands if c.startswith("curl -T /tmp/.c.tgz")]
    assert curl
    event = commands[curl[0]]
    assert event.ts.isoformat().replace("+00:00", "Z").startswith(
        TRUTH["exfiltration"][2]["time"][:-1])
    assert event.attributes["record_types"] == ["SYSCALL", "EXECVE", "PROCTITLE"]
    sudo = [r for r in parse_web01() if r.event_type == "privilege_use"]
    assert "useradd -m -s /bin/bash backup2" in [r.command_line for r in sudo]
    added = [r for r in parse_web01() if r.event_type == "group_membership_changed"]
    assert [(r.target_user, r.attributes["group"]) for r in added] == [("backup2", "sudo")]
    failures = [r for r in parse_web01() if r.event_type == "logon_failure"]
    assert len(failures) == 3
    assert all(r.attributes["success"] is False for r in failures)


def test_enriched_upstream_sample() -> None:
    path = upstream_path("linux/audit_enriched.log")
    records = list(AuditdParser().parse(member_from_file(path, source_path="/" + REL)))
    assert all(isinstance(r, Event) for r in records)
    assert sum(len(r.attributes["lines"]) for r in records) == 29
    created = [r for r in records if r.event_type == "account_created"]
    assert [(r.target_user, r.user, r.attributes["success"]) for r in created] == [
        ("specimenuser", "root", True)]
    deleted = [r for r in records if r.event_type == "account_deleted"]
    assert [(r.target_user, r.attributes["success"]) for r in deleted] == [("specimenuser", False)]
    execs = [r.command_line for r in records if r.event_type == "process_start"]
    assert execs == ["id", "/bin/sh -c grep -c . /etc/hostname", "/usr/bin/cat /tmp/my report.txt"]
    (cmd,) = [r for r in records if r.event_type == "privilege_use"]
    assert (cmd.command_line, cmd.attributes["cwd"], cmd.process) == ("true", "/root",
                                                                     "/usr/bin/sudo")
    (auth,) = [r for r in records if r.event_type == "logon_failure"]
    assert (auth.user, auth.src_ip) == ("root", "172.23.112.1")


def test_interleaved_and_split_groups_and_junk() -> None:
    lines = [b"type=SYSCALL msg=audit(1773109308.1:10): syscall=59 exe=\"/bin/ls\"",
             b"type=USER_CMD msg=audit(1773109308.2:11): msg='cmd=6C73 res=success'",
             b"type=EXECVE msg=audit(1773109308.1:10): argc=2 a0=\"ls\" a1_len=4 a1[0]=2F74 "
             b"a1[1]=6D70",
             b"this is not audit"]
    lines += [f"type=LOGIN msg=audit(1773109309.0:{100 + i}): res=1".encode()
              for i in range(OPEN_GROUPS + 1)]
    lines.append(b"type=EOE msg=audit(1773109308.2:11): ")
    records = list(AuditdParser().parse(member_from_bytes("/" + REL, b"\n".join(lines))))
    assert Rejection("line:4", "not an audit record") in records
    events = [r for r in records if isinstance(r, Event)]
    (ls,) = [r for r in events if r.event_type == "process_start"]
    assert (ls.command_line, ls.process, ls.attributes["lines"]) == ("ls /tmp", "/bin/ls", [1, 3])
    cmd_events = [r for r in events if r.attributes["serial"] == 11]
    assert len(cmd_events) == 2
    assert cmd_events[1].attributes["split"] is True
    assert len(records) == 1 + 1 + 2 + OPEN_GROUPS + 1


def test_decode_value() -> None:
    assert decode_value('"plain"') == "plain"
    assert decode_value("2F62696E2F7368002D63") == "/bin/sh -c"
    assert decode_value("1234", encoded=False) == "1234"
