from __future__ import annotations

from pathlib import Path

from sealtrail.collectors.source import DirectorySource
from sealtrail.collectors.variables import (
    Expansion,
    KnowledgeBase,
    escape_glob,
    normalise_pattern,
    parse_passwd,
)
from tests.collectors.conftest import touch


def test_linux_users_from_passwd_and_home_folders(linux_root: Path) -> None:
    (linux_root / "home/carol").mkdir()  # a home folder with no passwd line
    kb = KnowledgeBase.from_source(DirectorySource(linux_root), "linux")
    homes = {(u.username, u.uid, u.homedir) for u in kb.users}
    assert homes == {
        ("root", 0, "/root"),
        ("alice", 1000, "/home/alice"),
        ("bob", 1001, "/home/bob"),
        ("carol", None, "/home/carol"),
    }  # ghost's home does not exist in the source


def test_expand_homedir_per_user(linux_root: Path) -> None:
    kb = KnowledgeBase.from_source(DirectorySource(linux_root), "linux")
    assert kb.expand("%%users.homedir%%/.bash_history") == Expansion(
        ("root/.bash_history", "home/alice/.bash_history", "home/bob/.bash_history")
    )
    assert kb.expand("/var/log/auth*") == Expansion(("var/log/auth*",))


def test_home_folder_names_are_escaped(tmp_path: Path) -> None:
    (tmp_path / "home/a[1]").mkdir(parents=True)
    kb = KnowledgeBase.from_source(DirectorySource(tmp_path), "linux")
    assert kb.expand("%%users.homedir%%/.x").patterns == ("home/a[[]1]/.x",)


def test_home_that_is_a_symlink_is_not_a_user(tmp_path: Path) -> None:
    (tmp_path / "home").mkdir()
    (tmp_path / "home/evil").symlink_to("/etc")
    kb = KnowledgeBase.from_source(DirectorySource(tmp_path), "linux")
    assert kb.users == ()


def test_no_users_leaves_user_patterns_unresolved(tmp_path: Path) -> None:
    kb = KnowledgeBase.from_source(DirectorySource(tmp_path), "linux")
    assert kb.expand("%%users.homedir%%/.bash_history") == Expansion((), ("%%users.homedir%%",))


def test_windows_environment_and_profiles(windows_root: Path) -> None:
    kb = KnowledgeBase.from_source(DirectorySource(windows_root), "windows")
    assert kb.environ["systemroot"] == ("C:\\windows",)
    assert kb.environ["windir"] == ("C:\\windows",)
    assert kb.environ["systemdrive"] == ("C:",)
    assert kb.environ["programdata"] == ("C:\\ProgramData",)
    assert [u.username for u in kb.users] == ["Public", "bob"]  # not "Default User"
    bob = kb.users[1]
    assert bob.homedir == "C:\\Users\\bob"
    assert bob.appdata == "C:\\Users\\bob\\AppData\\Roaming"
    assert bob.localappdata == "C:\\Users\\bob\\AppData\\Local"
    assert bob.sid is None


def test_windows_patterns_lose_the_drive_and_backslashes(windows_root: Path) -> None:
    kb = KnowledgeBase.from_source(DirectorySource(windows_root), "windows")
    assert kb.expand("%%environ_systemroot%%\\System32\\winevt\\Logs\\*.evtx", "\\").patterns == (
        "windows/System32/winevt/Logs/*.evtx",
    )
    assert kb.expand("%%users.appdata%%\\Microsoft\\x.txt", "\\").patterns == (
        "Users/Public/AppData/Roaming/Microsoft/x.txt",
        "Users/bob/AppData/Roaming/Microsoft/x.txt",
    )
    assert kb.expand("%%environ_systemdrive%%\\$MFT", "\\").patterns == ("$MFT",)
    assert kb.expand("%%users.userprofile%%/.vscode/extensions/*").patterns == (
        "Users/Public/.vscode/extensions/*",
        "Users/bob/.vscode/extensions/*",
    )


def test_unknown_sid_and_unknown_variable_are_unresolved(windows_root: Path) -> None:
    kb = KnowledgeBase.from_source(DirectorySource(windows_root), "windows")
    assert kb.expand("%%users.sid%%\\x", "\\") == Expansion((), ("%%users.sid%%",))
    assert kb.expand("%%environ_nosuch%%\\x", "\\") == Expansion((), ("%%environ_nosuch%%",))


def test_windows_without_a_windows_folder(tmp_path: Path) -> None:
    touch(tmp_path, "Users/bob/NTUSER.DAT")
    kb = KnowledgeBase.from_source(DirectorySource(tmp_path), "windows")
    assert kb.expand("%%environ_systemroot%%\\Prefetch\\*.pf", "\\").unresolved == (
        "%%environ_systemroot%%",
    )


def test_darwin_users_come_from_the_users_folder(tmp_path: Path) -> None:
    (tmp_path / "Users/eve").mkdir(parents=True)
    (tmp_path / "Users/Shared").mkdir()
    (tmp_path / "var/root").mkdir(parents=True)
    kb = KnowledgeBase.from_source(DirectorySource(tmp_path), "darwin")
    assert [u.homedir for u in kb.users] == ["/Users/eve", "/var/root"]


def test_helpers() -> None:
    assert normalise_pattern("C:\\Windows\\*.log", "\\") == "Windows/*.log"
    assert normalise_pattern("//var//log/") == "var/log"
    assert escape_glob("a*b?[c]") == "a[*]b[?][[]c]"
    assert parse_passwd(b"# c\nbad\nx:x:nan:0::/home/x:/bin/sh\n") == [("x", None, "/home/x")]
