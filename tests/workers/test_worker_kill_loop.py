"""Ten SIGKILLs of a worker mid-stream, each followed by a restart on the same
data directory, then a clean stop: at least once through the crashes,
exactly once across the clean stop.

One worker of tests/workers/apps/tally_app.py at a time counts a live keyed
stream on `streams broker` (kafka://) into a RocksDB-backed table. It is
killed at random moments: just after it joined the group (recovering its
stores, starting to fetch) or after a random number of events. The restart
finds the stores a SIGKILL left and the offsets last committed.

- Through the kills every key's count is at least its true count.
- The clean stop at the end commits exactly what was processed: the next
  worker replays nothing, and counts what comes next exactly.
"""

from __future__ import annotations

import os
import random
from collections import Counter

import pytest
from worker_procs import (
    create_topic,
    kill_at_a_random_moment,
    produce,
    read_table,
    read_traces,
    wait_covered,
)

pytestmark = pytest.mark.slow

KILLS = int(os.environ.get("KILL_LOOP_KILLS", "6"))  # by hand: more
BACKLOG = [f"k{i % 97}" for i in range(3_000)]
RATE_PER_S = 300
PROCESSED_BEFORE_KILL_MAX = 1_500
AFTER_THE_STOP = [f"k{i % 13}" for i in range(500)]
TIMEOUT_S = 30.0
SEED = int(os.environ.get("KILL_LOOP_SEED", random.randrange(1 << 30)))


def test_sigkilled_worker_restarted_again_and_again_counts_at_least_truth(
    broker, live_producer, workers, tmp_path
):
    rng = random.Random(SEED)
    print(f"KILL_LOOP_SEED={SEED}")
    url, trace, data = f"kafka://{broker}", tmp_path / "trace", tmp_path / "data"
    create_topic(broker)
    produce(broker, BACKLOG)
    stream = live_producer(broker, RATE_PER_S)
    for kill in range(KILLS):
        moment = kill_at_a_random_moment(
            workers(url, data=data),
            trace,
            rng,
            processed_max=PROCESSED_BEFORE_KILL_MAX,
            timeout_s=TIMEOUT_S,
        )
        print(f"kill {kill + 1}: {moment}")

    final = workers(url, data=data)
    truth = stream.stop() + Counter(BACKLOG)
    wait_covered(trace, sum(truth.values()), TIMEOUT_S)
    final.terminate()
    table = read_table(broker)
    short = {k: (table.get(k, 0), n) for k, n in truth.items() if table.get(k, 0) < n}
    assert not short, f"(counted, sent) of keys counted short: {short}"
    assert set(table) == set(truth)
    print(f"events {sum(truth.values())}, counted {sum(table.values())} (replays after kills)")

    ends = {}
    for r in read_traces(trace):
        ends[r.partition] = max(ends.get(r.partition, -1), r.offset)
    after = workers(url, data=data)
    produce(broker, AFTER_THE_STOP)
    wait_covered(trace, sum(truth.values()) + len(AFTER_THE_STOP), TIMEOUT_S)
    after.terminate()
    replayed = [r for r in read_traces(trace, after.pid) if r.offset <= ends.get(r.partition, -1)]
    assert not replayed, f"processed again after a clean stop: {replayed[:5]}"
    assert read_table(broker) == dict(Counter(table) + Counter(AFTER_THE_STOP))
