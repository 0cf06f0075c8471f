from __future__ import annotations

import time

import pytest
from log_helpers import ManualClock, make_batch, seq_batch

from runtime.errors import (
    CorruptRecordError,
    InvalidTopicError,
    LogClosedError,
    OffsetOutOfRangeError,
    RecordTooLargeError,
    TopicExistsError,
    UnknownTopicError,
)
from runtime.log import Log, TopicConfig
from runtime.log.records import CONTROL, decode_batches, encode_batch
from runtime.types import TopicPartition

TP = TopicPartition("t", 0)


@pytest.fixture
def log(log_path):
    with Log.open(log_path) as log:
        log.create_topic("t", 2)
        yield log


def test_append_returns_base_offsets_and_read_returns_them(log):
    assert log.append(TP, seq_batch(0)) == 0
    assert log.append(TP, seq_batch(1)) == 3
    assert log.offsets(TP) == (0, 6)
    records = decode_batches(log.read(TP, 0))
    assert [(r.offset, r.value) for r in records] == [
        (0, b"0:0"), (1, b"0:1"), (2, b"0:2"), (3, b"1:0"), (4, b"1:1"), (5, b"1:2")
    ]  # fmt: skip
    assert log.offsets(TopicPartition("t", 1)) == (0, 0)


def test_read_mid_batch_returns_containing_batch(log):
    for i in range(3):
        log.append(TP, seq_batch(i))
    assert [r.offset for r in decode_batches(log.read(TP, 4, max_bytes=1))] == [3, 4, 5]


def test_read_returns_first_batch_even_if_larger_than_max_bytes(log):
    log.append(TP, make_batch([b"x" * 5000]))
    log.append(TP, make_batch([b"y"]))
    data = log.read(TP, 0, max_bytes=10)
    assert [r.value for r in decode_batches(data)] == [b"x" * 5000]


def test_read_at_high_watermark_is_empty_and_beyond_is_out_of_range(log):
    log.append(TP, seq_batch(0))
    assert log.read(TP, 3) == b""
    with pytest.raises(OffsetOutOfRangeError, match=r"offset 4 .*\[0, 3\]") as info:
        log.read(TP, 4)
    assert (info.value.topic, info.value.partition, info.value.offset) == ("t", 0, 4)
    with pytest.raises(OffsetOutOfRangeError):
        log.read(TP, -1)


def test_append_rejects_oversized_batch(log_path):
    with Log.open(log_path) as log:
        log.create_topic("small", 1, {"max.message.bytes": "100"})
        batch = make_batch([b"x" * 200])
        with pytest.raises(RecordTooLargeError, match=rf"{len(batch)} bytes.*small.*100"):
            log.append(TopicPartition("small", 0), batch)
        assert log.offsets(TopicPartition("small", 0)) == (0, 0)


def test_append_rejects_corrupt_batch(log):
    batch = seq_batch(0)
    batch[-1] ^= 1
    with pytest.raises(CorruptRecordError, match=r"t\[0\].*CRC") as info:
        log.append(TP, batch)
    assert info.value.topic == "t"
    assert log.offsets(TP) == (0, 0)


def test_append_rejects_two_batches(log):
    with pytest.raises(CorruptRecordError, match="exactly one batch"):
        log.append(TP, seq_batch(0) + seq_batch(1))


def test_append_rejects_control_batch(log):
    with pytest.raises(CorruptRecordError, match="control"):
        log.append(TP, encode_batch([(b"k", b"v", 1, ())], attributes=CONTROL))


def test_unknown_topic_and_partition(log):
    with pytest.raises(UnknownTopicError, match="nope"):
        log.append(TopicPartition("nope", 0), seq_batch(0))
    with pytest.raises(UnknownTopicError, match="no partition 2"):
        log.read(TopicPartition("t", 2), 0)
    with pytest.raises(UnknownTopicError):
        log.topic("nope")


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "a b", "é", "x" * 250, "../etc"])
def test_bad_topic_name_rejected(log, name):
    with pytest.raises(InvalidTopicError):
        log.create_topic(name, 1)


