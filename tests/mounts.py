"""A small real file system for a test: tmpfs mounted on a temporary folder (root only).

Tests that need a file system's own behaviour (running out of space, recording access times,
times beyond the year 9999) mount one instead of faking the system call; without the
privilege to mount, they skip and say so.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def tmpfs(path: Path, *, size: str = "4m", options: str = "") -> Iterator[Path]:
    """Mount a tmpfs of ``size`` on ``path`` (created) with extra mount ``options``;
    unmounted on exit. Skips the test when it cannot be mounted (not root)."""
    path.mkdir(parents=True, exist_ok=True)
    opts = ",".join(filter(None, [f"size={size}", options]))
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(path)],  # noqa: S607
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)  # noqa: S607
