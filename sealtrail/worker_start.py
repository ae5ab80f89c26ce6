"""How sealtrail starts the processes that parse evidence: never as a fork of a key holder.

The collecting and ingesting processes load the examiner's Ed25519 key before they start the
parser workers (`analysis.sandbox`) and the image worker (`acquisition.image_worker`). A child
forked from them would begin life with a copy of their memory, the seed included, where a
parser bug that discloses memory, or a crafted file that gets code run, could reach it.

So workers come from multiprocessing's fork server. The server is a new interpreter, started
by fork *and exec* of ``sys.executable`` (`multiprocessing.util.spawnv_passfds`): nothing of
the starting process's memory survives the exec, whenever the server is started. It is told
only which modules to import ahead (`PRELOAD`) and ``sys.path``; for each worker it receives
that worker's file descriptors, forks, and the worker reads its own job (a pipe end, a task,
an image path; never a key) from the starting process. A worker thus holds what a fresh
interpreter holds after these imports, plus its job. The imports are done once, in the
server, so a worker starts in a few milliseconds, as a plain fork did; the server itself takes
about as long to start as the ``sealtrail`` command, so commands that will need workers start
it early (`warm_up`), and its imports run while they verify or write the ledger.

Where there is no fork server (not Unix), workers are spawned: a fresh interpreter each.
tests/analysis/test_sandbox.py and tests/custody/test_image_worker.py read the memory of a
worker of each kind and find no seed (and, as a control, find it in a forked child).
"""

from __future__ import annotations

import functools
import multiprocessing
import multiprocessing.context

__all__ = ["PRELOAD", "warm_up", "worker_context"]

#: Imported once in the fork server. A worker not forked from its parent runs the parent's
#: main script again (as ``__mp_main__``, so its ``if __name__ == "__main__"`` part does not
#: run); for the ``sealtrail`` script that is one import of `sealtrail.cli.main`, done here
#: ahead. (``__main__`` in this list would preload the script itself, but Python 3.11's fork
#: server is never told its path.)
PRELOAD = ("sealtrail.cli.main", "sealtrail.analysis.sandbox",
           "sealtrail.acquisition.image_collection")


@functools.cache
def worker_context() -> multiprocessing.context.BaseContext:
    """The multiprocessing context every evidence-parsing worker is started from."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(PRELOAD))
    return context


def warm_up() -> None:
    """Start the fork server now, if workers come from one and it is not running yet: it then
    imports `PRELOAD` while the caller does its own work before the first worker."""
    if worker_context().get_start_method() == "forkserver":
        import multiprocessing.forkserver

        multiprocessing.forkserver.ensure_running()
