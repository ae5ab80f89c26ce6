from __future__ import annotations

import os
from pathlib import Path

import pytest

from sealtrail.collectors.definitions import UnknownArtifact, load_registry
from sealtrail.collectors.plan import CollectionPlan, describe, plan_collection
from sealtrail.collectors.source import DirectorySource
from sealtrail.errors import UsageError
from tests.collectors.conftest import touch


def _items(plan: CollectionPlan) -> dict[bytes, tuple[str | None, tuple[str, ...]]]:
    return {i.relpath: (i.outcome, i.artifacts) for i in plan.items}


def _named(plan: CollectionPlan, name: str) -> dict[bytes, tuple[str | None, tuple[str, ...]]]:
    return {i.relpath: (i.outcome, i.artifacts) for i in plan.items if name in i.artifacts}


def _outcome(plan: CollectionPlan, name: str) -> tuple[str, str]:
    [found] = [(a.outcome, a.reason) for a in plan.artifacts if a.name == name]
    return found


def test_linux_triage_plans_exactly_the_expected_files(linux_root: Path) -> None:
    plan = plan_collection(DirectorySource(linux_root))
    assert plan.os_name == "linux"
    assert _items(plan) == {
        b"etc/hostname": (None, ("LinuxHostnameFile",)),
        b"etc/passwd": (None, ("UnixPasswdFile",)),
        b"home/alice/.bash_history": (None, ("BashShellHistoryFile",)),
        b"root/.bash_history": (None, ("BashShellHistoryFile", "RootUserShellHistory")),
        b"var/log/auth.log": (None, ("LinuxAuthLogs",)),
        b"var/log/auth.log.1": (None, ("LinuxAuthLogs",)),
        b"var/log/auth.log.2.gz": (None, ("LinuxAuthLogs",)),
        b"var/log/nginx/access.log": (None, ("NginxAccessLogs",)),
    }
    assert _outcome(plan, "LinuxAuthLogs") == ("matched", "3 paths found")
    assert _outcome(plan, "LinuxSysLogFiles") == ("missing", "nothing matches")
    auth = next(a for a in plan.artifacts if a.name == "LinuxAuthLogs")
    assert (auth.patterns, auth.matched, auth.source_type) == (
        ("var/log/auth*", "var/log/secure*"),
        3,
        "FILE",
    )


def test_one_artifact_only(linux_root: Path) -> None:
    plan = plan_collection(DirectorySource(linux_root), artifact_names=["LinuxAuthLogs"])
    assert list(_items(plan)) == [
        b"var/log/auth.log",
        b"var/log/auth.log.1",
        b"var/log/auth.log.2.gz",
    ]
    assert [a.name for a in plan.artifacts] == ["LinuxAuthLogs"]


def test_path_glob_walks_a_nested_tree(linux_root: Path) -> None:
    for rel in ("srv/data/a.csv", "srv/data/x/b.csv", "srv/data/x/y/z/c.csv", "srv/other/d"):
        touch(linux_root, rel)
    plan = plan_collection(DirectorySource(linux_root), path_globs=["/srv/data/**"])
    assert _named(plan, "path:/srv/data/**") == {
        b"srv/data/a.csv": (None, ("path:/srv/data/**",)),
        b"srv/data/x/b.csv": (None, ("path:/srv/data/**",)),
        b"srv/data/x/y/z/c.csv": (None, ("path:/srv/data/**",)),
    }
    outcome = plan.artifacts[-1]
    assert (outcome.name, outcome.outcome, outcome.matched, outcome.source_type) == (
        "path:/srv/data/**",
        "matched",
        3,
        "PATH",
    )


def test_path_globs_are_extra_to_the_default_set(linux_root: Path) -> None:
    touch(linux_root, "srv/data/a.csv")
    plan = plan_collection(DirectorySource(linux_root), path_globs=["srv/data/*"])
    assert b"var/log/auth.log" in _items(plan)
    assert _items(plan)[b"srv/data/a.csv"] == (None, ("path:srv/data/*",))


def test_path_globs_alone_when_the_os_is_unknown(tmp_path: Path) -> None:
    touch(tmp_path, "srv/data/a.csv")
    plan = plan_collection(DirectorySource(tmp_path), path_globs=["srv/**"])
    assert plan.os_name is None
    assert _items(plan) == {b"srv/data/a.csv": (None, ("path:srv/**",))}
    assert [a.name for a in plan.artifacts] == ["path:srv/**"]


def test_path_glob_matching_nothing_is_missing(tmp_path: Path) -> None:
    plan = plan_collection(DirectorySource(tmp_path), path_globs=["srv/*.csv"])
    [outcome] = plan.artifacts
    assert (outcome.outcome, outcome.reason, outcome.matched) == ("missing", "nothing matches", 0)


