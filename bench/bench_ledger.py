"""Custody ledger speed: fsynced appends, and verification as the ledger grows.

What is measured (medians of ``--runs`` interleaved runs of each side):

- appends: ``Ledger.append(key, "note", role="examiner")`` N times (default 2,000) in one
  process on a fresh ledger, each acknowledged only after its fsync. Reference, same run, same
  folder: a bare loop of ``os.write(fd, line)`` + ``os.fsync(fd)`` on an ``O_APPEND`` file,
  replaying the very lines the ledger run just wrote (same lengths): the floor the disk sets.
- verification: ``check_ledger(lines, [public key])`` over ledgers of 10k, 30k and 100k
  entries (its default threads), against a bare loop, on one thread, of PyNaCl
  ``VerifyKey.verify(message, signature)`` plus ``hashlib.sha256(line)`` over the same
  entries: the unavoidable cost of one signature check and one chain hash per entry. Also
  ``check_ledger(..., threads=1)`` for the single-thread comparison.

The ledgers for verification are built in memory with the ledger's own signing code
(``ledger.signed_body`` + ``SigningKey.sign`` + ``canonical_json``) without fsync, which is
what ``Ledger.append`` writes minus the durability; a 10k or 30k ledger is a prefix of the 100k
one. Each is first checked to have no problem. ``--checkpoint-every K`` (default 0: none) makes
every K-th entry (index K, 2K, ...) a ``checkpoint_signed`` entry recording the RFC 6962 root of
the entries before it, as ``sealtrail ledger checkpoint`` does, so that the cost of checking
recorded checkpoints shows (the reference's work per entry is the same either way). Scratch
files go to ``bench/out/`` and are deleted at the end unless ``--keep``.

Usage::

    python bench/bench_ledger.py
    python bench/bench_ledger.py --appends 500 --sizes 10000 30000   # quicker
    python bench/bench_ledger.py --checkpoint-every 1000   # with recorded checkpoints
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import shutil
import statistics
import sys
import time
import uuid
from importlib.metadata import version
from pathlib import Path

import nacl.signing
from machine import cpu_model  # bench/machine.py (bench/ is on sys.path)

import sealtrail
from sealtrail.custody.canonical import canonical_json
from sealtrail.custody.keys import SigningKey
from sealtrail.custody.ledger import (
    CASE_OPENED,
    CLOCK_SYSTEM,
    FORMAT_VERSION,
    ZERO_HASH,
    Ledger,
    entry_hash_of,
    signed_body,
    trusted_key_record,
    utc_now_text,
)
from sealtrail.custody.ledger_check import VERIFY_THREADS, check_ledger
from sealtrail.custody.merkle import MerkleTree, leaf_hash

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"


def machine_line() -> str:
    cpu = cpu_model()
    return (f"machine: {os.cpu_count()} CPUs ({cpu}), Python {sys.version.split()[0]}, "
            f"PyNaCl {version('PyNaCl')}, orjson {version('orjson')}, "
            f"{os.uname().sysname} {os.uname().release}; "
            f"sealtrail from {Path(sealtrail.__file__).parent.parent}")


# ---------------------------------------------------------------------------------------------
# appends


def run_appends(scratch: Path, run: int, n: int, key: SigningKey) -> tuple[float, list[bytes]]:
    """N fsynced appends on a fresh ledger; returns (seconds, the lines written)."""
    folder = scratch / f"append-{run}"
    folder.mkdir()
    path = folder / "ledger.jsonl"
    Ledger.create(path, str(uuid.uuid4()), key, role="examiner", details={"title": "bench"})
    ledger = Ledger.open(path)
    started = time.perf_counter()
    for _ in range(n):
        ledger.append(key, "note", role="examiner")
    seconds = time.perf_counter() - started
    lines = ledger.read_lines()[1:]
    if len(lines) != n:
        raise SystemExit(f"ledger has {len(lines)} appended entries, not {n}")
    shutil.rmtree(folder)
    return seconds, lines


def run_write_fsync(scratch: Path, run: int, lines: list[bytes]) -> float:
    """The floor: write + fsync of the same lines on an O_APPEND file in the same folder."""
    path = scratch / f"floor-{run}.jsonl"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
    try:
        started = time.perf_counter()
        for line in lines:
            os.write(fd, line + b"\n")
            os.fsync(fd)
        seconds = time.perf_counter() - started
    finally:
        os.close(fd)
    path.unlink()
    return seconds


# ---------------------------------------------------------------------------------------------
# verification


def build_ledger(n: int, key: SigningKey,
                 checkpoint_every: int = 0) -> tuple[list[bytes], list[tuple[bytes, bytes]]]:
    """``n`` signed, chained entries (a case_opened and notes) and their (message, signature).

    Same bytes as ``Ledger.append`` would write (fields, canonical form, signature over
    ``signed_body``), without the lock and fsync per entry. With ``checkpoint_every`` K > 0,
    entries K, 2K, ... are ``checkpoint_signed`` entries with the root of all entries before
    them (the details ``log_proofs.issue_checkpoint`` records; no checkpoint file is written:
    ``check_ledger`` does not read it).
    """
    tree = MerkleTree()
    case_id = str(uuid.uuid4())
    actor = {"name": key.name, "key_id": key.key_id, "role": "examiner"}
    lines: list[bytes] = []
    pairs: list[tuple[bytes, bytes]] = []
    prev = ZERO_HASH
    for index in range(n):
        if index == 0:
            action = CASE_OPENED
            details = {"title": "bench",
                       "trusted_keys": [trusted_key_record(key.public, "examiner")]}
        elif checkpoint_every and index % checkpoint_every == 0:
            action = "checkpoint_signed"
            details = {"size": index, "root": base64.b64encode(tree.root()).decode(),
                       "file": f"checkpoint-{index}.txt"}
        else:
            action = "note"
            details = {"text": f"bench entry {index}"}
        fields = {
            "v": FORMAT_VERSION, "case_id": case_id, "index": index, "time": utc_now_text(),
            "clock": CLOCK_SYSTEM, "action": action, "actor": actor, "subject": {},
            "custody": {}, "details": details, "prev": prev,
        }
        message = signed_body(fields)
        signature = key.sign(message)
        fields["sig"] = base64.b64encode(signature).decode()
        line = canonical_json(fields)
        lines.append(line)
        pairs.append((message, signature))
        prev = entry_hash_of(line)
        if checkpoint_every:
            tree.append(leaf_hash(line))
    return lines, pairs


def bare_verify(raw_public: bytes, lines: list[bytes], pairs: list[tuple[bytes, bytes]]) -> float:
    """The unavoidable work: one Ed25519 verification and one SHA-256 per entry."""
    verify_key = nacl.signing.VerifyKey(raw_public)
    started = time.perf_counter()
    for line, (message, signature) in zip(lines, pairs, strict=True):
        verify_key.verify(message, signature)
        hashlib.sha256(line).digest()
    return time.perf_counter() - started


def timed_check(lines: list[bytes], key: SigningKey, threads: int) -> float:
    started = time.perf_counter()
    result = check_ledger(lines, [key.public], threads=threads)
    seconds = time.perf_counter() - started
    if result.problems:
        raise SystemExit(f"bench ledger has problems: {result.problems[:3]}")
    return seconds


# ---------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--appends", type=int, default=2000)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 30_000, 100_000])
    parser.add_argument("--runs", type=int, default=3, help="runs of each side (>= 3)")
    parser.add_argument("--checkpoint-every", type=int, default=0, metavar="K",
                        help="make every K-th entry a checkpoint_signed entry (default: none)")
    parser.add_argument("--keep", action="store_true", help="keep scratch files")
    args = parser.parse_args()
    if args.runs < 3:
        parser.error("--runs must be at least 3")
    if args.checkpoint_every < 0:
        parser.error("--checkpoint-every must be 0 (none) or positive")

    print(machine_line())
    key = SigningKey.generate("bench")
    scratch = OUT / f"ledger-run-{os.getpid()}"
    scratch.mkdir(parents=True)
    try:
        print(f"appends: {args.appends} per run, {args.runs} runs a side, interleaved")
        led_s: list[float] = []
        floor_s: list[float] = []
        line_len = 0
        for run in range(args.runs):
            seconds, lines = run_appends(scratch, run, args.appends, key)
            led_s.append(seconds)
            floor_s.append(run_write_fsync(scratch, run, lines))
            line_len = round(sum(len(x) + 1 for x in lines) / len(lines))
            print(f"  run {run + 1}: Ledger.append {args.appends / led_s[-1]:7.0f}/s, "
                  f"write+fsync {args.appends / floor_s[-1]:7.0f}/s", flush=True)
        led_rate = args.appends / statistics.median(led_s)
        floor_rate = args.appends / statistics.median(floor_s)
        print()
        print(f"appends with fsync (median, {line_len}-byte lines)    per second")
        print(f"  reference os.write + os.fsync          {floor_rate:10.0f}")
        print(f"  sealtrail Ledger.append                {led_rate:10.0f}")
        print(f"  ratio sealtrail/reference: {led_rate / floor_rate:.2f}")

        largest = max(args.sizes)
        started = time.perf_counter()
        all_lines, all_pairs = build_ledger(largest, key, args.checkpoint_every)
        print()
        if args.checkpoint_every:
            print(f"every {args.checkpoint_every}th entry is a checkpoint_signed entry "
                  f"({(largest - 1) // args.checkpoint_every} in the largest ledger)")
        print(f"built a {largest}-entry ledger in {time.perf_counter() - started:.1f} s "
              f"({sum(len(x) + 1 for x in all_lines) / 1e6:.1f} MB); verification, "
              f"{args.runs} runs a side, interleaved")
        rows = []
        for size in sorted(args.sizes):
            lines, pairs = all_lines[:size], all_pairs[:size]
            chk, chk1, ref = [], [], []
            for _run in range(args.runs):
                ref.append(bare_verify(key.public.raw, lines, pairs))
                chk.append(timed_check(lines, key, VERIFY_THREADS))
                chk1.append(timed_check(lines, key, 1))
            rows.append((size, *(statistics.median(v) for v in (ref, chk, chk1))))
            print(f"  {size} entries done", flush=True)
        print()
        print("verify (median seconds)      reference  check_ledger  check_ledger    "
              "ratio      ratio   entries/s")
        print(f"entries                      1 thread   {VERIFY_THREADS} threads     "
              f"1 thread   ref/{VERIFY_THREADS}thr   ref/1thr   {VERIFY_THREADS} threads")
        for size, ref_m, chk_m, chk1_m in rows:
            print(f"  {size:>9}              {ref_m:8.2f}  {chk_m:11.2f}  {chk1_m:11.2f}  "
                  f"{ref_m / chk_m:8.2f}  {ref_m / chk1_m:9.2f}  {size / chk_m:10.0f}")
        print("  (ratio = reference seconds / check_ledger seconds: 1.00 means no cost beyond "
              "the unavoidable; target: 100k entries well under 10 s)")
    finally:
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
