from __future__ import annotations

import itertools
import threading

from log_helpers import ManualClock, seq_batch

from runtime.log.config import FlushPolicy, TopicConfig
from runtime.log.partition import Partition
from runtime.log.records import decode_batches
from runtime.types import TopicPartition

TP = TopicPartition("p", 0)


def _partition(directory=None, **config):
    return Partition.open(TP, directory, TopicConfig(**config), FlushPolicy(), ManualClock())


def test_roll_never_splits_a_batch_and_bases_follow():
    partition = _partition(segment_bytes=500)
    for i in range(20):
        partition.append(seq_batch(i))
    segments = partition.segments
    for before, after in itertools.pairwise(segments):
        assert after.base_offset == before.next_offset
    assert partition.offsets() == (0, 60)


def test_sealed_segment_reopens_from_its_indexes(tmp_path):
    partition = _partition(tmp_path, segment_bytes=2000)
    for i in range(100):
        partition.append(seq_batch(i))
    sealed = partition.segments[0]
    partition.close()
    reopened = _partition(tmp_path, segment_bytes=2000)
    first = reopened.segments[0]
    assert list(first.offset_index.offsets) == list(sealed.offset_index.offsets)
    assert first.max_timestamp == sealed.max_timestamp
    assert reopened.offsets() == (0, 300)
    reopened.close()


def test_concurrent_readers_see_only_whole_batches():
    partition = _partition(segment_bytes=3000)
    done = threading.Event()
    errors: list[BaseException] = []

    def reader() -> None:
        try:
            while not done.is_set():
                start, end = partition.offsets()
                if end > start:
                    records = decode_batches(partition.read(start, 1 << 20))
                    assert [r.offset for r in records] == list(range(start, start + len(records)))
        except BaseException as exc:  # reported below
            errors.append(exc)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for i in range(500):
            partition.append(seq_batch(i))
    finally:
        done.set()
        thread.join(timeout=10)
    assert not errors


def test_flush_policy_interval_syncs_only_after_interval(monkeypatch, tmp_path):
    clock = ManualClock()
    partition = Partition.open(
        TP, tmp_path, TopicConfig(), FlushPolicy("interval", flush_interval_ms=100), clock
    )
    syncs = []
    storage = partition.segments[-1].storage
    monkeypatch.setattr(type(storage), "sync", lambda self: syncs.append(1))
    partition.append(seq_batch(0))
    clock.advance_ms(50)
    partition.append(seq_batch(1))
    assert syncs == []
    clock.advance_ms(60)
    partition.append(seq_batch(2))
    assert syncs == [1]
    monkeypatch.undo()
    partition.close()


def test_retention_and_compaction_skip_a_deleted_partition():
    partition = _partition(segment_bytes=200, retention_ms=1)
    for i in range(10):
        partition.append(seq_batch(i, timestamp_ms=1))
    partition.close()
    assert partition.enforce_retention(now_ms=1e12) == 0