def test_path_glob_and_artifacts_together(linux_root: Path) -> None:
    plan = plan_collection(
        DirectorySource(linux_root), artifact_names=["NginxAccessLogs"], path_globs=["etc/*"]
    )
    assert set(_items(plan)) == {b"var/log/nginx/access.log", b"etc/hostname", b"etc/passwd"}


def test_path_glob_with_dotdot_is_a_usage_error(linux_root: Path) -> None:
    with pytest.raises(UsageError, match="must not contain"):
        plan_collection(DirectorySource(linux_root), path_globs=["../etc/*"])


def test_windows_triage_matches_regardless_of_case(windows_root: Path) -> None:
    plan = plan_collection(DirectorySource(windows_root))
    assert plan.os_name == "windows"
    assert _items(plan) == {
        b"Users/bob/AppData/Roaming/Microsoft/Windows/PowerShell/PSReadLine/"
        b"ConsoleHost_history.txt": (None, ("WindowsPowerShellHistory",)),
        b"Users/bob/NTUSER.DAT": (None, ("WindowsUserRegistryFiles",)),
        b"windows/system32/config/SYSTEM": (None, ("WindowsSystemRegistryFiles",)),
        b"windows/system32/winevt/logs/Security.evtx": (None, ("WindowsEventLogs",)),
    }


def test_symlink_out_of_the_root_is_recorded_with_its_target_never_read(
    linux_root: Path,
) -> None:
    os.symlink("/etc/passwd", linux_root / "var/log/auth.log.3")
    plan = plan_collection(DirectorySource(linux_root), artifact_names=["LinuxAuthLogs"])
    [item] = [i for i in plan.items if i.relpath == b"var/log/auth.log.3"]
    assert item.outcome == "symlink"
    assert item.reason == "symlink to /etc/passwd; not followed"
    assert item.info is not None
    assert item.info.link_target == b"/etc/passwd"


def test_symlink_loop_under_a_path_glob(linux_root: Path) -> None:
    touch(linux_root, "srv/data/a")
    os.symlink("../data", linux_root / "srv/data/loop")
    plan = plan_collection(DirectorySource(linux_root), path_globs=["srv/**"])
    assert _named(plan, "path:srv/**") == {
        b"srv/data/a": (None, ("path:srv/**",)),
        b"srv/data/loop": ("symlink", ("path:srv/**",)),
    }


def test_fifo_is_special_and_never_opened(linux_root: Path) -> None:
    os.mkfifo(linux_root / "var/log/auth.pipe")
    plan = plan_collection(DirectorySource(linux_root), artifact_names=["LinuxAuthLogs"])
    [item] = [i for i in plan.items if i.relpath == b"var/log/auth.pipe"]
    assert (item.outcome, item.reason) == ("special", "fifo; never opened")


def test_odd_file_names_are_planned(linux_root: Path) -> None:
    touch(linux_root, b"var/log/bad\xff.log")
    touch(linux_root, b"var/log/new\nline.log")
    plan = plan_collection(DirectorySource(linux_root), path_globs=["var/log/*.log"])
    assert set(_named(plan, "path:var/log/*.log")) == {
        b"var/log/auth.log",
        b"var/log/bad\xff.log",
        b"var/log/new\nline.log",
    }


def test_unknown_artifact_is_refused_before_walking(linux_root: Path) -> None:
    with pytest.raises(UnknownArtifact) as caught:
        plan_collection(DirectorySource(linux_root), artifact_names=["LinuxAuthLog"])
    assert "'LinuxAuthLog'" in str(caught.value)
    assert "LinuxAuthLogs" in str(caught.value)


def test_unsupported_source_type_is_reported(windows_root: Path) -> None:
    plan = plan_collection(DirectorySource(windows_root), artifact_names=["WindowsRunKeys"])
    [outcome] = plan.artifacts
    assert (outcome.name, outcome.outcome, outcome.source_type) == (
        "WindowsRunKeys",
        "unsupported",
        "REGISTRY_KEY",
    )
    assert outcome.reason == "REGISTRY_KEY sources cannot be collected from a folder source"
    assert plan.items == ()


def test_artifact_for_another_os_is_unsupported(linux_root: Path) -> None:
    plan = plan_collection(DirectorySource(linux_root), artifact_names=["WindowsPrefetchFiles"])
    assert _outcome(plan, "WindowsPrefetchFiles") == (
        "unsupported",
        "no source for linux; defined for Windows",
    )


def test_missing_pattern_is_reported(linux_root: Path) -> None:
    plan = plan_collection(DirectorySource(linux_root), artifact_names=["LinuxSysLogFiles"])
    [outcome] = plan.artifacts
    assert (outcome.outcome, outcome.matched, outcome.patterns) == (
        "missing",
        0,
        ("var/log/syslog*",),
    )


