"""Small host trees built in tmp_path for the collector tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

PASSWD = (
    b"root:x:0:0:root:/root:/bin/bash\n"
    b"alice:x:1000:1000:Alice:/home/alice:/bin/bash\n"
    b"bob:x:1001:1001:Bob:/home/bob:/bin/zsh\n"
    b"ghost:x:1002:1002:Gone:/home/ghost:/bin/sh\n"
)


def touch(root: Path, relpath: str | bytes, data: bytes = b"x") -> Path:
    """Create a file (and its folders) below root; relpath may be bytes (any name)."""
    raw = os.fsencode(root) + b"/" + (relpath if isinstance(relpath, bytes) else relpath.encode())
    os.makedirs(os.path.dirname(raw), exist_ok=True)
    with open(raw, "wb") as f:
        f.write(data)
    return Path(os.fsdecode(raw))


@pytest.fixture
def linux_root(tmp_path: Path) -> Path:
    """A Linux-like root: two users with homes (alice, bob), one whose home is gone."""
    root = tmp_path / "linux"
    touch(root, "etc/passwd", PASSWD)
    touch(root, "etc/hostname", b"web01\n")
    touch(root, "var/log/auth.log", b"Accepted password for alice\n")
    touch(root, "var/log/auth.log.1")
    touch(root, "var/log/auth.log.2.gz")
    touch(root, "var/log/nginx/access.log")
    touch(root, "home/alice/.bash_history", b"ls\n")
    (root / "home/bob").mkdir(parents=True)
    touch(root, "root/.bash_history", b"id\n")
    return root


@pytest.fixture
def windows_root(tmp_path: Path) -> Path:
    """A Windows-like root whose folder names are not in the usual case."""
    root = tmp_path / "win"
    touch(root, "windows/system32/winevt/logs/Security.evtx")
    touch(root, "windows/system32/config/SYSTEM")
    touch(root, "Users/bob/NTUSER.DAT")
    touch(
        root,
        "Users/bob/AppData/Roaming/Microsoft/Windows/PowerShell/PSReadLine/ConsoleHost_history.txt",
    )
    (root / "Users/Public").mkdir(parents=True)
    (root / "Users/Default User").mkdir(parents=True)
    return root
