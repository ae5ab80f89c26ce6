"""ConfigFileParser: sshd_config, sudoers, passwd and shadow settings of web01 and hostile input."""

from __future__ import annotations

from pathlib import Path

import pytest

from sealtrail.analysis.parsers.config_files import ConfigFileParser, file_kind
from sealtrail.analysis.parsers.registry import choose_parser
from sealtrail.analysis.parsers.text_lines import MAX_LINE
from sealtrail.analysis.records import ConfigEntry, Rejection
from tests.analysis.helpers import member_from_bytes, member_from_file

WEB01 = Path(__file__).resolve().parents[3] / "fixtures" / "hosts" / "web01"


def parse(path: str, data: bytes) -> list[ConfigEntry | Rejection]:
    return list(ConfigFileParser().parse(member_from_bytes(path, data)))


def entries(path: str, data: bytes) -> list[tuple[int, str, str | None]]:
    return [(r.line_no, r.key, r.value) for r in parse(path, data) if isinstance(r, ConfigEntry)]


@pytest.mark.parametrize(("path", "kind"), [
    ("/etc/ssh/sshd_config", "sshd_config"),
    ("/etc/ssh/sshd_config.d/50-cloud-init.conf", "sshd_config.d"),
    ("/etc/sudoers", "sudoers"),
    ("/etc/sudoers.d/deploy", "sudoers.d"),
    ("/etc/passwd", "passwd"),
    ("/etc/shadow", "shadow"),
    ("/etc/passwd-", None),
    ("/etc/ssh/ssh_config", None),
    ("/home/alice/etc/passwd.txt", None),
])
def test_file_kind_is_read_from_the_source_path(path: str, kind: str | None) -> None:
    assert file_kind(path) == kind


def test_registry_gives_config_files_to_this_parser_and_crontabs_to_crontab() -> None:
    assert choose_parser(member_from_bytes("/etc/sudoers", b"root ALL=(ALL) ALL\n"),
                         b"").NAME == "config_files"
    assert choose_parser(member_from_bytes("/etc/crontab", b""), b"").NAME == "crontab"


def test_web01_sshd_config_keeps_every_keyword_in_lower_case_with_its_line() -> None:
    member = member_from_file(WEB01 / "etc/ssh/sshd_config", source_path="/etc/ssh/sshd_config")
    records = list(ConfigFileParser().parse(member))
    assert all(isinstance(r, ConfigEntry) for r in records)
    by_key = {r.key: r for r in records}
    assert (by_key["passwordauthentication"].line_no,
            by_key["passwordauthentication"].value) == (13, "yes")
    assert by_key["passwordauthentication"].raw == "PasswordAuthentication yes"
    assert by_key["permitrootlogin"].value == "prohibit-password"
    assert by_key["include"].value == "/etc/ssh/sshd_config.d/*.conf"
    assert {r.file_kind for r in records} == {"sshd_config"}


def test_sshd_equals_form_and_match_lines_are_entries() -> None:
    got = entries("/etc/ssh/sshd_config.d/a.conf",
                  b"PermitRootLogin=yes\nMatch User bob\n  PasswordAuthentication yes\n")
    assert got == [(1, "permitrootlogin", "yes"), (2, "match", "User bob"),
                   (3, "passwordauthentication", "yes")]


def test_web01_sudoers_user_specs_defaults_and_includedir() -> None:
    got = entries("/etc/sudoers", (WEB01 / "etc/sudoers").read_bytes())
    assert (12, "root", "ALL=(ALL:ALL) ALL") in got
    assert (15, "%admin", "ALL=(ALL) ALL") in got
    assert (20, "includedir", "/etc/sudoers.d") in got
    assert [k for _, k, _ in got].count("defaults") == 4
    (deploy,) = entries("/etc/sudoers.d/deploy", (WEB01 / "etc/sudoers.d/deploy").read_bytes())
    assert deploy[:2] == (3, "deploy") and "NOPASSWD:" in deploy[2]


def test_sudoers_continued_line_is_one_entry_at_its_first_line() -> None:
    data = b"# c\nUser_Alias OPS = bob, \\\n  carol\nbob, carol ALL = \\\n (ALL) NOPASSWD: ALL\n"
    assert entries("/etc/sudoers.d/ops", data) == [
        (2, "user_alias", "OPS = bob, carol"), (4, "bob,carol", "ALL = (ALL) NOPASSWD: ALL")]


def test_sudoers_line_that_is_no_setting_is_rejected() -> None:
    (rejected,) = parse("/etc/sudoers", b"garbage\n")
    assert rejected == Rejection("line:1", "not a sudoers line")


def test_passwd_gives_uid_and_hides_a_legacy_hash() -> None:
    records = parse("/etc/passwd", b"root:x:0:0:root:/root:/bin/bash\n"
                                   b"toor:$6$salt$hash:0:0::/root:/bin/sh\nbroken:x:zz\n")
    root, toor, broken = records
    assert (root.key, root.value, root.raw) == ("root", "0", "root:x:0:0:root:/root:/bin/bash")
    assert (toor.key, toor.value, toor.raw) == ("toor", "0", "toor:<set>:0:0::/root:/bin/sh")
    assert isinstance(broken, Rejection) and broken.record_ref == "line:3"


def test_shadow_rows_say_only_whether_a_hash_is_set() -> None:
    data = (b"root:$6$abc$secrethash:19000:0:99999:7:::\nguest::19000::::::\n"
            b"daemon:*:19000::::::\nbob:!$6$x$y:19000::::::\n")
    records = parse("/etc/shadow", data)
    assert [(r.key, r.value, r.raw) for r in records] == [
        ("root", "set", None), ("guest", "empty", None), ("daemon", "locked", None),
        ("bob", "locked", None)]
    assert "secrethash" not in repr(records)


def test_binary_member_is_rejected_line_by_line_not_raised() -> None:
    records = parse("/etc/ssh/sshd_config", bytes(range(256)) * 4)
    assert records and all(isinstance(r, Rejection) for r in records)


def test_huge_line_is_rejected_and_the_next_line_still_read() -> None:
    data = b"Banner " + b"A" * (MAX_LINE + 10) + b"\nPermitRootLogin yes\n"
    records = parse("/etc/ssh/sshd_config", data)
    assert isinstance(records[0], Rejection) and records[0].record_ref == "line:1"
    assert records[1] == ConfigEntry(2, "sshd_config", "permitrootlogin", "yes",
                                     "PermitRootLogin yes")


def test_last_line_without_newline_is_read() -> None:
    assert entries("/etc/ssh/sshd_config", b"UsePAM yes\nPasswordAuthentication no") == [
        (1, "usepam", "yes"), (2, "passwordauthentication", "no")]
    assert entries("/etc/sudoers", b"bob ALL=(ALL) ALL \\") == [(1, "bob", "ALL=(ALL) ALL")]
