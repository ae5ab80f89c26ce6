"""Why the bundle's SHA-256 runs in a helper process: hashing beside a busy Python thread.

Usage: python bench/bench_hash_helper.py [--mib 512] [--runs 3]

The collecting thread does Python work per file (messages, ZIP headers, records) while the
SHA-256 of the bytes it staged is computed elsewhere. Measured here, over the same ``--mib``
MiB in memory, 1 MiB per update, median of ``--runs``, interleaved:

A. reference: ``hashlib.sha256`` in this thread, nothing else running;
B. the same updates on a hash thread while this thread runs a Python loop (the hash thread
   must take the interpreter lock back after every update);
C. sealtrail's helper process (`custody/hash_process.HashProcess`) hashing the same bytes from
   a memfd it maps, while this thread runs the same Python loop (queueing the updates is part
   of this thread's work).

Printed: wall-clock MB/s of the hashing and its ratio to A. The digests are compared.
"""

from __future__ import annotations

import argparse
import hashlib
import mmap
import os
import statistics
import sys
import threading
import time

from machine import cpu_model  # bench/machine.py (bench/ is on sys.path)

from sealtrail.custody.hash_process import HashProcess

STEP = 1 << 20


def busy_python(stop: threading.Event) -> int:
    """Python work of the kind the collecting thread does: small dicts, strings, calls."""
    n = 0
    while not stop.is_set():
        record = {"name": f"data/file{n}", "size": n, "outcome": "collected"}
        n += len(str(record))
    return n


def alone(view: memoryview) -> tuple[float, str]:
    digest = hashlib.sha256()
    t = time.perf_counter()
    for start in range(0, len(view), STEP):
        digest.update(view[start:start + STEP])
    return time.perf_counter() - t, digest.hexdigest()


def hash_thread(view: memoryview) -> tuple[float, str]:
    digest = hashlib.sha256()
    took: list[float] = []
    stop = threading.Event()

    def work() -> None:
        t = time.perf_counter()
        for start in range(0, len(view), STEP):
            digest.update(view[start:start + STEP])
        took.append(time.perf_counter() - t)
        stop.set()

    thread = threading.Thread(target=work)
    thread.start()
    busy_python(stop)
    thread.join()
    return took[0], digest.hexdigest()


def helper_process(fd: int, size: int) -> tuple[float, str]:
    process = HashProcess(fd, size)
    process.wait(process.update(0, 0, 0))  # started and answering before the clock runs
    stop = threading.Event()
    t = time.perf_counter()
    seq = 0
    for start in range(0, size, STEP):
        seq = process.update(1, start, min(STEP, size - start))
    waiter = threading.Thread(target=lambda: (process.wait(seq), stop.set()))
    waiter.start()
    busy_python(stop)
    waiter.join()
    seconds = time.perf_counter() - t
    digest = process.digest(1, process.request_digest(1))
    process.close()
    return seconds, digest


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=512)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    size = args.mib << 20
    print(f"machine: {os.cpu_count()} CPUs ({cpu_model()}), Python {sys.version.split()[0]}; "
          f"{args.mib} MiB in memory, {STEP >> 20} MiB per update, {args.runs} runs, "
          "interleaved")
    fd = os.memfd_create("bench-stage", os.MFD_CLOEXEC)
    os.ftruncate(fd, size)
    mapping = mmap.mmap(fd, size)
    for start in range(0, size, 1 << 24):
        mapping[start:start + (1 << 24)] = os.urandom(1 << 24)
    view = memoryview(mapping)
    runs: dict[str, list[float]] = {"A": [], "B": [], "C": []}
    digests = set()
    for run in range(1, args.runs + 1):
        for label, fn in (("A", lambda: alone(view)), ("B", lambda: hash_thread(view)),
                          ("C", lambda: helper_process(fd, size))):
            seconds, digest = fn()
            runs[label].append(seconds)
            digests.add(digest)
        print(f"  run {run}: " + ", ".join(f"{k} {v[-1]:.3f} s" for k, v in runs.items()))
    assert len(digests) == 1, "the three ways gave different digests"
    ref = statistics.median(runs["A"])
    print("\nSHA-256 (median)                                         seconds    MB/s   ratio")
    names = {"A": "A  this thread, nothing else running (reference)",
             "B": "B  hash thread beside a busy Python thread",
             "C": "C  helper process beside a busy Python thread"}
    for label, name in names.items():
        seconds = statistics.median(runs[label])
        print(f"  {name:<52} {seconds:7.3f} {size / seconds / 1e6:7.0f} {ref / seconds:7.2f}")
    view.release()
    mapping.close()
    os.close(fd)
    return 0


if __name__ == "__main__":
    sys.exit(main())
