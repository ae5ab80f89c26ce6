"""ShellHistoryParser: web01 histories with epochs, zsh extended, plain files."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sealtrail.analysis.parsers.shell_history import ShellHistoryParser, home_owner
from sealtrail.analysis.records import Event, Rejection
from tests.analysis.helpers import member_from_bytes, member_from_file

ROOT = Path(__file__).resolve().parents[3]
WEB01 = ROOT / "fixtures" / "hosts" / "web01"
TRUTH = json.loads((ROOT / "fixtures" / "hosts" / "web01.truth.json").read_text())


@pytest.mark.parametrize("rel", ["home/deploy/.bash_history", "home/alice/.bash_history",
                                 "root/.bash_history"])
def test_histories_match_the_truth_counts(rel: str) -> None:
    member = member_from_file(WEB01 / rel, source_path="/" + rel)
    records = list(ShellHistoryParser().parse(member))
    counts = TRUTH["counts"][rel]
    assert len(records) == counts["commands"] == counts["timestamps"]
    assert all(isinstance(r, Event) and r.attributes["time_known"] for r in records)
    assert {r.user for r in records} == {rel.split("/")[-2] if rel.startswith("home") else "root"}
    assert all(r.ts_desc == "command run (history timestamp)" for r in records)


def test_deploy_exfiltration_commands_with_their_times() -> None:
    rel = "home/deploy/.bash_history"
    records = list(ShellHistoryParser().parse(member_from_file(WEB01 / rel, source_path="/" + rel)))
    when = {r.command_line: r.ts.isoformat().replace("+00:00", "Z") for r in records}
    anti = {a["action"]: a["time"] for a in TRUTH["anti_forensics"]}
    assert when["rm /tmp/.c.tgz"] == anti["rm /tmp/.c.tgz"]
    assert when["history -c"] == anti["history -c"]
    curl = [c for c in when if c.startswith("curl -T /tmp/.c.tgz")]
    assert [when[c] for c in curl] == [TRUTH["exfiltration"][2]["time"]]
    tar = [c for c in when if c.startswith("tar czf /tmp/.c.tgz")]
    assert [when[c] for c in tar] == [TRUTH["exfiltration"][2]["staged"]]
    assert records[0].record_ref == "line:2"
    assert records[0].attributes["timestamp_line"] == 1


def test_plain_history_uses_mtime_and_says_so() -> None:
    mtime = datetime(2026, 3, 12, 9, tzinfo=UTC)
    member = member_from_bytes("/home/eve/.bash_history", b"ls\n\nwhoami\n", mtime=mtime)
    records = list(ShellHistoryParser().parse(member))
    assert [(r.command_line, r.ts, r.attributes["time_known"], r.record_ref) for r in records] == [
        ("ls", mtime, False, "line:1"), ("whoami", mtime, False, "line:3")]
    assert records[0].ts_desc == "history file modified (command time unknown)"


def test_plain_history_without_mtime_is_rejected() -> None:
    member = member_from_bytes("/root/.bash_history", b"ls\n", mtime=None)
    assert list(ShellHistoryParser().parse(member)) == [Rejection("line:1", "no timestamp")]


def test_multi_line_bash_entry_and_dangling_timestamp() -> None:
    data = b"#1773108000\nfor i in 1 2; do\n  echo $i\ndone\n#1773108060\nid\n#1773108099\n"
    records = list(ShellHistoryParser().parse(member_from_bytes("/home/a/.bash_history", data)))
    assert records[0].command_line == "for i in 1 2; do\n  echo $i\ndone"
    assert records[0].ts == datetime(2026, 3, 10, 2, tzinfo=UTC)
    assert records[1].command_line == "id"
    assert records[2] == Rejection("line:7", "history timestamp without a command")


def test_zsh_extended_history() -> None:
    data = b": 1773108000:3;make \\\nall\n: 1773108010:0;ls -la\n"
    records = list(ShellHistoryParser().parse(member_from_bytes("/home/z/.zsh_history", data)))
    assert [(r.command_line, r.attributes["duration_s"]) for r in records] == [
        ("make \\\nall", 3), ("ls -la", 0)]
    assert records[1].ts == datetime(2026, 3, 10, 2, 0, 10, tzinfo=UTC)
    assert records[0].user == "z"
    assert records[0].attributes["shell"] == "zsh"


@pytest.mark.parametrize(("path", "user"), [
    ("/home/alice/.bash_history", "alice"), ("/root/.bash_history", "root"),
    ("/.bash_history", None), ("/srv/x/.bash_history", None), ("/home/.bash_history", None)])
def test_home_owner(path: str, user: str | None) -> None:
    assert home_owner(path) == user
