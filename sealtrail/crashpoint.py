"""A test hook that kills this process at a named step, to test what a crash leaves behind.

``SEALTRAIL_CRASH_AT=<step>`` (or ``<step>:<n>``, the n-th time the step is reached, counting
from 1) makes `crash_point` send this process SIGKILL at that step, so a test can stop a real
``sealtrail`` command at every step boundary instead of relying on timing luck
(tests/acquisition/test_crash_recovery.py). The variable is read here and nowhere else. Unset,
which is always the case outside tests, `crash_point` reads it and returns: the hook is inert.
Anyone who can set a process's environment can kill that process anyway, so the hook gives no
one a power they did not have (docs/threat-model.md).
"""

from __future__ import annotations

import os
import signal
from collections import Counter
from collections.abc import Callable

CRASH_ENV = "SEALTRAIL_CRASH_AT"

#: Every named step, in the order a collection reaches them (`acquisition.session.run_sealed`,
#: `custody.bundle_writer.BundleWriter.seal`), then the steps of every ledger append
#: (`custody.ledger.Ledger`).
STEPS = (
    "collection_started",  # collection_started appended, no bundle file yet
    "members_written",  # every member in <id>.stb.partial, no manifest
    "manifest_written",  # manifest member added, the ZIP not finished
    "bundle_fsynced",  # the partial file complete and fsynced
    "bundle_renamed",  # renamed to <id>.stb
    "bundle_dir_fsynced",  # the folder fsynced: the bundle is durable, bundle_sealed not yet
    "bundle_sealed_recorded",  # bundle_sealed appended (the command has not printed yet)
    "ledger_torn_write",  # half of an entry's line written: a torn tail
    "ledger_unterminated_write",  # an entry written without its final newline
    "ledger_written",  # an entry's line written, not yet fsynced
    "ledger_fsynced",  # an entry acknowledged
)

_reached: Counter[str] = Counter()


def crash_point(step: str, before: Callable[[], object] | None = None) -> None:
    """SIGKILL this process if ``SEALTRAIL_CRASH_AT`` names ``step`` (and this is its n-th time).

    Args:
        step: one of `STEPS`.
        before: run just before the kill, to leave the state a crash inside the step would
            (e.g. half of a ledger line written).
    """
    wanted = os.environ.get(CRASH_ENV)
    if not wanted:
        return
    name, _, nth = wanted.partition(":")
    if step not in STEPS:
        raise ValueError(f"unknown crash step {step!r}")
    if name != step:
        return
    _reached[step] += 1
    if _reached[step] != int(nth or 1):
        return
    if before is not None:
        before()
    os.kill(os.getpid(), signal.SIGKILL)
