"""A small case built with the CLI, for the benchmarks that time whole commands.

``build_small_case(folder, sealtrail)`` runs ``keys generate``, ``case init`` and ``collect``
(the default triage set) of ``fixtures/hosts/web01`` with the given ``sealtrail`` command and
returns (case folder, private key file). ``ingested_copy`` copies a case and ingests the copy.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
WEB01 = REPO / "fixtures" / "hosts" / "web01"


def build_small_case(folder: Path, sealtrail: str) -> tuple[Path, Path]:
    """A case holding one sealed bundle of web01's triage set (30 members, ~0.5 MB)."""
    folder.mkdir(parents=True, exist_ok=True)
    keys, case = folder / "keys", folder / "case"
    key = keys / "bench.key"
    quiet = {"check": True, "stdout": subprocess.DEVNULL}
    subprocess.run([sealtrail, "keys", "generate", "--name", "bench", "--out", str(keys)],
                   **quiet)
    subprocess.run([sealtrail, "case", "init", str(case), "--title", "bench",
                    "--examiner", "Bench", "--key", str(key)], **quiet)
    subprocess.run([sealtrail, "collect", str(case), "--source", str(WEB01), "--key", str(key)],
                   **quiet)
    return case, key


def ingested_copy(case: Path, key: Path, target: Path, sealtrail: str) -> Path:
    """A copy of ``case`` at ``target``, ingested (so it has a case database)."""
    shutil.copytree(case, target, symlinks=True)
    subprocess.run([sealtrail, "ingest", str(target), "--key", str(key)], check=True,
                   stdout=subprocess.DEVNULL)
    return target
