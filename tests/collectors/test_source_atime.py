"""Collecting from a folder leaves its folders' access times alone (``O_NOATIME`` on every
folder listed). Issue 10: 70 folders and 8 symlinks had new atimes after a collection from a
relatime mount. Symlinks still get one where the file system records it: ``readlink`` has no
``O_NOATIME`` (docs/collection.md, "Live hosts")."""

from __future__ import annotations

import os
from pathlib import Path

from sealtrail.custody.case import Case
from sealtrail.custody.verify import check_case
from tests.conftest import collect, make_linux_host
from tests.mounts import tmpfs

OLD = 1_600_000_000 * 1_000_000_000  # 2020-09-13: older than any mtime, so relatime too updates


def _paths(root: Path) -> list[Path]:
    """Every path below ``root`` and itself (listing folders moves their atimes: call this
    before the times are set)."""
    out = [root]
    for folder, dirs, files in os.walk(root):
        out += [Path(folder) / name for name in [*dirs, *files]]
    return out


def _atimes(root: Path, paths: list[Path]) -> dict[str, int]:
    """lstat only: it never changes an atime."""
    return {str(p.relative_to(root)): p.lstat().st_atime_ns for p in paths}


def test_folder_and_file_atimes_unchanged_on_a_strictatime_mount(tmp_path, keyring):
    case = Case.init(tmp_path / "case", title="t", examiner="Alice", key=keyring.alice.key)
    with tmpfs(tmp_path / "src", size="4m", options="strictatime") as mounted:
        host = make_linux_host(mounted / "host")
        os.symlink("auth.log", host / "var" / "log" / "auth.link")
        paths = _paths(host)
        for path in paths:
            os.utime(path, ns=(OLD, OLD), follow_symlinks=False)
        before = _atimes(host, paths)
        folders = sum(path.is_dir() and not path.is_symlink() for path in paths)
        assert set(before.values()) == {OLD}

        collect(case, keyring.alice.key, host, paths=("**",))
        after = _atimes(host, paths)

    assert check_case(case.root, [keyring.alice.key.public]).ok
    changed = sorted(path for path, atime in after.items() if atime != before[path])
    # readlink has no O_NOATIME: the symlink's own atime is the one that moves (tmpfs records
    # it; docs/collection.md says so)
    assert changed == ["var/log/auth.link"]
    assert folders > 5
