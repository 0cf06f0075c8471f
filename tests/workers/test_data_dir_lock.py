"""Two kafka:// workers on one data directory: the second stops at once with
DataDirLockedError naming the first, before it joins the group or opens a store.

On kafka:// the log is the broker's, so the stores (RocksDB, under DATA/stores)
are all a worker keeps in its data directory; two processes writing them would
interleave changelog replays and table writes in the same databases.
"""

from __future__ import annotations

import signal

import pytest
from child_process import STOP_TIMEOUT_S
from waiting import wait_until
from worker_procs import assignment, create_topic, produce

pytestmark = pytest.mark.slow

TIMEOUT_S = 30.0


def test_second_kafka_worker_on_the_same_data_dir_fails_at_once(broker, workers, tmp_path):
    create_topic(broker)
    produce(broker, [f"k{i}" for i in range(200)])
    shared = tmp_path / "shared"
    first = workers(f"kafka://{broker}", data=shared)
    wait_until(lambda: assignment(first), timeout_s=TIMEOUT_S, what="the first worker assigned")

    second = workers(f"kafka://{broker}", data=shared)
    code = second.proc.wait(STOP_TIMEOUT_S)  # raises if it keeps running
    second.reap(signal.SIGKILL)  # gone already: this only collects its last stderr lines
    text = second.text()
    assert code == 1, text
    assert "is locked by another process" in text, text
    assert f"holder pid {first.pid}" in text and str(shared / "stores") in text, text
    assert "worker started" not in text and assignment(second) is None, text
    assert first.alive(), first.text()


def test_a_worker_on_the_data_dir_of_a_dead_one_starts(broker, workers, tmp_path):
    create_topic(broker)
    shared = tmp_path / "shared"
    first = workers(f"kafka://{broker}", data=shared)
    wait_until(lambda: assignment(first), timeout_s=TIMEOUT_S, what="the first worker assigned")
    first.kill()  # a crash: the kernel drops the lock with the process
    second = workers(f"kafka://{broker}", data=shared)
    wait_until(
        lambda: assignment(second) or not second.alive(),
        timeout_s=TIMEOUT_S,
        what="the second worker assigned",
    )
    assert second.alive() and "locked" not in second.text(), second.text()
