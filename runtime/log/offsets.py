"""Consumer group offsets, kept in the compacted internal topic __consumer_offsets.

Record format (big-endian; strings are int16 length + UTF-8):

    key   = version int16 (= 1), group string, topic string, partition int32
    value = version int16 (= 3), offset int64, leader_epoch int32 (-1: none),
            metadata (int32 length + UTF-8), commit_timestamp_ms int64
            (version 1, written before leader epochs were kept, has no leader_epoch)
    a null value (tombstone) deletes the commit of that key

All commits of a group go to partition crc32(group) % partitions of
__consumer_offsets, one batch per commit() call, so a commit is atomic and the
newest record per key wins when the topic is replayed on construction. A
group's metadata record (runtime/log/group_metadata.py, key version 2) goes to
the same partition.
"""

from __future__ import annotations

import struct
import threading
import zlib
from collections.abc import Iterable, Mapping
from typing import NamedTuple

from runtime.errors import CorruptRecordError
from runtime.log.group_metadata import (
    GROUP_KEY_VERSION,
    GroupMetadata,
    decode_group_key,
    decode_group_value,
    encode_group_key,
    encode_group_value,
    key_version,
)
from runtime.log.manager import Log
from runtime.log.records import decode_batches, encode_batch, iter_batches
from runtime.types import TopicPartition

OFFSETS_TOPIC = "__consumer_offsets"
_VERSION = 1  # of keys, and of values without a leader epoch
_VALUE_VERSION = 3
_INT16 = struct.Struct(">h")
_INT32 = struct.Struct(">i")
_VALUE_HEAD = struct.Struct(">hq")
_INT64 = struct.Struct(">q")
_READ_BYTES = 1 << 20


class Commit(NamedTuple):
    """A committed position: the next offset to read, the client's metadata string,
    and the leader epoch of the last record read (KIP-320; -1 when not given)."""

    offset: int
    metadata: str
    leader_epoch: int = -1


def encode_key(group: str, tp: TopicPartition) -> bytes:
    g, t = group.encode(), tp.topic.encode()
    return b"".join(
        (
            _INT16.pack(_VERSION),
            _INT16.pack(len(g)),
            g,
            _INT16.pack(len(t)),
            t,
            _INT32.pack(tp.partition),
        )
    )


def decode_key(key: bytes) -> tuple[str, TopicPartition]:
    try:
        (version,) = _INT16.unpack_from(key, 0)
        if version != _VERSION:
            raise CorruptRecordError(f"offset key version {version} is not supported")
        (glen,) = _INT16.unpack_from(key, 2)
        group = key[4 : 4 + glen].decode()
        pos = 4 + glen
        (tlen,) = _INT16.unpack_from(key, pos)
        topic = key[pos + 2 : pos + 2 + tlen].decode()
        (partition,) = _INT32.unpack_from(key, pos + 2 + tlen)
    except (struct.error, UnicodeDecodeError) as exc:
        raise CorruptRecordError(f"bad offset commit key: {exc}") from None
    return group, TopicPartition(topic, partition)


def encode_value(commit: Commit, timestamp_ms: int) -> bytes:
    meta = commit.metadata.encode()
    return b"".join(
        (
            _VALUE_HEAD.pack(_VALUE_VERSION, commit.offset),
            _INT32.pack(commit.leader_epoch),
            _INT32.pack(len(meta)),
            meta,
            _INT64.pack(timestamp_ms),
        )
    )


def decode_value(value: bytes) -> Commit:
    try:
        version, offset = _VALUE_HEAD.unpack_from(value, 0)
        if version == _VALUE_VERSION:
            (epoch,) = _INT32.unpack_from(value, 10)
            pos = 14
        elif version == _VERSION:
            epoch, pos = -1, 10
        else:
            raise CorruptRecordError(f"offset value version {version} is not supported")
        (mlen,) = _INT32.unpack_from(value, pos)
        metadata = value[pos + 4 : pos + 4 + mlen].decode()
    except (struct.error, UnicodeDecodeError) as exc:
        raise CorruptRecordError(f"bad offset commit value: {exc}") from None
    return Commit(offset, metadata, epoch)


