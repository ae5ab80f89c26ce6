"""The image worker process: started without the signing key, sharing its slots by memfd."""

from __future__ import annotations

import time

from sealtrail.acquisition.image_worker import TAG_SLOT, Channel, Worker
from tests.process_memory import forked_holder, held_secrets, key_secrets, loaded_key


def _fill_a_slot_then_wait(channel: Channel, job: bytes) -> None:
    assert channel.slots is not None
    index = channel.slots.take()
    channel.slots.slot(index)[:len(job)] = job
    channel.slot_filled(index, len(job))
    time.sleep(60)


def test_the_image_worker_holds_no_copy_of_the_key_of_the_process_that_started_it(tmp_path):
    key = loaded_key(tmp_path / "keys")
    secrets = key_secrets(key)
    with forked_holder() as control:  # the scan finds the key in a fork of this process
        assert held_secrets(control, secrets) >= {"seed", "secret key"}
    worker = Worker("image.raw", _fill_a_slot_then_wait, b"bytes from the worker",
                    shared_slots=True)
    try:
        tag, (index, nbytes) = next(worker.messages(30, None))
        assert tag == TAG_SLOT
        with worker.lent_slot(index, nbytes) as view:  # the slots are shared memory
            assert bytes(view) == b"bytes from the worker"
        assert held_secrets(worker._process.pid, secrets) == set()
    finally:
        worker.close()

