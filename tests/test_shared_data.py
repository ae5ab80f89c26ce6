"""SEALTRAIL_REQUIRE_SHARED: a test whose shared data is absent skips, or fails under the switch.

Each case runs pytest in a subprocess with the shared folders pointed at an empty one.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

CHECKOUT = Path(__file__).resolve().parent.parent

TINY = '''
from tests.shared_data import upstream_path


def test_needs_upstream():
    upstream_path("evtx/System.evtx")
'''


def run_pytest(tmp_path: Path, switch: str | None, *args: str) -> subprocess.CompletedProcess:
    empty = tmp_path / "empty"
    empty.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k != "SEALTRAIL_REQUIRE_SHARED"}
    env.update(SEALTRAIL_UPSTREAM=str(empty), SEALTRAIL_VECTORS=str(empty),
               PYTHONPATH=str(CHECKOUT))
    if switch is not None:
        env["SEALTRAIL_REQUIRE_SHARED"] = switch
    return subprocess.run(  # noqa: S603 - this interpreter, fixed arguments
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rfs", *args],
        cwd=CHECKOUT, env=env, capture_output=True, text=True, timeout=300, check=False,
    )


@pytest.mark.parametrize("switch", [None, "0"])
def test_absent_shared_data_skips_without_the_switch(tmp_path, switch):
    (tmp_path / "test_tiny.py").write_text(TINY)
    result = run_pytest(tmp_path, switch, str(tmp_path / "test_tiny.py"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 skipped" in result.stdout
    assert f"{tmp_path / 'empty' / 'evtx/System.evtx'} is absent" in result.stdout


def test_absent_shared_data_fails_under_the_switch(tmp_path):
    (tmp_path / "test_tiny.py").write_text(TINY)
    result = run_pytest(tmp_path, "1", str(tmp_path / "test_tiny.py"))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 failed" in result.stdout
    assert "skipped" not in result.stdout
    assert f"{tmp_path / 'empty' / 'evtx/System.evtx'} is absent" in result.stdout
    assert "SEALTRAIL_REQUIRE_SHARED is set, so this fails instead of skipping" in result.stdout


def test_a_test_over_every_shared_file_keeps_one_failing_case_when_they_are_absent(tmp_path):
    """Parametrised over the files of an absent folder: one <absent> case each, not zero."""
    module = "tests/custody/test_merkle.py"
    result = run_pytest(tmp_path, "1", module, "-k", "inclusion_vector or consistency_vector")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "2 failed" in result.stdout
    assert "test_inclusion_vector[<absent>]" in result.stdout
    assert "test_consistency_vector[<absent>]" in result.stdout
