"""An ingested copy of the bundled web01 host, shared by analysis tests."""

from __future__ import annotations

import multiprocessing
import shutil
from pathlib import Path

import pytest

from fixtures.restore_mtimes import restore_mtimes
from sealtrail.analysis import sandbox
from sealtrail.analysis.ingest import ingest_case
from sealtrail.custody.case import Case
from tests.conftest import collect

WEB01 = Path(__file__).resolve().parents[2] / "fixtures" / "hosts" / "web01"


@pytest.fixture
def forked_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Parser workers forked from the test process, so that parsers patched in it reach them
    (the real pool starts them from the fork server, which never sees a patch)."""
    monkeypatch.setattr(sandbox, "worker_context", lambda: multiprocessing.get_context("fork"))


@pytest.fixture
def web01_host(tmp_path: Path) -> Path:
    host = tmp_path / "web01"
    shutil.copytree(WEB01, host, symlinks=True)
    restore_mtimes(host, WEB01.parent / "web01.truth.json")
    return host


@pytest.fixture
def web01_case(tmp_path: Path, keyring, web01_host: Path) -> Case:
    case = Case.init(tmp_path / "case", title="web01", examiner="Alice", key=keyring.alice.key)
    collect(case, keyring.alice.key, web01_host, paths=("srv/**",))
    return case


@pytest.fixture
def ingested(web01_case: Case, keyring) -> Case:
    ingest_case(web01_case, keyring.alice.key, pinned=[keyring.alice.key.public], workers=2)
    return web01_case