def test_topic_name_cannot_escape_data_dir(tmp_path):
    data = tmp_path / "data"
    with Log.open(data) as log:
        for name in ("../outside", "/abs", "..", "a/../../b"):
            with pytest.raises(InvalidTopicError):
                log.create_topic(name, 1)
        log.create_topic("...", 1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]
    assert (data / "...-0").is_dir()


def test_create_topic_checks(log):
    with pytest.raises(TopicExistsError):
        log.create_topic("t", 1)
    with pytest.raises(ValueError, match="partitions"):
        log.create_topic("u", 0)
    with pytest.raises(ValueError, match="unknown topic config 'bogus'"):
        log.create_topic("u", 1, {"bogus": "1"})
    with pytest.raises(ValueError, match=r"retention\.ms"):
        log.create_topic("u", 1, {"retention.ms": "soon"})
    assert "u" not in log.topics()


def test_topic_configs_layer_over_default(tmp_path):
    default = TopicConfig(retention_ms=5)
    with Log.open(tmp_path, default_config=default) as log:
        info = log.create_topic("c", 3, {"cleanup.policy": "compact", "segment.bytes": "1000"})
    assert info.config == TopicConfig(retention_ms=5, cleanup_policy="compact", segment_bytes=1000)
    assert TopicConfig.from_configs(info.config.to_configs()) == info.config


def test_catalog_survives_reopen(tmp_path):
    with Log.open(tmp_path) as log:
        log.create_topic("a", 2, {"retention.ms": "60000"})
        log.create_topic("b", 1)
        log.append(TopicPartition("a", 1), seq_batch(0))
        log.delete_topic("b")
    with Log.open(tmp_path) as log:
        assert list(log.topics()) == ["a"]
        assert log.topic("a").partitions == 2
        assert log.topic("a").config.retention_ms == 60000
        assert log.offsets(TopicPartition("a", 1)) == (0, 3)
    assert not (tmp_path / "b-0").exists()


def test_delete_topic_removes_files(tmp_path):
    with Log.open(tmp_path) as log:
        log.create_topic("gone", 2)
        log.append(TopicPartition("gone", 0), seq_batch(0))
        log.delete_topic("gone")
        assert not (tmp_path / "gone-0").exists()
        with pytest.raises(UnknownTopicError):
            log.delete_topic("gone")
        with pytest.raises(UnknownTopicError):
            log.read(TopicPartition("gone", 0), 0)


def test_use_after_close_raises(log_path):
    log = Log.open(log_path)
    log.create_topic("t", 1)
    log.close()
    log.close()
    with pytest.raises(LogClosedError):
        log.append(TP, seq_batch(0))
    with pytest.raises(LogClosedError):
        log.topics()


def test_segments_roll_by_size_and_reads_span_them(log_path):
    with Log.open(log_path) as log:
        log.create_topic("r", 1, {"segment.bytes": "1000"})
        tp = TopicPartition("r", 0)
        for i in range(40):
            log.append(tp, seq_batch(i))
        segments = log._partitions["r"][0].segments
        assert len(segments) > 3
        assert all(s.size <= 1000 for s in segments)
        records = decode_batches(log.read(tp, 0, max_bytes=1 << 20))
        assert [r.offset for r in records] == list(range(120))
        assert decode_batches(log.read(tp, 100, max_bytes=1))[0].offset == 99


def test_segments_roll_by_age(log_path):
    clock = ManualClock()
    with Log.open(log_path, clock=clock) as log:
        log.create_topic("r", 1, {"segment.ms": "1000"})
        tp = TopicPartition("r", 0)
        log.append(tp, seq_batch(0))
        clock.advance_ms(999)
        log.append(tp, seq_batch(1))
        assert len(log._partitions["r"][0].segments) == 1
        clock.advance_ms(2)
        assert log.append(tp, seq_batch(2)) == 6
        assert [s.base_offset for s in log._partitions["r"][0].segments] == [0, 6]