class OffsetStore:
    """Consumer group offsets, persisted in the compacted internal topic __consumer_offsets."""

    def __init__(self, log: Log, partitions: int = 8) -> None:
        self._log = log
        self._lock = threading.Lock()
        self._commits: dict[str, dict[TopicPartition, Commit]] = {}
        self._metadata: dict[str, GroupMetadata] = {}
        topics = log.topics()
        if OFFSETS_TOPIC in topics:
            self._partitions = topics[OFFSETS_TOPIC].partitions
        else:
            log.create_topic(OFFSETS_TOPIC, partitions, {"cleanup.policy": "compact"})
            self._partitions = partitions
        for p in range(self._partitions):
            self._replay(TopicPartition(OFFSETS_TOPIC, p))

    def _replay(self, tp: TopicPartition) -> None:
        offset, end = self._log.offsets(tp)
        while offset < end:
            data = self._log.read(tp, offset, _READ_BYTES)
            for record in decode_batches(data):
                if record.key is None:
                    continue
                if key_version(record.key) == GROUP_KEY_VERSION:
                    self._apply_metadata(decode_group_key(record.key), record.value)
                else:
                    group, committed = decode_key(record.key)
                    self._apply(group, committed, record.value)
            offset = max(offset + 1, *(h.next_offset for _, h in iter_batches(data)))

    def _apply(self, group: str, tp: TopicPartition, value: bytes | None) -> None:
        if value is None:
            commits = self._commits.get(group)
            if commits is not None:
                commits.pop(tp, None)
                if not commits:
                    del self._commits[group]
        else:
            self._commits.setdefault(group, {})[tp] = decode_value(value)

    def _apply_metadata(self, group: str, value: bytes | None) -> None:
        if value is None:
            self._metadata.pop(group, None)
        else:
            self._metadata[group] = decode_group_value(value)

    def _partition_of(self, group: str) -> TopicPartition:
        return TopicPartition(OFFSETS_TOPIC, zlib.crc32(group.encode()) % self._partitions)

    def commit(
        self, group: str, offsets: Mapping[TopicPartition, Commit | tuple[int, str]]
    ) -> None:
        """Store commits, given as Commit or (offset, metadata), in one batch."""
        if not offsets:
            return
        now_ms = int(self._log_clock_ms())
        commits = {tp: Commit(*value) for tp, value in offsets.items()}
        records = [
            (encode_key(group, tp), encode_value(commit, now_ms), now_ms, ())
            for tp, commit in commits.items()
        ]
        with self._lock:
            self._log.append(self._partition_of(group), encode_batch(records))
            self._commits.setdefault(group, {}).update(commits)

    def fetch(
        self, group: str, tps: Iterable[TopicPartition] | None = None
    ) -> dict[TopicPartition, Commit]:
        with self._lock:
            commits = dict(self._commits.get(group, {}))
        if tps is None:
            return commits
        return {tp: commits[tp] for tp in tps if tp in commits}

    def groups(self) -> list[str]:
        """Groups with commits: those a coordinator knows when they are Empty (as Kafka
        drops an Empty group without offsets, its metadata alone does not count)."""
        with self._lock:
            return sorted(self._commits)

    def metadata(self, group: str) -> GroupMetadata | None:
        with self._lock:
            return self._metadata.get(group)

    def record_group(self, group: str, meta: GroupMetadata) -> None:
        """Write down what kind of group this is (it outlives the group's members)."""
        with self._lock:
            now_ms = int(self._log_clock_ms())
            record = (encode_group_key(group), encode_group_value(meta, now_ms), now_ms, ())
            self._log.append(self._partition_of(group), encode_batch([record]))
            self._metadata[group] = meta

    def delete_offsets(self, group: str, tps: Iterable[TopicPartition]) -> None:
        """Tombstone the commits of these partitions (OffsetDelete), in one batch."""
        with self._lock:
            commits = self._commits.get(group, {})
            doomed = [tp for tp in tps if tp in commits]
            if not doomed:
                return
            now_ms = int(self._log_clock_ms())
            records = [(encode_key(group, tp), None, now_ms, ()) for tp in doomed]
            self._log.append(self._partition_of(group), encode_batch(records))
            for tp in doomed:
                del commits[tp]
            if not commits:
                del self._commits[group]

    def delete_group(self, group: str) -> None:
        """Tombstone the group's commits and its metadata, in one batch."""
        with self._lock:
            commits = self._commits.get(group, {})
            if not commits and group not in self._metadata:
                return
            now_ms = int(self._log_clock_ms())
            records = [(encode_key(group, tp), None, now_ms, ()) for tp in commits]
            if group in self._metadata:
                records.append((encode_group_key(group), None, now_ms, ()))
            self._log.append(self._partition_of(group), encode_batch(records))
            self._commits.pop(group, None)
            self._metadata.pop(group, None)

    def _log_clock_ms(self) -> float:
        return self._log.clock() * 1000
