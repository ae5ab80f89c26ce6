"""Crash tests of sealtrail/custody/ledger.py: concurrent writers and SIGKILL during appends.

The SIGKILL loop is the acknowledgement contract: every index a child printed (it prints only
after ``append`` returned, i.e. after fsync) must be in the ledger with the same entry hash,
and the ledger must pass the check after every kill.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import re
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from sealtrail.custody.keys import SigningKey
from sealtrail.custody.ledger import Ledger, trusted_key_record
from sealtrail.custody.ledger_check import check_ledger

WRITERS = 4
APPENDS_EACH = 200

ACK_LINE = re.compile(rb"(\d+) ([0-9a-f]{64})")

CHILD = """
import sys
from sealtrail.custody.keys import SigningKey
from sealtrail.custody.ledger import Ledger

key = SigningKey("crash", bytes.fromhex(sys.argv[2]))
ledger = Ledger.open(sys.argv[1])
print("ready", flush=True)
n = 0
while True:
    entry = ledger.append(key, "noted", role="examiner", details={"n": n, "pad": "x" * (n % 700)})
    print(entry.index, entry.entry_hash, flush=True)
    n += 1
"""


def _writer(path: str, seed: bytes, name: str, count: int) -> None:
    key = SigningKey(name, seed)
    ledger = Ledger.open(path)
    for i in range(count):
        ledger.append(key, "noted", role="examiner", details={"writer": name, "n": i})


def test_concurrent_writers_in_processes_lose_and_duplicate_nothing(tmp_path):
    keys = [SigningKey.generate(f"writer{i}") for i in range(WRITERS)]
    Ledger.create(
        tmp_path, "CASE-CONCURRENT", keys[0], role="examiner",
        details={"trusted_keys": [trusted_key_record(k.public, "examiner") for k in keys]},
    )
    context = multiprocessing.get_context("fork")
    procs = [
        context.Process(target=_writer, args=(str(tmp_path), k.seed, k.name, APPENDS_EACH))
        for k in keys
    ]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(60)
        assert proc.exitcode == 0
    ledger = Ledger.open(tmp_path)
    lines = ledger.read_lines()
    assert len(lines) == 1 + WRITERS * APPENDS_EACH
    result = check_ledger(lines, [keys[0].public])
    assert result.ok, result.problems[:5]
    assert [e.fields["index"] for e in result.entries] == list(range(len(lines)))
    for key in keys:
        mine = [e.fields["details"]["n"] for e in result.entries[1:]
                if e.actor_key_id == key.key_id]
        assert mine == list(range(APPENDS_EACH))  # each writer's entries in its own order


def _kill_once(path: Path, key: SigningKey, rng: random.Random,
               after_first_ack: bool = False) -> dict[int, str]:
    """Run a child appending in a loop, SIGKILL it after 0-200 ms, return what it acknowledged.

    With ``after_first_ack`` the delay starts once the child acknowledged one append, so a
    loaded machine cannot turn every iteration into a kill before the first append.
    """
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path), key.seed.hex()],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )
    first = b""
    try:
        assert child.stdout is not None
        ready = child.stdout.readline()
        assert ready == b"ready\n", (ready, child.poll())
        first = child.stdout.readline() if after_first_ack else b""
        time.sleep(rng.uniform(0, 0.2))
    finally:
        child.send_signal(signal.SIGKILL)
        out, err = child.communicate(timeout=30)
    out = first + out
    assert child.returncode == -signal.SIGKILL, (child.returncode, err.decode()[-2000:])
    acknowledged = {}
    # An append is acknowledged by a complete "index hash" line, printed after append returned;
    # print() issues several writes, so a kill can leave a partial line, which proves nothing.
    for line in out.split(b"\n"):
        match = ACK_LINE.fullmatch(line)
        if match:
            acknowledged[int(match[1])] = match[2].decode()
    return acknowledged


def _sigkill_loop(tmp_path: Path, iterations: int, per_ledger: int) -> None:
    tmp_path.mkdir()
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    key = SigningKey.generate("crash")
    path = None
    acknowledged: dict[int, str] = {}
    total = 0
    for i in range(iterations):
        if i % per_ledger == 0:  # a fresh ledger now and then keeps each check small
            folder = tmp_path / f"case{i}"
            folder.mkdir()
            path = Ledger.create(folder, f"CASE-{i}", key, role="examiner", details={}).path
            acknowledged = {}
        new = _kill_once(path, key, rng, after_first_ack=i % 2 == 1)
        acknowledged.update(new)
        total += len(new)
        ledger = Ledger.open(path)
        lines = ledger.read_lines()
        result = check_ledger(lines, [key.public])
        assert result.ok, (seed, i, result.problems[:3])
        for index, entry_hash in acknowledged.items():
            assert index < len(lines), (seed, i, index)
            assert result.entries[index].entry_hash == entry_hash, (seed, i, index)
    assert total > 0


def _in_two_lanes(tmp_path: Path, iterations: int, per_ledger: int) -> None:
    # Two independent kill loops on two ledgers at once: the wall time is mostly waiting for
    # children to start and be killed, so this halves the run time without weakening it.
    with ThreadPoolExecutor(2) as pool:
        lanes = [
            pool.submit(_sigkill_loop, tmp_path / f"lane{n}", count, per_ledger)
            for n, count in enumerate((iterations - iterations // 2, iterations // 2))
        ]
        for lane in lanes:
            lane.result()


def test_sigkill_during_appends_keeps_every_acknowledged_entry(tmp_path):
    _in_two_lanes(tmp_path, iterations=25, per_ledger=5)


@pytest.mark.slow
def test_sigkill_during_appends_keeps_every_acknowledged_entry_300_times(tmp_path):
    _in_two_lanes(tmp_path, iterations=300, per_ledger=10)
