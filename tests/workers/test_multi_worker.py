"""Worker processes share an app's partitions on `streams broker` (kafka://).

A backlog of keyed events, and a live stream behind it, are counted into a
table by three slow workers of tests/workers/apps/tally_app.py (slow, so that
they have batches queued whenever the group rebalances); one is SIGKILLed or
SIGTERMed and a fourth joins mid-stream. Each worker traces every event it
processes, which shows who processed which partition when.

- Crash: every key's count is at least its true count (at least once).
- Clean stops and joins: every count is exact (a revoke commits exactly what
  was processed, after flushing the table).
- Either way, no partition is processed by two workers at the same time.
"""

from __future__ import annotations

import time
from collections import Counter

import pytest
from waiting import wait_until
from worker_procs import (
    assignment,
    create_topic,
    overlaps,
    processing,
    produce,
    read_table,
    read_traces,
    wait_covered,
)

BACKLOG = [f"k{i % 97}" for i in range(12_000)]
RATE_PER_S = 200
SLOW = {"TALLY_SLEEP_S": "0.001"}  # under 1000 events/s per worker
STEADY_S = 2.0
TIMEOUT_S = 30.0


@pytest.fixture
def stream(broker, live_producer):
    """The backlog, then a live stream until finish() stops it."""
    create_topic(broker)
    produce(broker, BACKLOG)
    return live_producer(broker, RATE_PER_S)


def settle(trace, workers) -> None:
    """Every worker has processed events; then a little more of the stream."""
    for w in workers:
        wait_until(
            lambda w=w: processing(trace, w.pid),
            timeout_s=TIMEOUT_S,
            what=f"worker {w.pid} processing",
        )
    time.sleep(STEADY_S)


def finish(trace, stream, workers) -> Counter[str]:
    """Stop the stream, wait until every event was processed, stop the workers
    cleanly; the true counts."""
    truth = stream.stop() + Counter(BACKLOG)
    wait_covered(trace, sum(truth.values()), TIMEOUT_S)
    for w in workers:
        w.terminate()
    return truth


def assert_one_owner_at_a_time(trace) -> None:
    bad = overlaps(read_traces(trace))
    assert not bad, f"partitions processed by two workers at once: {bad[:3]}"


@pytest.mark.slow
def test_sigkill_and_a_join_mid_stream_count_at_least_truth(broker, stream, workers, tmp_path):
    trace = tmp_path / "trace"
    url = f"kafka://{broker}"
    group = [workers(url, **SLOW) for _ in range(3)]
    settle(trace, group)
    victim = group.pop(1)
    lost = assignment(victim)[0]
    killed_ns = time.monotonic_ns()
    victim.kill()
    group.append(workers(url, **SLOW))

    def taken_over() -> bool:
        return all(any(processing(trace, w.pid, [p], killed_ns) for w in group) for p in lost)

    wait_until(
        taken_over,
        timeout_s=TIMEOUT_S,
        what=f"partitions {sorted(lost)} of the killed worker taken over",
    )
    settle(trace, group)
    truth = finish(trace, stream, group)

    table = read_table(broker)
    short = {k: (table.get(k, 0), n) for k, n in truth.items() if table.get(k, 0) < n}
    assert not short, f"(counted, sent) of keys counted short: {short}"
    assert_one_owner_at_a_time(trace)


@pytest.mark.slow
def test_clean_stops_and_a_join_mid_stream_count_exactly(broker, stream, workers, tmp_path):
    trace = tmp_path / "trace"
    url = f"kafka://{broker}"
    group = [workers(url, **SLOW) for _ in range(3)]
    settle(trace, group)
    group.append(workers(url, **SLOW))
    settle(trace, group)
    group.pop(0).terminate()
    settle(trace, group)
    truth = finish(trace, stream, group)

    table = read_table(broker)
    wrong = {k: (table.get(k), truth.get(k)) for k in truth | table if table.get(k) != truth.get(k)}
    assert not wrong, f"(counted, sent) of keys counted wrong: {wrong}"
    assert_one_owner_at_a_time(trace)