def test_offset_for_timestamp(log_path):
    with Log.open(log_path) as log:
        log.create_topic("ts", 1, {"segment.bytes": "500"})
        tp = TopicPartition("ts", 0)
        for i in range(30):
            log.append(tp, make_batch([b"a", b"b"], timestamp_ms=10_000 + 100 * i))
        assert log.offset_for_timestamp(tp, 0) == 0
        assert log.offset_for_timestamp(tp, 10_001) == 1
        assert log.offset_for_timestamp(tp, 10_050) == 2
        assert log.offset_for_timestamp(tp, 12_901) == 59
        assert log.offset_for_timestamp(tp, 12_902) is None


def test_retention_by_time_deletes_whole_segments(log_path):
    clock = ManualClock(now_s=100.0)
    with Log.open(log_path, clock=clock) as log:
        log.create_topic("old", 1, {"segment.bytes": "400", "retention.ms": "10000"})
        tp = TopicPartition("old", 0)
        for i in range(10):  # timestamps 50_000.. : old
            log.append(tp, seq_batch(i, timestamp_ms=50_000 + i))
        for i in range(10, 20):  # timestamps 95_000..: recent
            log.append(tp, seq_batch(i, timestamp_ms=95_000 + i))
        bases = [s.base_offset for s in log._partitions["old"][0].segments]
        deleted = log.enforce_retention()
        assert deleted > 0
        left = log._partitions["old"][0].segments
        assert [s.base_offset for s in left] == bases[deleted:]
        assert all(s.max_timestamp >= 90_000 for s in left[:-1])
        start, end = log.offsets(tp)
        assert start == left[0].base_offset > 0 and end == 60
        assert decode_batches(log.read(tp, start))[0].offset == start
        with pytest.raises(OffsetOutOfRangeError):
            log.read(tp, 0)
        clock.advance_ms(1_000_000)
        log.enforce_retention()
        assert len(log._partitions["old"][0].segments) == 1  # never the active one
        assert log.offsets(tp)[1] == 60


def test_retention_by_bytes(log_path):
    with Log.open(log_path) as log:
        log.create_topic(
            "big", 1, {"segment.bytes": "400", "retention.bytes": "1000", "retention.ms": "-1"}
        )
        tp = TopicPartition("big", 0)
        for i in range(30):
            log.append(tp, seq_batch(i))
        assert log.enforce_retention() > 0
        segments = log._partitions["big"][0].segments
        # the oldest segments go while what is left stays at or above the limit
        assert sum(s.size for s in segments[1:]) < 1000 <= sum(s.size for s in segments)
        assert log.offsets(tp) == (segments[0].base_offset, 90)


def test_retention_skips_compact_only_topics(log_path):
    clock = ManualClock(now_s=1e6)
    with Log.open(log_path, clock=clock) as log:
        log.create_topic("c", 1, {"segment.bytes": "200", "cleanup.policy": "compact"})
        for i in range(10):
            log.append(TopicPartition("c", 0), seq_batch(i, timestamp_ms=1, key=b"k"))
        assert log.enforce_retention() == 0


def test_background_thread_runs_retention(log_path):
    clock = ManualClock(now_s=1e6)
    with Log.open(log_path, clock=clock) as log:
        log.create_topic("bg", 1, {"segment.bytes": "200", "retention.ms": "1"})
        tp = TopicPartition("bg", 0)
        for i in range(10):
            log.append(tp, seq_batch(i, timestamp_ms=1))
        log.start_background(interval_s=0.01)
        for _ in range(500):
            if len(log._partitions["bg"][0].segments) == 1:
                break
            time.sleep(0.01)
        log.stop_background()
        assert len(log._partitions["bg"][0].segments) == 1


def test_public_names_are_pinned():
    import runtime.log

    assert sorted(runtime.log.__all__) == [
        "FlushPolicy",
        "Log",
        "OffsetStore",
        "TopicConfig",
        "TopicInfo",
        "validate_topic_name",
    ]
