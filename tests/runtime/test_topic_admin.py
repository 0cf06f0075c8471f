"""The log under the admin APIs: configs altered at run time, partitions added,
records deleted below an offset, and what a topic's config does to a batch."""

from __future__ import annotations

import pytest
from log_helpers import ManualClock, make_batch, seq_batch

from runtime.errors import InvalidRecordError, OffsetOutOfRangeError
from runtime.log import Log
from runtime.log.append_policy import CODECS
from runtime.log.compression import compress
from runtime.log.config import TopicConfig
from runtime.log.records import (
    COMPRESSION_GZIP,
    CRC_START,
    HEADER_SIZE,
    LOG_OVERHEAD,
    TIMESTAMP_LOG_APPEND,
    crc32c,
    decode_batch,
    decode_batches,
    iter_batches,
    parse_header,
    validate_batch,
)
from runtime.log.topic_configs import SPECS
from runtime.types import TopicPartition

TP = TopicPartition("t", 0)


# --- configs -------------------------------------------------------------------


def test_every_standard_topic_config_is_accepted_and_described():
    config = TopicConfig()
    assert set(config.to_configs()) == set(SPECS)
    for name, spec in SPECS.items():
        assert TopicConfig.from_configs({name: spec.default}).to_configs()[name] == spec.default


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("compression.type", "brotli"),
        ("message.timestamp.type", "WallClock"),
        ("min.cleanable.dirty.ratio", "1.5"),
        ("min.insync.replicas", "0"),
        ("preallocate", "maybe"),
        ("index.interval.bytes", "many"),
        ("cleanup.policy", "shred"),
        ("no.such.config", "1"),
    ],
)
def test_a_bad_config_value_is_refused_naming_it(name, value):
    with pytest.raises(ValueError, match=name.replace(".", r"\.")):
        TopicConfig.from_configs({name: value})


def test_altered_configs_apply_at_once_and_survive_reopen(tmp_path):
    clock = ManualClock(now_s=1e6)
    with Log.open(tmp_path, clock=clock) as log:
        log.create_topic("t", 1, {"preallocate": "true"})
        for i in range(5):
            log.append(TP, seq_batch(i, timestamp_ms=1))
        assert len(log._partitions["t"][0].segments) == 1
        config = TopicConfig.from_configs(
            {"segment.bytes": "100", "retention.ms": "1000"}, log.topic("t").config
        )
        log.alter_config("t", config)
        for i in range(5, 10):
            log.append(TP, seq_batch(i, timestamp_ms=1))
        assert len(log._partitions["t"][0].segments) > 2  # rolled by the new segment.bytes
        assert log.enforce_retention() > 0  # expired by the new retention.ms
    with Log.open(tmp_path) as log:
        config = log.topic("t").config
        assert (config.segment_bytes, config.retention_ms) == (100, 1000)
        assert config.to_configs()["preallocate"] == "true"
        assert config.overrides == {"segment.bytes", "retention.ms", "preallocate"}
        reset = config.without(frozenset({"retention.ms"}), TopicConfig())
        assert reset.retention_ms == TopicConfig().retention_ms
        assert reset.overrides == {"segment.bytes", "preallocate"}


def test_partitions_are_added_persisted_and_never_removed(tmp_path):
    with Log.open(tmp_path) as log:
        log.create_topic("t", 1)
        log.append(TP, seq_batch(0))
        assert log.add_partitions("t", 3).partitions == 3
        log.append(TopicPartition("t", 2), seq_batch(1))
        with pytest.raises(ValueError, match="must be more"):
            log.add_partitions("t", 3)
    with Log.open(tmp_path) as log:
        assert log.topic("t").partitions == 3
        assert log.offsets(TP) == (0, 3)
        assert log.offsets(TopicPartition("t", 2)) == (0, 3)


# --- delete records ------------------------------------------------------------


