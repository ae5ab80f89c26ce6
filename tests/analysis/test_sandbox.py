"""The parser worker pool: its workers hold no copy of the signing key."""

from __future__ import annotations

from sealtrail.analysis.sandbox import WorkerPool
from sealtrail.analysis.worker import MemberTask
from tests.process_memory import forked_holder, held_secrets, key_secrets, loaded_key


def test_a_parser_worker_started_after_the_key_is_loaded_holds_no_copy_of_it(tmp_path):
    key = loaded_key(tmp_path / "keys")
    secrets = key_secrets(key)
    with forked_holder() as control:  # the scan finds the key in a fork of this process
        assert held_secrets(control, secrets) >= {"seed", "secret key"}
    task = MemberTask(0, str(tmp_path / "absent.stb"), "b", "data/x", "0" * 64, "/x", 1, None,
                      None, (), str(tmp_path))
    with WorkerPool(1) as pool:
        [result] = pool.run([task])  # the worker has started and done a task
        assert result.failure is not None
        assert held_secrets(pool._workers[0].process.pid, secrets) == set()
