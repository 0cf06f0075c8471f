"""A standby replica makes a takeover after a crash replay only the tail.

Two workers of tests/workers/apps/tally_app.py count a live stream on
`streams broker`; one is SIGKILLed and the other takes its partitions over
once the group notices (session_timeout_s=2). With num_standby_replicas=1 the
survivor kept a copy of each of those table partitions, following their
changelogs: it replays only the changelog records written since its copy last
caught up, which were all written in the last moment before the kill. Without
standbys (the control run) it replays the partitions' changelog histories.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from waiting import wait_until
from worker_procs import (
    CHANGELOG,
    assignment,
    create_topic,
    processing,
    read_table,
    read_topic,
    read_traces,
    recoveries,
    wait_covered,
)

RATE_PER_S = 2000
STEADY_S = 2.0
TIMEOUT_S = 30.0
# A standby follows its changelog with a long poll: it is behind by at most
# the flush in flight. Records written longer ago than this before the kill
# would have been applied by a standby that was keeping up.
CAUGHT_UP_WITHIN_MS = 1000


@dataclass
class Takeover:
    partitions: set[int]  # the killed worker's active partitions
    replayed: dict[int, int]  # changelog records the survivor replayed, per partition
    replayed_ms: dict[int, list[int]]  # the timestamps of those records
    killed_ms: int
    resumed_s: dict[int, float]  # from the kill to the survivor's first event, per partition


def kill_one_of_two(bootstrap: str, live_producer, workers, trace: Path, standby: int) -> Takeover:
    url = f"kafka://{bootstrap}"
    create_topic(bootstrap)
    producer = live_producer(bootstrap, RATE_PER_S)
    pair = [workers(url, trace, TALLY_STANDBY=str(standby)) for _ in range(2)]

    def steady() -> bool:
        held = [assignment(w) for w in pair]
        return all(h is not None and len(h[0]) == 4 and len(h[1]) == 4 * standby for h in held)

    wait_until(steady, timeout_s=TIMEOUT_S, what="4 active (and standby) partitions each")
    for w in pair:
        wait_until(
            lambda w=w: processing(trace, w.pid),
            timeout_s=TIMEOUT_S,
            what=f"worker {w.pid} processing",
        )
    time.sleep(STEADY_S)

    survivor, victim = pair
    lost = assignment(victim)[0]
    mark = len(survivor.log)
    killed_ns, killed_ms = time.monotonic_ns(), int(time.time() * 1000)
    victim.kill()
    wait_until(
        lambda: processing(trace, survivor.pid, lost, killed_ns),
        timeout_s=TIMEOUT_S,
        what="the takeover",
    )
    first_ns: dict[int, int] = {}
    for r in read_traces(trace, survivor.pid):
        if r.partition in lost and r.ns > killed_ns:
            first_ns[r.partition] = min(r.ns, first_ns.get(r.partition, r.ns))
    truth = producer.stop()
    wait_covered(trace, sum(truth.values()), TIMEOUT_S)
    survivor.terminate()

    table = read_table(bootstrap)
    assert all(table.get(k, 0) >= n for k, n in truth.items()), "keys counted short"
    replays = [r for r in recoveries(survivor.log[mark:]) if r.partition in lost]
    assert {r.partition for r in replays} == lost, replays
    stamps: dict[int, list[int]] = {p: [] for p in lost}
    for p, offset, _, _, ts in read_topic(bootstrap, CHANGELOG):
        if any(r.partition == p and r.start_offset <= offset < r.end_offset for r in replays):
            stamps[p].append(ts)
    return Takeover(
        lost,
        {p: sum(r.records for r in replays if r.partition == p) for p in lost},
        stamps,
        killed_ms,
        {p: (ns - killed_ns) / 1e9 for p, ns in first_ns.items()},
    )


@pytest.mark.slow
def test_standby_takeover_replays_only_what_was_written_since_it_caught_up(
    brokers, live_producer, workers, tmp_path
):
    warm = kill_one_of_two(brokers(), live_producer, workers, tmp_path / "warm", standby=1)
    cold = kill_one_of_two(brokers(), live_producer, workers, tmp_path / "cold", standby=0)
    print(
        f"\nstandby: replayed {warm.replayed}, resumed after {_seconds(warm.resumed_s)}"
        f"\nno standby: replayed {cold.replayed}, resumed after {_seconds(cold.resumed_s)}"
    )
    for p, stamps in warm.replayed_ms.items():
        assert len(stamps) == warm.replayed[p]
        stale = [ts for ts in stamps if ts < warm.killed_ms - CAUGHT_UP_WITHIN_MS]
        assert not stale, f"partition {p}: the standby had not applied {len(stale)} older records"
    # The control replays history a standby had already applied.
    assert any(
        ts < cold.killed_ms - CAUGHT_UP_WITHIN_MS for s in cold.replayed_ms.values() for ts in s
    )
    assert sum(warm.replayed.values()) < sum(cold.replayed.values())
    # The group notices within a session (2 s), then rebalances and recovers.
    assert max(warm.resumed_s.values()) < 6.0, warm.resumed_s


def _seconds(resumed: dict[int, float]) -> str:
    return ", ".join(f"p{p} {s:.2f}s" for p, s in sorted(resumed.items()))
