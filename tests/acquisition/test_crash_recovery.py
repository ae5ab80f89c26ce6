"""A collection killed at every step boundary leaves a case the next writer makes verifiable.

Not timing luck: the test hook ``SEALTRAIL_CRASH_AT=<step>[:<n>]`` (sealtrail/crashpoint.py,
inert unless set) makes the ``sealtrail`` command SIGKILL itself at that named step. For each
kind of collection (folder, image, whole-image acquisition) and each step a collection reaches
(its own steps, then each ledger step of the ``collection_started`` append, ``:1``, and of the
``bundle_sealed`` append, ``:2``), a real command runs in a subprocess and is killed there.
Then the next writer (``ledger record``) runs, and ``verify`` must exit 0 (notices allowed),
every started collection must have an outcome, the bundle must be recorded as sealed exactly
when the kill came after its rename, and ``ingest`` must work.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from sealtrail.cli.main import cli
from sealtrail.crashpoint import CRASH_ENV
from sealtrail.custody.ledger import Ledger
from tests.conftest import make_linux_host

FIXTURE_IMAGE = Path(__file__).resolve().parents[2] / "fixtures" / "images" / "small.fat.img"

COLLECTION_STEPS = ("collection_started", "members_written", "manifest_written",
                    "bundle_fsynced", "bundle_renamed", "bundle_dir_fsynced",
                    "bundle_sealed_recorded")
LEDGER_STEPS = ("ledger_torn_write", "ledger_unterminated_write", "ledger_written",
                "ledger_fsynced")
# Where the bundle is already sealed (renamed to .stb) when the kill comes.
SEALED_BY_THEN = {"bundle_renamed", "bundle_dir_fsynced", "bundle_sealed_recorded",
                  *(f"{step}:2" for step in LEDGER_STEPS)}
CRASHES = [*COLLECTION_STEPS, *(f"{step}:{n}" for step in LEDGER_STEPS for n in (1, 2))]
KINDS = ("folder", "image", "acquisition")


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """Keys, a host folder and an empty case, copied for each kill."""
    root = tmp_path_factory.mktemp("crash-template")
    runner = CliRunner()
    assert runner.invoke(cli, ["keys", "generate", "--name", "alice", "--out",
                               str(root / "keys")]).exit_code == 0
    make_linux_host(root / "host")
    result = runner.invoke(cli, ["case", "init", str(root / "case"), "--title", "crash",
                                 "--examiner", "Alice", "--key", str(root / "keys/alice.key")])
    assert result.exit_code == 0, result.output
    return root


def _command(kind: str, root: Path) -> list[str]:
    key = ["--key", str(root / "keys/alice.key")]
    if kind == "folder":
        return ["collect", str(root / "case"), "--source", str(root / "host"),
                "--path", "srv/data/**", *key]
    if kind == "image":
        return ["collect", str(root / "case"), "--source", str(FIXTURE_IMAGE), "--path", "**",
                *key]
    return ["acquire", str(root / "case"), "--source", str(FIXTURE_IMAGE), *key]


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("crash", CRASHES)
def test_kill_at_every_step_boundary_leaves_a_case_that_verifies_and_ingests(
        tmp_path, template, kind, crash):
    root = tmp_path / "w"
    shutil.copytree(template, root)
    case = root / "case"
    env = {**os.environ, CRASH_ENV: crash}
    killed = subprocess.run(
        [sys.executable, "-c", "from sealtrail.cli.main import main; main()",
         *_command(kind, root)],
        env=env, capture_output=True, timeout=300, check=False)
    assert killed.returncode == -signal.SIGKILL, (crash, killed.stderr.decode()[-2000:])

    runner = CliRunner()
    key = str(root / "keys/alice.key")
    record = runner.invoke(cli, ["ledger", "record", str(case), "--key", key,
                                 "--action", "note", "--note", "after the crash"])
    assert record.exit_code == 0, record.output
    verify = runner.invoke(cli, ["verify", str(case), "--trust", str(root / "keys/alice.pub")])
    assert verify.exit_code == 0, (crash, verify.output)
    assert "no recorded outcome" not in verify.output

    actions = [e.action for e in Ledger.open(case / "ledger.jsonl").entries()]
    stbs = list((case / "bundles").glob("*.stb"))
    if crash in SEALED_BY_THEN:
        assert actions.count("bundle_sealed") == 1, actions
        assert len(stbs) == 1
    else:
        assert "bundle_sealed" not in actions
        assert not stbs
        if crash != "ledger_torn_write:1":  # a torn collection_started was never acknowledged
            assert actions.count("collection_failed") == 1, actions
    assert actions.count("collection_started") == (0 if crash == "ledger_torn_write:1" else 1)

    ingest = runner.invoke(cli, ["ingest", str(case), "--key", key, "--workers", "1"])
    assert ingest.exit_code == 0, (crash, ingest.output)
