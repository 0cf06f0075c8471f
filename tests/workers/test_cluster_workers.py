"""Three workers of a keyed count on a three-broker Kafka cluster that is not
ours (librdkafka's mock cluster), while the cluster misbehaves.

Partition leaders start on every broker. Mid-stream several leaders move, one
broker goes down (its partitions and the group's coordinator move to the
others, as a controller would do) and comes back, and NOT_COORDINATOR and
REQUEST_TIMED_OUT answers are injected into commits, heartbeats, produces and
fetches. The workers' traces show every event processed; the counts are at
least the truth, and after clean stops exactly the truth.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from mock_cluster import MockCluster
from waiting import wait_until
from worker_procs import (
    CHANGELOG,
    PARTITIONS,
    TOPIC,
    Process,
    assignment,
    covered,
    processing,
    produce,
    read_table,
    wait_covered,
)

from runtime.protocol.codes import ApiKey, ErrorCode

BACKLOG = [f"k{i % 97}" for i in range(3_000)]
RATE_PER_S = 200
SLOW = {"TALLY_SLEEP_S": "0.001"}
TIMEOUT_S = 40.0
FLOW_EVENTS = 150  # the stream processes this many events between two faults
GROUP = "tally"  # the app id


def _flow(trace: Path, events: int = FLOW_EVENTS) -> None:
    """Wait until the workers have processed `events` more events (the stream
    flows between two faults: each one lands mid-stream)."""
    target = covered(trace) + events
    wait_until(
        lambda: covered(trace) >= target,
        timeout_s=TIMEOUT_S,
        what=lambda: f"{covered(trace)} of {target} events processed",
        interval_s=0.1,
    )


def _faults(mock: MockCluster, trace: Path) -> None:
    """The faults, in turn, with the stream flowing in between."""
    for p in (0, 3, 6):  # several leaders move on
        mock.set_leader(TOPIC, p, (p + 1) % 3 + 1)
        mock.set_leader(CHANGELOG, p, (p + 2) % 3 + 1)
    _flow(trace)
    mock.push_errors(ApiKey.OFFSET_COMMIT, ErrorCode.NOT_COORDINATOR, ErrorCode.REQUEST_TIMED_OUT)
    mock.push_errors(ApiKey.HEARTBEAT, ErrorCode.NOT_COORDINATOR)
    mock.push_errors(ApiKey.PRODUCE, ErrorCode.REQUEST_TIMED_OUT, ErrorCode.NOT_LEADER_OR_FOLLOWER)
    mock.push_errors(ApiKey.FETCH, ErrorCode.REQUEST_TIMED_OUT, ErrorCode.NOT_LEADER_OR_FOLLOWER)
    _flow(trace)
    mock.set_coordinator(GROUP, 1)  # off broker 2 before it fails
    _flow(trace)
    mock.broker_down(2)
    for topic in (TOPIC, CHANGELOG):
        for p in range(PARTITIONS):
            mock.set_leader(topic, p, 1 if p % 2 else 3)
    _flow(trace, 2 * FLOW_EVENTS)
    mock.broker_up(2)
    mock.set_coordinator(GROUP, 2)  # and back: the coordinator moves again
    for topic in (TOPIC, CHANGELOG):
        mock.spread_leaders(topic, PARTITIONS)
    _flow(trace)


def _owners(group: list[Process]) -> str:
    return f"assignments: {[assignment(w) for w in group]}"


def _settled(group: list[Process]) -> bool:
    """Each worker holds a share of the partitions, together all of them once."""
    owned = [assignment(w) for w in group]
    if any(a is None or not a[0] for a in owned):
        return False
    active = [p for a in owned if a is not None for p in a[0]]
    return sorted(active) == list(range(PARTITIONS))


@pytest.mark.slow
def test_three_workers_count_exactly_through_leader_moves_a_broker_down_and_errors(
    mock_cluster, live_producer, workers, tmp_path
):
    # the mock has no CreateTopics: an operator's job (the output topic, and the
    # dead-letter topic of the default on_decode_error, too)
    for topic, partitions in ((TOPIC, PARTITIONS), (CHANGELOG, PARTITIONS),
                              ("tally-out", PARTITIONS), ("tally-dead-letters", 1)):  # fmt: skip
        mock_cluster.create_topic(topic, partitions)
        mock_cluster.spread_leaders(topic, partitions)
    bootstrap = mock_cluster.bootstraps
    trace = tmp_path / "trace"
    group = [workers(mock_cluster.url, **SLOW) for _ in range(3)]
    # The group settles before the first event: the mock refuses the commits of
    # a rebalance's revoke (Kafka takes them), which would replay events.
    wait_until(lambda: _settled(group), timeout_s=TIMEOUT_S, what=lambda: _owners(group))
    produce(bootstrap, BACKLOG)
    stream = live_producer(bootstrap, RATE_PER_S)
    for w in group:
        wait_until(
            lambda w=w: processing(trace, w.pid),
            timeout_s=TIMEOUT_S,
            what=f"worker {w.pid} processing",
        )

    _faults(mock_cluster, trace)

    truth = stream.stop() + Counter(BACKLOG)
    wait_covered(trace, sum(truth.values()), TIMEOUT_S)

    def short() -> dict[str, tuple[int, int]]:
        table = read_table(bootstrap)
        return {k: (table.get(k, 0), n) for k, n in truth.items() if table.get(k, 0) < n}

    # the last counts reach the changelog with the next commit
    wait_until(lambda: not short(), timeout_s=10, interval_s=0.5, what=lambda: f"short: {short()}")
    for w in group:
        w.terminate()
    table = read_table(bootstrap)
    wrong = {k: (table.get(k), truth.get(k)) for k in truth | table if table.get(k) != truth.get(k)}
    assert not wrong, f"(counted, sent) of keys counted wrong: {wrong}"
