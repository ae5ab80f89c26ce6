"""Linux rules over the bundled web01 host's logs, collected and ingested for real."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest

from fixtures.restore_mtimes import restore_mtimes
from sealtrail.findings.sigma import sigma_source
from tests.analysis.conftest import WEB01
from tests.findings.sigma.helpers import create_views, ingested_db

HEAD = """title: {title}
id: {id}
status: test
level: high
author: Test Author
"""


@pytest.fixture(scope="module")
def web01_db(tmp_path_factory: pytest.TempPathFactory) -> duckdb.DuckDBPyConnection:
    root = tmp_path_factory.mktemp("web01")
    host = root / "web01"
    shutil.copytree(WEB01, host, symlinks=True)
    restore_mtimes(host, WEB01.parent / "web01.truth.json")
    con = ingested_db(root, host, "var/log/**")
    yield con
    con.close()


def _matches(con: duckdb.DuckDBPyConnection, tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "rule.yml"
    path.write_text(text, encoding="utf-8")
    source = sigma_source([path], levels=None, statuses=None)
    assert source.failures == ()
    [rule] = source.rules
    create_views(con, source)
    return [row[0] for row in con.execute(
        f"SELECT e.member_path FROM ({rule.sql}) AS r JOIN events AS e USING (event_uid)"  # noqa: S608
    ).fetchall()]


def test_sshd_keywords_match_auth_log_lines(web01_db: duckdb.DuckDBPyConnection,
                                            tmp_path: Path) -> None:
    rule = HEAD.format(title="Invalid user", id="f0000000-0000-4000-8000-000000000001") + """\
logsource: {product: linux, service: sshd}
detection:
    keywords: ['invalid USER test']
    condition: keywords
"""
    found = _matches(web01_db, tmp_path, rule)
    assert found
    assert all(p.startswith("/var/log/auth.log") for p in found)


def test_linux_process_creation_reads_auditd_execve(web01_db: duckdb.DuckDBPyConnection,
                                                    tmp_path: Path) -> None:
    rule = HEAD.format(title="Reboot check", id="f0000000-0000-4000-8000-000000000002") + """\
logsource: {product: linux, category: process_creation}
detection:
    selection: {CommandLine|contains: 'reboot-required', Image|endswith: 'cat'}
    condition: selection
"""
    assert set(_matches(web01_db, tmp_path, rule)) == {"/var/log/audit/audit.log"}
