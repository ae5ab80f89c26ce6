"""A progress line on a terminal (files, bytes, rate); silent when stderr is not a terminal."""

from __future__ import annotations

import sys
import time

import click


class ProgressLine:
    def __init__(self, total_files: int, total_bytes: int, enabled: bool | None = None) -> None:
        self.total_files = total_files
        self.total_bytes = total_bytes
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.start = time.monotonic()
        self._last = 0.0

    def __call__(self, files: int, nbytes: int) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last < 0.2 and files < self.total_files:
            return
        self._last = now
        rate = nbytes / max(now - self.start, 1e-6) / 1e6
        click.echo(
            f"\r{files}/{self.total_files} items  {nbytes / 1e6:,.1f}/"
            f"{self.total_bytes / 1e6:,.1f} MB  {rate:,.0f} MB/s ",
            err=True,
            nl=False,
        )

    def members(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last < 0.2 and done < total:
            return
        self._last = now
        click.echo(f"\rparsed {done}/{total} members ", err=True, nl=False)

    def done(self) -> None:
        if self.enabled:
            click.echo("", err=True)
