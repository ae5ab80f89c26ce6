"""The configuration rules (``sealtrail-config-*``) on small hosts, through the real collect,
ingest and analyze: sshd's first-value-wins order, sudoers, UID 0, empty shadow hashes and
world-writable cron and unit files, each finding without a time and with file-line evidence."""

from __future__ import annotations

from pathlib import Path

from sealtrail.analysis.ingest import ingest_case
from sealtrail.analysis.store import CaseDatabase
from sealtrail.custody.case import Case
from sealtrail.findings.analyze import analyze_case
from sealtrail.findings.listing import list_findings, show_finding
from tests.conftest import collect

WEAK_HOST = {
    "etc/hostname": ("cfg01\n", 0o644),
    # the drop-in (read at the Include, line 1) wins over line 2; line 3 is global; the Match
    # block is not; README is not *.conf, so sshd never reads its "no"
    "etc/ssh/sshd_config": ("Include /etc/ssh/sshd_config.d/*.conf\nPasswordAuthentication no\n"
                            "PermitRootLogin yes\nMatch User backup\n  PermitRootLogin no\n",
                            0o644),
    "etc/ssh/sshd_config.d/10-pw.conf": ("# cloud image\nPasswordAuthentication yes\n", 0o644),
    "etc/ssh/sshd_config.d/README": ("PermitRootLogin no\n", 0o644),
    "etc/sudoers": ("root ALL=(ALL:ALL) ALL\n%sudo ALL=(ALL:ALL) ALL\nbob ALL=(ALL) ALL\n"
                    "@includedir /etc/sudoers.d\n", 0o440),
    "etc/sudoers.d/ci": ("ci ALL=(root) NOPASSWD: /usr/bin/systemctl restart app\n", 0o440),
    "etc/passwd": ("root:x:0:0:root:/root:/bin/bash\ntoor:x:0:0::/root:/bin/sh\n"
                   "alice:x:1000:1000::/home/alice:/bin/bash\n", 0o644),
    "etc/shadow": ("root:$6$salt$notreallyahash:19000:0:99999:7:::\nguest::19000::::::\n"
                   "daemon:*:19000::::::\n", 0o640),
    "etc/crontab": ("17 * * * * root run-parts /etc/cron.hourly\n", 0o644),
    "etc/cron.d/job": ("* * * * * root /opt/job.sh\n", 0o666),
    "etc/systemd/system/app.service": ("[Service]\nExecStart=/opt/app\n", 0o646),
    "etc/systemd/system/ok.service": ("[Service]\nExecStart=/opt/ok\n", 0o644),
}

SAFE_HOST = {
    "etc/hostname": ("cfg02\n", 0o644),
    # PasswordAuthentication absent (OpenSSH's default is yes): not a finding
    "etc/ssh/sshd_config": ("PermitRootLogin prohibit-password\nUsePAM yes\n", 0o644),
    "etc/sudoers": ("root ALL=(ALL:ALL) ALL\n%admin ALL=(ALL) ALL\n", 0o440),
    "etc/passwd": ("root:x:0:0:root:/root:/bin/bash\n", 0o644),
    "etc/cron.d/job": ("* * * * * root /opt/job.sh\n", 0o644),
}


def _host(root: Path, files: dict[str, tuple[str, int]]) -> Path:
    for rel, (text, mode) in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        path.chmod(mode)
    return root


def _analyzed(tmp_path: Path, keyring, files: dict[str, tuple[str, int]]) -> Case:
    host = _host(tmp_path / "host", files)
    case = Case.init(tmp_path / "case", title="config", examiner="Alice", key=keyring.alice.key)
    collect(case, keyring.alice.key, host, paths=("etc/shadow", "etc/systemd/system/*"))
    ingest_case(case, keyring.alice.key, pinned=[keyring.alice.key.public], workers=1)
    report = analyze_case(case, keyring.alice.key, pinned=[keyring.alice.key.public])
    assert report.run.counts()["failed"] == 0
    return case


def _config_findings(case: Case) -> dict[tuple, list[tuple]]:
    """(rule, user, group_key) -> [(member_path, line_no, message)] of each config finding."""
    found = {}
    with CaseDatabase(case.root / "analysis.duckdb", read_only=True) as db:
        for finding in list_findings(db):
            if not finding["rule_id"].startswith("sealtrail-config-"):
                continue
            assert finding["first_ts"] is None and finding["last_ts"] is None
            evidence = show_finding(db, finding["finding_id"])["evidence"]
            assert all(e["event_uid"] is None and e["member_sha256"] for e in evidence)
            assert len(evidence) == finding["evidence_count"]
            found[finding["rule_id"], finding["user_name"], finding["group_key"]] = [
                (e["member_path"], e["line_no"], e["message"]) for e in evidence]
    return found


def test_weak_host_gets_one_finding_per_weakness_with_its_line(tmp_path: Path, keyring) -> None:
    found = _config_findings(_analyzed(tmp_path, keyring, WEAK_HOST))
    assert found == {
        ("sealtrail-config-ssh-password-auth", None, None): [
            ("/etc/ssh/sshd_config.d/10-pw.conf", 2, "PasswordAuthentication yes")],
        ("sealtrail-config-ssh-root-login", "root", None): [
            ("/etc/ssh/sshd_config", 3, "PermitRootLogin yes")],
        ("sealtrail-config-sudo-all", "bob", None): [
            ("/etc/sudoers", 3, "bob ALL=(ALL) ALL")],
        ("sealtrail-config-sudo-nopasswd", "ci", None): [
            ("/etc/sudoers.d/ci", 1,
             "ci ALL=(root) NOPASSWD: /usr/bin/systemctl restart app")],
        ("sealtrail-config-uid0-account", "toor", None): [
            ("/etc/passwd", 2, "toor:x:0:0::/root:/bin/sh")],
        ("sealtrail-config-empty-password", "guest", None): [("/etc/shadow", 2, None)],
        ("sealtrail-config-world-writable", None, "/etc/cron.d/job"): [
            ("/etc/cron.d/job", None, None)],
        ("sealtrail-config-world-writable", None, "/etc/systemd/system/app.service"): [
            ("/etc/systemd/system/app.service", None, None)],
    }


def test_no_password_hash_reaches_the_case_database(tmp_path: Path, keyring) -> None:
    case = _analyzed(tmp_path, keyring, WEAK_HOST)
    with CaseDatabase(case.root / "analysis.duckdb", read_only=True) as db:
        tables = [t for (t,) in db.execute("SELECT table_name FROM duckdb_tables()")[1]]
        for table in tables:  # every table, every column, as text
            hits = db.execute(f"SELECT count(*) FROM {table} t "  # noqa: S608 - catalog names
                              f"WHERE CAST(t AS VARCHAR) LIKE '%notreallyahash%'")[1][0][0]
            assert hits == 0, table
        assert "config_entries" in tables


def test_safe_host_and_absent_keywords_give_no_config_finding(tmp_path: Path, keyring) -> None:
    assert _config_findings(_analyzed(tmp_path, keyring, SAFE_HOST)) == {}
