"""Exactly once across rebalances: two workers of tally_app under
processing_guarantee="exactly_once" share the partitions on `streams broker`,
each with a standby copy of the other's tables; one of them is SIGKILLed at
random moments and restarted (each time the group rebalances twice: when the
dead member times out, and when it comes back), while the other keeps
processing, committing before it gives partitions up and taking over from its
standby stores (which follow only committed changelog records).
Every key's count ends exactly right, and each running count is in the output
once for read_committed readers."""

from __future__ import annotations

import os
import random
import signal
from collections import Counter

import pytest
from test_exactly_once_kill_loop import EOS, SEED, TIMEOUT_S, assert_exactly_once, committed_to_end
from waiting import wait_until
from worker_procs import (
    ASSIGNED,
    PARTITIONS,
    assignment,
    create_topic,
    kill_at_a_random_moment,
    produce,
    read_table,
)

pytestmark = pytest.mark.slow

KILLS = int(os.environ.get("KILL_LOOP_KILLS", "3"))  # by hand: more
BACKLOG = [f"k{i % 97}" for i in range(4_000)]
RATE_PER_S = 250
PROCESSED_BEFORE_KILL_MAX = 600


def test_exactly_once_while_a_second_worker_is_killed_and_comes_back(
    broker, live_producer, workers, tmp_path
):
    rng = random.Random(SEED)
    print(f"EOS_KILL_SEED={SEED}")
    url, trace = f"kafka://{broker}", tmp_path / "trace"
    create_topic(broker)
    produce(broker, BACKLOG)
    stream = live_producer(broker, RATE_PER_S)
    env = {**EOS, "TALLY_STANDBY": "1"}
    steady = workers(url, data=tmp_path / "steady", **env)
    wait_until(lambda: assignment(steady), timeout_s=TIMEOUT_S, what="the first worker assigned")
    for kill in range(KILLS):
        moment = kill_at_a_random_moment(
            workers(url, data=tmp_path / "killed", **env),
            trace,
            rng,
            processed_max=PROCESSED_BEFORE_KILL_MAX,
            timeout_s=TIMEOUT_S,
        )
        print(f"kill {kill + 1}: {moment}")
    last = workers(url, data=tmp_path / "killed", **env)
    truth = stream.stop() + Counter(BACKLOG)
    wait_until(lambda: committed_to_end(broker), timeout_s=TIMEOUT_S, what="every event committed")
    last.terminate()
    steady.terminate()
    assert steady.alive() is False
    assert_exactly_once(broker, truth)
    rebalances = sum("revoked app=tally" in line for line in steady.log)
    aborts = sum("transaction aborted" in line for line in steady.log)
    print(f"the steady worker gave partitions up {rebalances} times, aborted {aborts}")
    assert rebalances >= 1
    standbys = [m[2] for m in ASSIGNED.finditer(steady.text()) if m[2].strip()]
    assert standbys, "the steady worker never kept a standby copy"


@pytest.mark.parametrize("guarantee", ["exactly_once", "at_least_once"])
def test_a_zombie_worker_cannot_commit_after_its_partitions_moved(
    guarantee, broker, live_producer, workers, tmp_path
):
    """SIGSTOP a worker past its session timeout: the group gives its partitions
    to the other. On SIGCONT it still holds an open transaction and a stale
    generation: its commit is refused (the offsets of a replaced member), it
    aborts, rejoins, and nothing it did as a zombie reaches a reader. If it
    gets partitions back that the other wrote meanwhile, its tables replay that.
    Under at_least_once the same pause leaves counts at least the truth."""
    url = f"kafka://{broker}"
    env = {**EOS, "TALLY_GUARANTEE": guarantee}
    create_topic(broker)
    produce(broker, BACKLOG)
    stream = live_producer(broker, RATE_PER_S)
    survivor = workers(url, data=tmp_path / "survivor", **env)
    wait_until(lambda: assignment(survivor), timeout_s=TIMEOUT_S, what="the first worker assigned")
    zombie = workers(url, data=tmp_path / "zombie", **env)
    wait_until(
        lambda: (assignment(zombie) or (set(),))[0], timeout_s=TIMEOUT_S, what="zombie assigned"
    )
    zombie.proc.send_signal(signal.SIGSTOP)
    try:
        wait_until(
            lambda: (assignment(survivor) or (set(),))[0] == set(range(PARTITIONS)),
            timeout_s=TIMEOUT_S,
            what="the survivor took every partition",
        )
    finally:
        zombie.proc.send_signal(signal.SIGCONT)
    if guarantee == "exactly_once":
        wait_until(
            lambda: "transaction aborted" in zombie.text(),
            timeout_s=TIMEOUT_S,
            what=lambda: f"the zombie's commit refused:\n{zombie.text()[-3000:]}",
        )
    else:
        wait_until(
            lambda: len(assigned_lines(zombie)) >= 2,
            timeout_s=TIMEOUT_S,
            what=lambda: f"the zombie back in the group:\n{zombie.text()[-3000:]}",
        )
    truth = stream.stop() + Counter(BACKLOG)
    wait_until(lambda: committed_to_end(broker), timeout_s=TIMEOUT_S, what="every event committed")
    zombie.terminate()
    survivor.terminate()
    if guarantee == "exactly_once":
        assert_exactly_once(broker, truth)
    else:
        table = read_table(broker)
        short = {k: (table.get(k, 0), n) for k, n in truth.items() if table.get(k, 0) < n}
        assert not short, f"(counted, sent) of keys counted short: {short}"


def assigned_lines(worker) -> list[str]:
    return [line for line in worker.log if "assigned app=tally" in line]
