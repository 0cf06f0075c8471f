from __future__ import annotations

from log_helpers import ManualClock, make_batch

from runtime.log import Log
from runtime.log.records import decode_batches, iter_batches, validate_batch
from runtime.types import TopicPartition

TP = TopicPartition("c", 0)
NOW_MS = 10_000_000


def _compacted_log(log_path, **configs):
    clock = ManualClock(now_s=NOW_MS / 1000)
    log = Log.open(log_path, clock=clock)
    settings = {"cleanup.policy": "compact", "segment.bytes": "300", **configs}
    log.create_topic("c", 1, settings)
    return log, clock


def _put(log, key, value, ts=NOW_MS - 1000):
    return log.append(TP, make_batch([value], keys=[key], timestamp_ms=ts))


def _read_all(log, offset=None):
    start, _ = log.offsets(TP)
    return decode_batches(log.read(TP, start if offset is None else offset, 1 << 30))


def test_compaction_keeps_newest_per_key(log_path):
    log, _ = _compacted_log(log_path)
    with log:
        for i in range(30):
            _put(log, b"k%d" % (i % 3), b"v%d" % i)
        # keyless records are refused on a compacted topic; these were written
        # while it was not one, and compaction keeps them
        compacted = log.topic("c").config
        log.alter_config("c", compacted.replace(cleanup_policy="delete"))
        for i in range(5):
            _put(log, None, b"keyless%d" % i)
        log.alter_config("c", compacted)
        before = log.offsets(TP)
        active = log._partitions["c"][0].segments[-1]
        reclaimed = log.compact()
        assert reclaimed > 0
        assert log.offsets(TP) == before
        records = _read_all(log)
        sealed = [r for r in records if r.offset < active.base_offset]
        latest = {}
        for r in records:
            latest[r.key] = r.offset
        assert [r.value for r in sealed if r.key is None] == [
            b"keyless%d" % i for i in range(5) if 30 + i < active.base_offset
        ]
        keys = [r.key for r in sealed if r.key is not None]
        assert len(keys) == len(set(keys))  # one per key at most in the cleaned part
        assert {r.key: r.value for r in records if r.key} == {
            b"k0": b"v27",
            b"k1": b"v28",
            b"k2": b"v29",
        }
        for pos, _ in iter_batches(log.read(TP, 0, 1 << 30)):
            validate_batch(log.read(TP, 0, 1 << 30), pos)
        assert log.compact() == 0  # nothing left to reclaim


def test_read_in_a_compacted_gap_returns_next_batch(log_path):
    log, _ = _compacted_log(log_path)
    with log:
        for i in range(20):
            _put(log, b"same" if i < 19 else b"other", b"v%d" % i)
        for i in range(10):
            _put(log, b"tail%d" % i, b"t")
        log.compact()
        first = _read_all(log, 0)[0]
        assert first.offset > 0 or first.key == b"other"
        records = decode_batches(log.read(TP, 3, 1))
        assert records and records[0].offset >= 3


def test_compaction_removes_old_tombstones(log_path):
    log, clock = _compacted_log(log_path, **{"delete.retention.ms": "60000"})
    with log:
        _put(log, b"gone", b"v")
        _put(log, b"gone", None, ts=NOW_MS - 1000)
        for i in range(20):
            _put(log, b"filler%d" % i, b"f")
        log.compact()
        assert [r.value for r in _read_all(log) if r.key == b"gone"] == [None]  # recent: kept
        clock.advance_ms(120_000)
        log.compact()
        assert [r for r in _read_all(log) if r.key == b"gone"] == []
        assert log.offsets(TP)[0] == 0


def test_compaction_respects_min_lag(log_path):
    log, _ = _compacted_log(log_path, **{"min.compaction.lag.ms": "3600000"})
    with log:
        for i in range(20):
            _put(log, b"k", b"v%d" % i)
        assert log.compact() == 0


def test_reader_holding_old_segment_keeps_reading(log_path):
    log, _ = _compacted_log(log_path)
    with log:
        for i in range(20):
            _put(log, b"k", b"v%d" % i)
        old_segments = log._partitions["c"][0].segments
        log.compact()
        assert log._partitions["c"][0].segments is not old_segments
        data, _ = old_segments[0].read(0, 1 << 20, first_whole=True)
        assert decode_batches(data)[0].value == b"v0"


def test_compacted_log_survives_reopen(tmp_path):
    log, _ = _compacted_log(tmp_path)
    with log:
        for i in range(30):
            _put(log, b"k%d" % (i % 2), b"v%d" % i)
        log.compact()
        expected = _read_all(log)
        hw = log.offsets(TP)
    assert not list(tmp_path.glob("c-0/*.cleaned"))
    with Log.open(tmp_path) as log:
        assert log._partitions["c"][0].recovered_bytes == 0
        assert log.offsets(TP) == hw
        assert _read_all(log) == expected


def test_background_compaction_does_not_disturb_appends(log_path):
    log, _ = _compacted_log(log_path)
    with log:
        log.start_background(interval_s=0.001)
        for i in range(300):
            assert _put(log, b"k%d" % (i % 4), b"v%d" % i) == i
        log.stop_background()
        assert log.offsets(TP) == (0, 300)
        values = {r.key: r.value for r in _read_all(log)}
        assert values == {b"k0": b"v296", b"k1": b"v297", b"k2": b"v298", b"k3": b"v299"}


def _fill_dirty(log, rounds, start=0):
    for i in range(start, start + rounds):
        _put(log, b"k%d" % (i % 3), b"v%d" % i)


def test_compaction_waits_for_the_min_cleanable_dirty_ratio(log_path):
    log, _ = _compacted_log(log_path, **{"min.cleanable.dirty.ratio": "0.9"})
    with log:
        _fill_dirty(log, 30)
        assert log.compact() > 0  # all dirty: ratio 1.0
        _fill_dirty(log, 6, start=30)  # a little dirty beside the cleaned part
        assert log.compact() == 0
        config = log.topic("c").config
        log.alter_config("c", config.replace(min_cleanable_dirty_ratio=0.01))
        assert log.compact() > 0


def test_max_compaction_lag_forces_a_pass_below_the_ratio(log_path):
    log, clock = _compacted_log(
        log_path, **{"min.cleanable.dirty.ratio": "1.0", "max.compaction.lag.ms": "60000"}
    )
    with log:
        _fill_dirty(log, 30)
        assert log.compact() > 0
        _fill_dirty(log, 6, start=30)
        assert log.compact() == 0
        clock.advance_ms(61_000)
        assert log.compact() > 0
