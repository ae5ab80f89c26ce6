"""SigmaHQ's regression data: each EVTX, ingested for real, triggers the rule its info.yml names.

All 192 EVTX files are collected into one case and ingested once (about 2 s); each case runs
its rule and counts the evidence rows that come from its own file.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest
import yaml

from sealtrail.findings.sigma import sigma_source
from tests.findings.sigma.helpers import create_views, ingested_db
from tests.shared_data import ABSENT, sigma_dir, sigma_path

REGRESSION = "regression_data/rules"


def _cases() -> list[str]:
    # Collected at import time to give each file its own test id; when the folder is absent
    # one placeholder id remains and the test skips (fails under the switch) through sigma_path.
    folder = sigma_dir() / REGRESSION
    found = sorted(str(p.parent.relative_to(folder)) for p in folder.rglob("info.yml")
                   if any(p.parent.glob("*.evtx")))
    return found or [ABSENT]


@pytest.fixture(scope="module")
def rule_paths() -> dict[str, Path]:
    """Rule id -> rule file, over SigmaHQ's rules folder."""
    paths = {}
    for path in sigma_path("rules").rglob("*.yml"):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.startswith("id: "):
                paths[line[4:].strip()] = path
                break
    return paths


@pytest.fixture(scope="module")
def regression_db(tmp_path_factory: pytest.TempPathFactory) -> duckdb.DuckDBPyConnection:
    folder = sigma_path(REGRESSION)
    root = tmp_path_factory.mktemp("sigma")
    host = root / "host"
    for evtx in folder.rglob("*.evtx"):
        target = host / "evtx" / evtx.relative_to(folder)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(evtx, target)
    con = ingested_db(root, host, "evtx/**")
    yield con
    con.close()


@pytest.mark.parametrize("case", _cases())
def test_regression_evtx_triggers_its_rule(case: str, rule_paths: dict[str, Path],
                                            regression_db: duckdb.DuckDBPyConnection) -> None:
    folder = sigma_path(REGRESSION) / case
    info = yaml.safe_load((folder / "info.yml").read_text(encoding="utf-8"))
    rule_id = info["rule_metadata"][0]["id"]
    source = sigma_source([rule_paths[rule_id]], levels=None, statuses=None)
    assert source.failures == ()
    [rule] = source.rules
    create_views(regression_db, source)
    member = "/evtx/" + str(next(folder.glob("*.evtx")).relative_to(sigma_path(REGRESSION)))
    matched = regression_db.execute(
        f"SELECT count(*) FROM ({rule.sql}) AS r JOIN events USING (event_uid) "  # noqa: S608
        "WHERE events.member_path = ?", [member]).fetchone()[0]
    assert matched >= 1, f"{rule.meta.title} (by {rule.meta.author}) did not fire on {member}"
