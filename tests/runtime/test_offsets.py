from __future__ import annotations

import pytest

from runtime.errors import CorruptRecordError
from runtime.log import Log, OffsetStore
from runtime.log.group_metadata import (
    GROUP_KEY_VERSION,
    GroupMetadata,
    decode_group_key,
    decode_group_value,
    encode_group_key,
    encode_group_value,
    key_version,
)
from runtime.log.offsets import (
    OFFSETS_TOPIC,
    Commit,
    decode_key,
    decode_value,
    encode_key,
    encode_value,
)
from runtime.types import TopicPartition

A0, A1, B0 = TopicPartition("a", 0), TopicPartition("a", 1), TopicPartition("b", 0)


def test_commit_then_fetch(log_path):
    with Log.open(log_path) as log:
        store = OffsetStore(log)
        assert log.topic(OFFSETS_TOPIC).config.cleanup_policy == "compact"
        store.commit("g1", {A0: (10, "meta"), A1: (20, "")})
        store.commit("g1", {A0: (11, "later")})
        store.commit("g2", {B0: (5, "")})
        assert store.fetch("g1") == {A0: (11, "later", -1), A1: (20, "", -1)}
        assert store.fetch("g1", [A1, B0]) == {A1: (20, "", -1)}
        assert store.fetch("nobody") == {}
        assert store.groups() == ["g1", "g2"]


def test_commits_survive_reopen_and_delete_group_tombstones(tmp_path):
    with Log.open(tmp_path) as log:
        store = OffsetStore(log, partitions=3)
        store.commit("g1", {A0: (10, "m")})
        store.commit("g2", {B0: (7, "x")})
        store.delete_group("g2")
        assert store.groups() == ["g1"]
    with Log.open(tmp_path) as log:
        store = OffsetStore(log, partitions=8)  # the existing partition count wins
        assert log.topic(OFFSETS_TOPIC).partitions == 3
        assert store.fetch("g1") == {A0: (10, "m", -1)}
        assert store.groups() == ["g1"]


def test_offsets_topic_compacts_to_latest_commits(tmp_path):
    with Log.open(tmp_path) as log:
        log.create_topic(OFFSETS_TOPIC, 1, {"cleanup.policy": "compact", "segment.bytes": "500"})
        store = OffsetStore(log)
        for i in range(100):
            store.commit("g", {A0: (i, ""), A1: (1000 + i, "")})
        assert log.compact() > 0
    with Log.open(tmp_path) as log:
        assert OffsetStore(log).fetch("g") == {A0: (99, "", -1), A1: (1099, "", -1)}


def test_key_and_value_encoding_roundtrip():
    assert decode_key(encode_key("grüppe", A1)) == ("grüppe", A1)
    assert decode_value(encode_value(Commit(123, "meta data", 7), 55)) == (123, "meta data", 7)
    # version 1 values (no leader epoch) still decode
    legacy = bytes.fromhex("0001000000000000007b00000004") + b"meta" + bytes(8)
    assert decode_value(legacy) == Commit(123, "meta", -1)


def test_a_groups_metadata_survives_reopen_and_delete_group_tombstones_it(tmp_path):
    meta = GroupMetadata("consumer", 3, "range", "member-1")
    with Log.open(tmp_path) as log:
        store = OffsetStore(log, partitions=2)
        store.commit("g1", {A0: (10, "")})
        store.record_group("g1", meta)
        store.record_group("only-meta", GroupMetadata("connect"))
        store.record_group("gone", meta)
        store.delete_group("gone")
    with Log.open(tmp_path) as log:
        store = OffsetStore(log)
        assert store.metadata("g1") == meta
        assert store.fetch("g1") == {A0: (10, "", -1)}  # offset records still decode
        assert store.metadata("gone") is None
        assert store.metadata("only-meta") == GroupMetadata("connect")
        assert store.groups() == ["g1"]  # those with offsets: metadata alone keeps none


def test_group_metadata_encoding_roundtrip_and_refusals():
    meta = GroupMetadata("consumer", 7, None, None)
    key = encode_group_key("grüppe")
    assert key_version(key) == GROUP_KEY_VERSION
    assert decode_group_key(key) == "grüppe"
    assert decode_group_value(encode_group_value(meta, 5)) == meta
    with pytest.raises(CorruptRecordError):
        decode_group_value(b"\x00\x09")  # a version from the future
    with pytest.raises(CorruptRecordError):
        decode_group_value(b"\x00\x03\x00\x20con")  # a string past the value's end
