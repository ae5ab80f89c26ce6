"""The ingested web01 case of the analysis tests, and a small case database to run rules on."""

from __future__ import annotations

from pathlib import Path

import pytest

from sealtrail.analysis.store import CaseDatabase
from tests.analysis.conftest import ingested, web01_case, web01_host  # noqa: F401 - fixtures


@pytest.fixture
def small_db(tmp_path: Path):
    """A case database with a few events: two Security 4625 rows, one System 7045, three
    syslog logon failures (two users, one address), each with its own event_uid."""
    with CaseDatabase(tmp_path / "analysis.duckdb") as db:
        db.execute("""
            INSERT INTO events (ts, host, source, event_type, event_id, channel, "user", src_ip,
                                process, bundle_id, member_path, record_ref, event_uid)
            VALUES
            ('2026-03-10 02:00:00+00', 'w1', 'winevtx', 'logon_failure', 4625, 'Security',
             'bob', '10.0.0.5', NULL, 'b1', 'C:/Security.evtx', 'record:1', 'u1'),
            ('2026-03-10 02:00:01+00', 'w1', 'winevtx', 'logon_failure', 4625, 'Security',
             'bob', '10.0.0.5', NULL, 'b1', 'C:/Security.evtx', 'record:2', 'u2'),
            ('2026-03-10 02:00:02+00', 'w1', 'winevtx', 'service_installed', 7045, 'System',
             NULL, NULL, NULL, 'b1', 'C:/System.evtx', 'record:1', 'u3'),
            ('2026-03-10 02:00:03+00', 'l1', 'syslog', 'logon_failure', NULL, NULL,
             'root', '203.0.113.9', 'sshd', 'b2', '/var/log/auth.log', 'line:1', 'u4'),
            ('2026-03-10 02:00:04+00', 'l1', 'syslog', 'logon_failure', NULL, NULL,
             'root', '203.0.113.9', 'sshd', 'b2', '/var/log/auth.log', 'line:2', 'u5'),
            ('2026-03-10 02:00:05+00', 'l1', 'syslog', 'logon_failure', NULL, NULL,
             'admin', '203.0.113.9', 'sshd', 'b2', '/var/log/auth.log', 'line:3', 'u6')""")
        yield db
