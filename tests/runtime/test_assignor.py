"""The partition scheduler: invariants for any input, stickiness, warm takeovers."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.assignor import (
    CoPartitioningError,
    WorkerAssignment,
    WorkerState,
    assign,
    common_partition_count,
)

workers_st = st.dictionaries(
    st.text("abcdefgh", min_size=1, max_size=3),
    st.builds(
        WorkerState,
        active=st.frozensets(st.integers(0, 20), max_size=8),
        standby=st.frozensets(st.integers(0, 20), max_size=8),
    ),
    min_size=1,
    max_size=6,
)


@settings(max_examples=300, deadline=None)
@given(workers_st, st.integers(0, 16), st.integers(0, 3))
def test_every_partition_has_one_owner_balanced_with_distinct_standbys(workers, n, replicas):
    result = assign(workers, n, replicas)
    assert set(result) == set(workers)
    owners = [p for a in result.values() for p in a.active]
    assert sorted(owners) == list(range(n))
    counts = [len(a.active) for a in result.values()]
    assert max(counts) - min(counts) <= 1
    copies = min(replicas, len(workers) - 1)
    for p in range(n):
        holders = [w for w, a in result.items() if p in a.standby]
        assert len(holders) == copies
        assert all(p not in result[w].active for w in holders)
    assert assign(workers, n, replicas) == result  # deterministic


def test_sticky_when_a_worker_joins_only_what_must_move_moves():
    before = assign({"a": WorkerState(), "b": WorkerState()}, 8)
    states = {w: WorkerState(a.active, a.standby) for w, a in before.items()}
    states["c"] = WorkerState()
    after = assign(states, 8)
    moved = sum(len(before[w].active - after[w].active) for w in ("a", "b"))
    assert moved == len(after["c"].active) == 2  # 8 over 3 workers: 3, 3, 2


def test_partitions_of_a_dead_worker_go_to_its_standbys():
    first = assign({w: WorkerState() for w in "abc"}, 6, standby_replicas=1)
    dead = first["c"].active
    survivors = {w: WorkerState(first[w].active, first[w].standby) for w in ("a", "b")}
    after = assign(survivors, 6, standby_replicas=1)
    for p in dead:
        warm = [w for w in ("a", "b") if p in first[w].standby]
        assert warm, "every partition had a standby"
        assert p in after[warm[0]].active


def test_no_workers_no_assignment_and_single_worker_gets_all():
    assert assign({}, 4) == {}
    assert assign({"only": WorkerState()}, 3, standby_replicas=2) == {
        "only": WorkerAssignment(frozenset({0, 1, 2}), frozenset())
    }


def test_mismatched_partition_counts_are_a_clear_error():
    assert common_partition_count({"rides": 8, "app-counts-changelog": 8}) == 8
    with pytest.raises(CoPartitioningError, match="rides=8") as info:
        common_partition_count({"rides": 8, "app-counts-changelog": 4})
    assert "app-counts-changelog=4" in str(info.value)
