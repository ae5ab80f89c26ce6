"""Worker processes that parse members, each task under a time limit.

Parsing evidence is untrusted work: a crafted file can crash a parser library (a segfault in
native code), make it loop forever or exhaust memory. Each member is parsed in a worker
process; the main process waits for results with a deadline per task. A worker that dies or
overruns is killed and replaced, and that member's result says why; every other member goes on.

Workers are started from the fork server (`sealtrail.worker_start`), not forked from the
ingesting process: that process holds the signing key, and a worker parsing hostile bytes must
not hold a copy of it.
"""

from __future__ import annotations

import faulthandler
import multiprocessing
import multiprocessing.connection
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from sealtrail.analysis.worker import MemberResult, MemberTask, parse_member
from sealtrail.worker_start import worker_context


def _serve(conn: multiprocessing.connection.Connection) -> None:
    """Worker loop: receive a task, send its result; stop on None."""
    faulthandler.disable()  # a crash is reported by the parent as this member's result
    while True:
        task = conn.recv()
        if task is None:
            return
        conn.send(parse_member(task))


@dataclass
class _Worker:
    process: multiprocessing.process.BaseProcess
    conn: multiprocessing.connection.Connection
    task: MemberTask | None = None
    deadline: float = 0.0


def default_timeout(size: int) -> float:
    """Two minutes plus one second per MB: generous for honest input, finite for hostile."""
    return 120.0 + size / 1_000_000


class WorkerPool:
    def __init__(self, workers: int | None = None,
                 timeout: Callable[[int], float] = default_timeout) -> None:
        self.count = max(1, workers or os.cpu_count() or 1)
        self.timeout = timeout
        self._workers: list[_Worker] = []

    def _start(self) -> _Worker:
        context = worker_context()
        parent, child = context.Pipe()
        process = context.Process(target=_serve, args=(child,), daemon=True)
        process.start()
        child.close()
        return _Worker(process, parent)

    def __enter__(self) -> WorkerPool:
        self._workers = [self._start() for _ in range(self.count)]
        return self

    def __exit__(self, *exc: object) -> None:
        for worker in self._workers:
            try:
                worker.conn.send(None)
            except OSError:
                pass
        for worker in self._workers:
            worker.process.join(timeout=5)
            if worker.process.is_alive():
                worker.process.kill()
            worker.conn.close()

    def _replace(self, worker: _Worker) -> None:
        worker.process.kill()
        worker.process.join()
        worker.conn.close()
        fresh = self._start()
        worker.process, worker.conn, worker.task = fresh.process, fresh.conn, None

    def run(self, tasks: Iterable[MemberTask]) -> Iterator[MemberResult]:
        """Yield one result per task (in completion order)."""
        pending = list(tasks)
        pending.reverse()
        while pending or any(w.task for w in self._workers):
            for worker in self._workers:
                if worker.task is None and pending:
                    worker.task = pending.pop()
                    worker.deadline = time.monotonic() + self.timeout(worker.task.size)
                    worker.conn.send(worker.task)
            busy = [w for w in self._workers if w.task is not None]
            wait = max(0.0, min(w.deadline for w in busy) - time.monotonic())
            ready = multiprocessing.connection.wait([w.conn for w in busy], timeout=wait)
            now = time.monotonic()
            for worker in busy:
                task = worker.task
                assert task is not None
                if worker.conn in ready:
                    try:
                        result = worker.conn.recv()
                    except (EOFError, OSError):
                        worker.process.join(timeout=1)
                        code = worker.process.exitcode
                        self._replace(worker)
                        yield _failed(task, f"parser process died (exit code {code})")
                        continue
                    worker.task = None
                    yield result
                elif now >= worker.deadline:
                    self._replace(worker)
                    limit = self.timeout(task.size)
                    yield _failed(task, f"parser timed out after {limit:.0f} s")


def _failed(task: MemberTask, reason: str) -> MemberResult:
    return MemberResult(task.task_id, None, None, 0, 0, 0, None, None, reason, 0.0)
