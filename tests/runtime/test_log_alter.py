"""Log.alter_topic: partitions are added (never removed), configs are set, and
a catalog write that fails changes nothing."""

from __future__ import annotations

import pytest

from runtime.errors import StorageError, UnknownTopicError
from runtime.log import data_dir
from runtime.log.manager import Log
from runtime.log.records import encode_batch
from runtime.types import TopicPartition


def test_alter_adds_partitions_and_sets_configs_that_survive_a_reopen(tmp_path):
    with Log.open(tmp_path) as log:
        log.create_topic("t", 2, {"retention.ms": "1000"})
        log.append(TopicPartition("t", 1), encode_batch([(b"k", b"v", 1, ())]))
        info = log.alter_topic("t", partitions=3, configs={"segment.bytes": "65536"})
        assert info.partitions == 3 and info.config.segment_bytes == 65536
        assert info.config.retention_ms == 1000  # configs not given keep their values
        assert log.append(TopicPartition("t", 2), encode_batch([(b"k", b"v", 1, ())])) == 0
    with Log.open(tmp_path) as log:
        info = log.topic("t")
        assert (info.partitions, info.config.segment_bytes) == (3, 65536)
        assert log.offsets(TopicPartition("t", 1)) == (0, 1)


def test_alter_refuses_fewer_partitions_unknown_configs_and_topics(tmp_path):
    with Log.open(tmp_path) as log:
        log.create_topic("t", 2)
        with pytest.raises(ValueError, match="added, not removed"):
            log.alter_topic("t", partitions=1)
        with pytest.raises(ValueError, match="unknown topic config"):
            log.alter_topic("t", configs={"nope": "1"})
        with pytest.raises(UnknownTopicError):
            log.alter_topic("missing", partitions=3)
        assert log.topic("t").partitions == 2


def test_a_failed_catalog_write_changes_nothing(tmp_path, monkeypatch):
    with Log.open(tmp_path) as log:
        log.create_topic("t", 1)

        def full_disk(*args, **kwargs):
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(data_dir, "save_catalog", full_disk)
        with pytest.raises(StorageError):
            log.alter_topic("t", partitions=2, configs={"retention.ms": "5"})
        assert log.topic("t").partitions == 1
        assert log.topic("t").config.retention_ms != 5
        assert not (tmp_path / "t-1").exists()