def test_delete_records_moves_the_log_start_and_deletes_whole_segments(tmp_path):
    with Log.open(tmp_path) as log:
        log.create_topic("t", 1, {"segment.bytes": "200"})
        for i in range(10):
            log.append(TP, seq_batch(i))  # 3 records each
        segments = log._partitions["t"][0].segments
        assert len(segments) > 3
        assert log.delete_records(TP, 10) == 10
        assert log.offsets(TP) == (10, 30)
        remaining = log._partitions["t"][0].segments
        assert remaining[0].base_offset <= 10 < remaining[0].next_offset
        assert not (tmp_path / "t-0" / "00000000000000000000.log").exists()
        with pytest.raises(OffsetOutOfRangeError):
            log.read(TP, 9)
        assert min(r.offset for r in decode_batches(log.read(TP, 10))) <= 10
        assert log.delete_records(TP, 5) == 10  # never back
        assert log.offset_for_timestamp(TP, 0) == 10
        with pytest.raises(OffsetOutOfRangeError):
            log.delete_records(TP, 31)
    with Log.open(tmp_path) as log:
        assert log.offsets(TP) == (10, 30)
        assert log.delete_records(TP, -1) == 30  # -1: up to the high watermark
        log.append(TP, seq_batch(10))
        assert log.offsets(TP) == (30, 33)


def test_max_timestamp_offset_is_the_first_record_with_the_newest_timestamp():
    with Log.open(None) as log:
        log.create_topic("t", 1)
        assert log.max_timestamp_offset(TP) is None
        for ts in (5, 90, 7, 90, 3):
            log.append(TP, make_batch([b"v"], timestamp_ms=ts))
        assert log.max_timestamp_offset(TP) == (1, 90)
        log.delete_records(TP, 2)
        assert log.max_timestamp_offset(TP) == (3, 90)


# --- what a topic's config does to a batch ------------------------------------


def test_log_append_time_stamps_the_batch_and_keeps_it_valid():
    clock = ManualClock(now_s=1_234.5)
    with Log.open(None, clock=clock) as log:
        log.create_topic("t", 1, {"message.timestamp.type": "LogAppendTime"})
        log.append(TP, make_batch([b"a", b"b"], timestamp_ms=7))
        stored = log.read(TP, 0)
        header = validate_batch(stored)
        assert header.attributes & TIMESTAMP_LOG_APPEND
        assert header.max_timestamp == 1_234_500
        assert [r.timestamp_ms for r in decode_batch(stored)] == [1_234_500, 1_234_500]
        assert log.offset_for_timestamp(TP, 1_000_000) == 0


def test_keyless_records_are_refused_on_a_compacted_topic_and_nothing_is_stored():
    with Log.open(None) as log:
        log.create_topic("t", 1, {"cleanup.policy": "compact"})
        with pytest.raises(InvalidRecordError, match="needs a key"):
            log.append(TP, make_batch([b"a", b"b"], keys=[b"k", None]))
        assert log.offsets(TP) == (0, 0)
        log.append(TP, make_batch([b"a"], keys=[b"k"]))
        assert log.offsets(TP) == (0, 1)


def _gzip_batch(values: list[bytes]) -> bytearray:
    plain = make_batch(values, keys=[b"k"] * len(values))
    out = plain[:HEADER_SIZE] + compress(COMPRESSION_GZIP, bytes(plain[HEADER_SIZE:]))
    out[8:12] = (len(out) - LOG_OVERHEAD).to_bytes(4, "big")
    out[21:23] = (COMPRESSION_GZIP).to_bytes(2, "big")
    out[17:21] = crc32c(memoryview(out)[CRC_START:]).to_bytes(4, "big")
    return out


@pytest.mark.parametrize("codec", ["zstd", "lz4", "snappy", "uncompressed"])
def test_compression_type_recompresses_other_codecs(codec):
    with Log.open(None) as log:
        log.create_topic("t", 1, {"compression.type": codec})
        values = [b"value-%d" % i for i in range(20)]
        log.append(TP, _gzip_batch(values))
        stored = log.read(TP, 0)
        header = validate_batch(stored)
        assert header.compression == CODECS[codec]
        assert [r.value for r in decode_batch(stored)] == values
        assert [r.offset for r in decode_batch(stored)] == list(range(20))


def test_producer_compression_type_stores_the_batch_as_it_came():
    with Log.open(None) as log:
        log.create_topic("t", 1)
        batch = _gzip_batch([b"x", b"y"])
        log.append(TP, batch)
        stored = log.read(TP, 0)
        assert stored[12:] == bytes(batch[12:])
        assert [h.compression for _, h in iter_batches(stored)] == [COMPRESSION_GZIP]
        assert parse_header(stored).crc == parse_header(batch).crc
