from __future__ import annotations

import os
from pathlib import Path

import pytest

from sealtrail.collectors.source import (
    DirectorySource,
    FileInfo,
    SwappedFile,
    excluded_mount_points,
)
from sealtrail.errors import CollectionError, UsageError
from tests.collectors.conftest import touch


def test_missing_root_is_a_usage_error_with_one_line(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as info:
        DirectorySource(tmp_path / "nope")
    assert str(info.value) == f"source {tmp_path / 'nope'} does not exist"
    assert "\n" not in str(info.value)


def test_root_that_is_a_file_is_a_usage_error(tmp_path: Path) -> None:
    path = touch(tmp_path, "f")
    with pytest.raises(UsageError, match="is not a directory"):
        DirectorySource(path)


def test_lstat_reports_kinds_without_following(linux_root: Path) -> None:
    os.symlink("/etc/passwd", linux_root / "outside")
    os.mkfifo(linux_root / "pipe")
    source = DirectorySource(linux_root)
    assert source.lstat(b"etc/passwd").kind == "file"
    assert source.lstat(b"etc").kind == "dir"
    link = source.lstat(b"outside")
    assert (link.kind, link.link_target) == ("symlink", b"/etc/passwd")
    assert source.lstat(b"pipe").kind == "fifo"
    info = source.lstat(b"/etc//passwd")
    assert info.relpath == b"etc/passwd"
    assert info.size == len((linux_root / "etc/passwd").read_bytes())


def test_lstat_never_resolves_through_a_symlinked_folder(linux_root: Path) -> None:
    os.symlink(linux_root / "etc", linux_root / "etc2")
    source = DirectorySource(linux_root)
    with pytest.raises(OSError):  # noqa: PT011 - ELOOP or ENOTDIR depending on the kernel
        source.lstat(b"etc2/passwd")


def test_dotdot_is_refused(linux_root: Path) -> None:
    with pytest.raises(UsageError, match=r"'\.\.'"):
        DirectorySource(linux_root).lstat(b"etc/../../x")


def test_listdir_is_sorted_bytes_and_keeps_non_utf8_names(tmp_path: Path) -> None:
    touch(tmp_path, b"b.log")
    touch(tmp_path, b"bad\xff.log")
    touch(tmp_path, b"a.log")
    assert DirectorySource(tmp_path).listdir(b"") == [b"a.log", b"b.log", b"bad\xff.log"]


def test_from_stat_fills_every_field(tmp_path: Path) -> None:
    path = touch(tmp_path, "f", b"12345")
    st = os.lstat(path)
    info = FileInfo.from_stat(b"f", st)
    assert (info.kind, info.size, info.inode, info.device) == ("file", 5, st.st_ino, st.st_dev)
    assert info.mtime_ns == st.st_mtime_ns
    assert info.link_target is None


def test_open_regular_reads_the_listed_file(linux_root: Path) -> None:
    source = DirectorySource(linux_root)
    info = source.lstat(b"var/log/auth.log")
    with source.open_regular(b"var/log/auth.log", info) as f:
        assert f.read() == b"Accepted password for alice\n"


def test_file_renamed_over_after_listing_is_a_swapped_file(linux_root: Path) -> None:
    source = DirectorySource(linux_root)
    info = source.lstat(b"var/log/auth.log")
    other = touch(linux_root, "var/log/other", b"forged")
    os.rename(other, linux_root / "var/log/auth.log")
    with pytest.raises(SwappedFile) as caught:
        source.open_regular(b"var/log/auth.log", info)
    assert caught.value.relpath == b"var/log/auth.log"
    assert isinstance(caught.value, CollectionError)
    assert "var/log/auth.log" in str(caught.value)


def test_symlink_swapped_in_after_listing_is_not_followed(linux_root: Path) -> None:
    source = DirectorySource(linux_root)
    info = source.lstat(b"var/log/auth.log")
    os.unlink(linux_root / "var/log/auth.log")
    os.symlink("/etc/passwd", linux_root / "var/log/auth.log")
    with pytest.raises(SwappedFile):
        source.open_regular(b"var/log/auth.log", info)


def test_fifo_swapped_in_after_listing_is_refused_without_blocking(linux_root: Path) -> None:
    source = DirectorySource(linux_root)
    info = source.lstat(b"var/log/auth.log")
    os.unlink(linux_root / "var/log/auth.log")
    os.mkfifo(linux_root / "var/log/auth.log")
    with pytest.raises(SwappedFile, match="no longer a regular file"):
        source.open_regular(b"var/log/auth.log", info)


def test_folder_swapped_for_a_symlink_is_refused(linux_root: Path, tmp_path: Path) -> None:
    source = DirectorySource(linux_root)
    info = source.lstat(b"var/log/auth.log")
    os.rename(linux_root / "var/log", tmp_path / "moved")
    os.symlink(tmp_path / "moved", linux_root / "var/log")
    with pytest.raises(SwappedFile):
        source.open_regular(b"var/log/auth.log", info)


def test_read_small(linux_root: Path) -> None:
    os.mkfifo(linux_root / "pipe")
    source = DirectorySource(linux_root)
    assert source.read_small(b"etc/hostname") == b"web01\n"
    assert source.read_small(b"pipe") is None
    assert source.read_small(b"missing") is None
    assert source.read_small(b"etc/passwd", limit=10) is None


def test_host_path(linux_root: Path) -> None:
    source = DirectorySource(linux_root)
    assert source.host_path(b"etc/passwd") == os.fsencode(linux_root / "etc/passwd")


def test_detect_os_windows_in_any_case(windows_root: Path) -> None:
    assert DirectorySource(windows_root).detect_os() == "windows"


def test_detect_os_linux(linux_root: Path) -> None:
    assert DirectorySource(linux_root).detect_os() == "linux"


def test_detect_os_darwin(tmp_path: Path) -> None:
    (tmp_path / "System/Library/CoreServices").mkdir(parents=True)
    os.symlink("private/etc", tmp_path / "etc")
    assert DirectorySource(tmp_path).detect_os() == "darwin"


def test_detect_os_unknown(tmp_path: Path) -> None:
    assert DirectorySource(tmp_path).detect_os() is None


def test_hostname(linux_root: Path, windows_root: Path) -> None:
    assert DirectorySource(linux_root).hostname() == "web01"
    assert DirectorySource(windows_root).hostname() is None


MOUNTINFO = """\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
23 22 0:21 / /proc rw,nosuid - proc proc rw
24 22 0:22 / /sys rw - sysfs sysfs rw
25 24 0:23 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw
26 22 0:24 / /run rw - tmpfs tmpfs rw
27 26 0:25 / /run/user/1000 rw - tmpfs tmpfs rw
28 22 0:26 / /tmp rw - tmpfs tmpfs rw
29 22 0:27 / /mnt/share\\040data rw - nfs4 srv:/data rw
30 22 0:28 / /home/alice/remote rw - fuse.sshfs alice@h: rw
31 22 8:2 / /boot rw - ext4 /dev/sda2 rw
"""


def test_excluded_mount_points_from_mountinfo() -> None:
    assert excluded_mount_points(MOUNTINFO) == [
        b"proc",
        b"sys",
        b"sys/fs/cgroup",
        b"run",
        b"run/user/1000",
        b"mnt/share data",
        b"home/alice/remote",
    ]


def test_live_root_excludes_kernel_views() -> None:
    source = DirectorySource(Path("/"))
    assert source.is_live
    assert {b"proc", b"sys", b"dev", b"run"} <= source.excluded_prefixes


def test_folder_source_excludes_nothing_by_default(linux_root: Path) -> None:
    assert DirectorySource(linux_root).excluded_prefixes == frozenset()


def test_open_falls_back_without_noatime_when_the_kernel_refuses_it(
    linux_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    noatime = getattr(os, "O_NOATIME", 0)
    if not noatime:
        pytest.skip("no O_NOATIME on this platform")
    real_open = os.open
    seen: list[bool] = []

    def fake_open(path, flags, *args, **kwargs):  # noqa: ANN001, ANN202
        if flags & noatime:
            seen.append(True)
            raise PermissionError(1, "Operation not permitted")
        return real_open(path, flags, *args, **kwargs)

    source = DirectorySource(linux_root)
    info = source.lstat(b"etc/hostname")
    monkeypatch.setattr(os, "open", fake_open)
    with source.open_regular(b"etc/hostname", info) as f:
        assert f.read() == b"web01\n"
    assert seen == [True]