def test_missing_says_which_symlink_was_not_followed(linux_root: Path) -> None:
    os.symlink("/run", linux_root / "var/run")
    plan = plan_collection(DirectorySource(linux_root), artifact_names=["LinuxUtmpFiles"])
    assert _outcome(plan, "LinuxUtmpFiles") == (
        "missing",
        "nothing matches; var/run is a symlink to /run, not followed",
    )


def test_unresolved_variable_is_reported(windows_root: Path) -> None:
    os.rename(windows_root / "windows", windows_root / "not-windows")
    plan = plan_collection(
        DirectorySource(windows_root), artifact_names=["WindowsPrefetchFiles"], os_name="windows"
    )
    [outcome] = plan.artifacts
    assert (outcome.outcome, outcome.reason) == (
        "unresolved",
        "no value for %%environ_systemroot%%",
    )
    assert outcome.patterns == ("%%environ_systemroot%%\\Prefetch\\*.pf",)


def test_too_large(linux_root: Path) -> None:
    touch(linux_root, "var/log/auth.log.4", b"x" * 100)
    plan = plan_collection(
        DirectorySource(linux_root), artifact_names=["LinuxAuthLogs"], max_file_size=50
    )
    items = {i.relpath: (i.outcome, i.reason) for i in plan.items}
    assert items[b"var/log/auth.log.4"] == ("too_large", "100 bytes, over the limit of 50 bytes")
    assert items[b"var/log/auth.log"] == (None, "")


def test_unlistable_folder_is_recorded_and_the_plan_goes_on(
    linux_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = DirectorySource.scandir

    def scandir(self: DirectorySource, relpath: bytes):  # noqa: ANN202
        if relpath == b"var/log":
            raise PermissionError(13, "Permission denied")
        return real(self, relpath)

    monkeypatch.setattr(DirectorySource, "scandir", scandir)
    plan = plan_collection(
        DirectorySource(linux_root), artifact_names=["LinuxAuthLogs", "BashShellHistoryFile"]
    )
    assert _outcome(plan, "LinuxAuthLogs") == (
        "error",
        "could not search everything; cannot list var/log: EACCES",
    )
    assert _outcome(plan, "BashShellHistoryFile")[0] == "matched"
    items = {i.relpath: (i.outcome, i.reason) for i in plan.items}
    assert items[b"var/log"] == ("unreadable", "cannot list var/log: EACCES")
    assert items[b"root/.bash_history"] == (None, "")


def test_os_must_be_known_for_the_default_set(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as caught:
        plan_collection(DirectorySource(tmp_path))
    assert str(caught.value) == f"cannot tell the OS of {tmp_path}; pass --os"


def test_os_given_overrides_detection(linux_root: Path) -> None:
    plan = plan_collection(DirectorySource(linux_root), os_name="Darwin")
    assert plan.os_name == "darwin"
    assert {a.name for a in plan.artifacts} >= {"MacOSSystemLogFile", "UnixPasswdFile"}
    with pytest.raises(UsageError, match="unknown OS"):
        plan_collection(DirectorySource(linux_root), os_name="beos")


EXTRA = """\
name: TestLocation
doc: A PATH source.
sources:
- type: PATH
  attributes: {paths: ['/srv/data']}
---
name: TestFolder
doc: A DIRECTORY source.
sources:
- type: DIRECTORY
  attributes: {paths: ['/srv/data']}
---
name: TestLiteralFolder
doc: A FILE source naming a folder, and one with a wildcard.
sources:
- type: FILE
  attributes: {paths: ['/srv/data', '/srv/*']}
"""


def test_path_directory_and_folder_matches(linux_root: Path, tmp_path: Path) -> None:
    touch(linux_root, "srv/data/top.txt")
    touch(linux_root, "srv/data/sub/deeper.txt")
    extra = tmp_path / "defs"
    extra.mkdir()
    (extra / "extra.yaml").write_text(EXTRA)
    registry = load_registry([extra])
    plan = plan_collection(
        DirectorySource(linux_root),
        artifact_names=["TestLocation", "TestFolder", "TestLiteralFolder"],
        registry=registry,
    )
    assert _items(plan) == {
        b"srv/data": ("directory", ("TestLiteralFolder", "TestLocation")),
        b"srv/data/top.txt": (None, ("TestFolder",)),
    }
    assert [(a.name, a.matched) for a in plan.artifacts] == [
        ("TestLocation", 1),
        ("TestFolder", 1),
        ("TestLiteralFolder", 1),
    ]


def test_describe_lists_definitions_for_an_os() -> None:
    rows = describe(load_registry(), "linux")
    names = [r[0] for r in rows]
    assert "LinuxAuthLogs" in names
    assert "WindowsRunKeys" not in names
    assert ("LinuxAuthLogs", "Linux authentication log files.", ("Linux",)) in rows
