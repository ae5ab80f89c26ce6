from __future__ import annotations

import os
from pathlib import Path

import pytest

from sealtrail.collectors.globbing import MAX_DEPTH, WalkProblem, glob
from sealtrail.collectors.source import DirectorySource
from sealtrail.errors import UsageError
from tests.collectors.conftest import touch


def _paths(root: Path, pattern: str, *, ci: bool = False, artifact: bool = True) -> set[bytes]:
    source = DirectorySource(root)
    return {
        i.relpath for i in glob(source, pattern, case_insensitive=ci, artifact_semantics=artifact)
    }


@pytest.fixture
def deep(tmp_path: Path) -> Path:
    for rel in ("d/f0", "d/a/f1", "d/a/b/f2", "d/a/b/c/f3", "d/a/b/c/e/f4"):
        touch(tmp_path, rel)
    return tmp_path


def test_artifact_double_star_n_limits_depth(deep: Path) -> None:
    assert _paths(deep, "d/**2") == {b"d/f0", b"d/a", b"d/a/f1", b"d/a/b"}


def test_artifact_double_star_defaults_to_three_levels(deep: Path) -> None:
    found = _paths(deep, "/d/**")
    assert b"d/a/b/f2" in found
    assert b"d/a/b/c/f3" not in found


def test_artifact_double_star_in_the_middle_needs_at_least_one_level(deep: Path) -> None:
    assert _paths(deep, "d/**/f2") == {b"d/a/b/f2"}
    assert _paths(deep, "d/**/f0") == set()


def test_adhoc_double_star_is_unbounded_and_may_stand_for_nothing(deep: Path) -> None:
    found = _paths(deep, "d/**", artifact=False)
    assert {b"d/f0", b"d/a/b/c/e/f4"} <= found
    assert _paths(deep, "d/**/f0", artifact=False) == {b"d/f0"}


def test_wildcards_stay_within_one_component(deep: Path) -> None:
    assert _paths(deep, "d/*") == {b"d/f0", b"d/a"}
    assert _paths(deep, "d/f?") == {b"d/f0"}
    assert _paths(deep, "d/[ab]/f1") == {b"d/a/f1"}


def test_case_insensitive_matching(windows_root: Path) -> None:
    found = _paths(windows_root, "Windows/System32/winevt/Logs/*.EVTX", ci=True)
    assert found == {b"windows/system32/winevt/logs/Security.evtx"}
    assert _paths(windows_root, "Windows/System32/winevt/Logs/*.EVTX") == set()


def test_symlink_loop_terminates_and_is_yielded_as_a_symlink(tmp_path: Path) -> None:
    touch(tmp_path, "srv/data/a.txt")
    os.symlink(".", tmp_path / "srv/data/loop")
    os.symlink("..", tmp_path / "srv/data/up")
    source = DirectorySource(tmp_path)
    found = {
        i.relpath: i.kind
        for i in glob(source, "srv/**", case_insensitive=False, artifact_semantics=False)
    }
    assert found == {
        b"srv/data": "dir",
        b"srv/data/a.txt": "file",
        b"srv/data/loop": "symlink",
        b"srv/data/up": "symlink",
    }


def test_symlinked_folder_in_a_pattern_is_reported_not_followed(tmp_path: Path) -> None:
    touch(tmp_path, "real/utmp")
    os.makedirs(tmp_path / "var")
    os.symlink("../real", tmp_path / "var/run")
    problems: list[WalkProblem] = []
    source = DirectorySource(tmp_path)
    found = list(
        glob(
            source,
            "var/run/utmp*",
            case_insensitive=False,
            artifact_semantics=True,
            problems=problems,
        )
    )
    assert found == []
    assert problems == [
        WalkProblem(b"var/run", "symlink", "var/run is a symlink to ../real, not followed")
    ]


def test_odd_names_are_found(tmp_path: Path) -> None:
    touch(tmp_path, b"var/log/bad\xff.log")
    touch(tmp_path, b"var/log/new\nline.log")
    touch(tmp_path, b"var/log/plain.txt")
    assert _paths(tmp_path, "var/log/*.log") == {b"var/log/bad\xff.log", b"var/log/new\nline.log"}


def test_unlistable_folder_is_a_problem_and_the_walk_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    touch(tmp_path, "srv/locked/secret")
    touch(tmp_path, "srv/open/file")
    real = DirectorySource.scandir

    def scandir(self: DirectorySource, relpath: bytes):  # noqa: ANN202
        if relpath == b"srv/locked":
            raise PermissionError(13, "Permission denied")
        return real(self, relpath)

    monkeypatch.setattr(DirectorySource, "scandir", scandir)
    problems: list[WalkProblem] = []
    found = {
        i.relpath
        for i in glob(
            DirectorySource(tmp_path),
            "srv/*/*",
            case_insensitive=False,
            artifact_semantics=True,
            problems=problems,
        )
    }
    assert found == {b"srv/open/file"}
    assert problems == [
        WalkProblem(b"srv/locked", "unreadable", "cannot list srv/locked: EACCES", "EACCES")
    ]


def test_excluded_prefix_is_not_entered(tmp_path: Path) -> None:
    touch(tmp_path, "proc/1/status")
    touch(tmp_path, "etc/hostname")
    source = DirectorySource(tmp_path, exclude=[b"proc"])
    problems: list[WalkProblem] = []
    found = {
        i.relpath
        for i in glob(
            source, "**", case_insensitive=False, artifact_semantics=False, problems=problems
        )
    }
    assert found == {b"etc", b"etc/hostname"}
    assert [p.kind for p in problems] == ["excluded"]
    assert _paths(tmp_path, "proc/1/status") == {b"proc/1/status"}  # only live roots exclude


def test_adhoc_walk_stops_at_the_depth_cap_and_says_so(tmp_path: Path) -> None:
    deep = "/".join(["d"] * (MAX_DEPTH + 2))
    touch(tmp_path, deep + "/f")
    problems: list[WalkProblem] = []
    found = list(
        glob(
            DirectorySource(tmp_path),
            "**",
            case_insensitive=False,
            artifact_semantics=False,
            problems=problems,
        )
    )
    assert len(found) == MAX_DEPTH
    assert [p.kind for p in problems] == ["depth_limit"]


def test_dotdot_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="must not contain"):
        glob(DirectorySource(tmp_path), "a/../..", case_insensitive=False, artifact_semantics=False)
