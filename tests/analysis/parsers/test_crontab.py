"""CrontabParser: user and system crontabs of web01."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from sealtrail.analysis.parsers.crontab import CrontabParser
from sealtrail.analysis.records import Event, Rejection
from tests.analysis.helpers import member_from_bytes, member_from_file

ROOT = Path(__file__).resolve().parents[3]
WEB01 = ROOT / "fixtures" / "hosts" / "web01"
TRUTH = json.loads((ROOT / "fixtures" / "hosts" / "web01.truth.json").read_text())


def _mtime(rel: str) -> datetime:
    return datetime.fromisoformat(TRUTH["files"][rel]["intended_mtime"].replace("Z", "+00:00"))


def parse(rel: str, mtime: datetime | None = None) -> list[Event | Rejection]:
    member = member_from_file(WEB01 / rel, source_path="/" + rel, mtime=mtime or _mtime(rel))
    return list(CrontabParser().parse(member))


def test_deploy_crontab_holds_the_attacker_job() -> None:
    rel = "var/spool/cron/crontabs/deploy"
    records = parse(rel)
    assert len(records) == TRUTH["counts"][rel]["lines"]
    jobs = [r for r in records if isinstance(r, Event) and r.command_line]
    (job,) = jobs
    persistence = TRUTH["persistence"][2]
    assert f"{job.attributes['schedule']} {job.command_line}" == persistence["entry"]
    assert job.user == "deploy"
    assert (job.ts, job.ts_desc) == (_mtime(rel), "crontab file modified")
    installed = [r for r in records if isinstance(r, Event)
                 and r.attributes.get("action") == "crontab_installed"]
    assert installed[0].ts.isoformat().replace("+00:00", "Z") == persistence["time"]


def test_system_crontab_has_user_column() -> None:
    records = parse("etc/crontab")
    jobs = [r for r in records if isinstance(r, Event) and r.command_line]
    assert [j.user for j in jobs] == ["root"] * 4
    assert jobs[0].command_line == "cd / && run-parts --report /etc/cron.hourly"
    assert jobs[0].attributes["schedule"] == "17 * * * *"
    variables = [r.attributes["variable"] for r in records
                 if isinstance(r, Event) and "variable" in r.attributes]
    assert variables == ["SHELL", "PATH"]
    assert all(r.reason == "comment" for r in records if isinstance(r, Rejection))
    data = (WEB01 / "etc/crontab").read_bytes()
    assert len(records) == sum(1 for line in data.splitlines() if line.strip())


def test_without_mtime_job_lines_are_rejected() -> None:
    member = member_from_bytes("/var/spool/cron/crontabs/eve", b"@reboot /tmp/x\n", mtime=None)
    assert list(CrontabParser().parse(member)) == [
        Rejection("line:1", "no timestamp (crontab mtime unknown)")]


def test_reboot_job_and_bad_line() -> None:
    member = member_from_bytes("/var/spool/cron/crontabs/eve", b"@reboot /tmp/x\nnot a job\n",
                               mtime=datetime(2026, 1, 1, tzinfo=UTC))
    job, bad = CrontabParser().parse(member)
    assert (job.attributes["schedule"], job.command_line, job.user) == ("@reboot", "/tmp/x", "eve")
    assert bad == Rejection("line:2", "not a crontab line")
