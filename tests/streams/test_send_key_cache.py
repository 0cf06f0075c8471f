"""A topic remembers the bytes and partition of str keys it sent: a record goes
where Kafka's partitioner puts its key, also once the topic's partition count
changed (adopted from the broker), and keys the cache cannot hold still go right."""

from __future__ import annotations

import asyncio

import streams
from runtime.log.records import decode_batches
from runtime.partitioner import partition_for_key
from runtime.types import TopicPartition
from streams.worker import Worker


async def _stored(worker: Worker, topic: streams.Topic) -> dict[int, list[bytes]]:
    assert worker.producer is not None
    await worker.producer.flush()
    keys: dict[int, list[bytes]] = {}
    for p in range(8):  # every partition the topic had
        tp = TopicPartition(topic.name, p)
        data = await worker.transport.fetch(tp, 0, max_wait_s=0)
        keys[tp.partition] = [r.key for r in decode_batches(data)]
    return keys


def test_a_cached_key_goes_to_its_partition_after_the_count_changes() -> None:
    asyncio.run(_count_changes())


async def _count_changes() -> None:
    app = streams.App("key-cache", broker="memory://")
    out = app.topic("key-cache-out", key_type=str, partitions=8)
    async with Worker(app) as worker:
        out.send_soon("user-7", {"n": 1})
        out.send_soon("user-7", {"n": 2})  # from the cache
        first = partition_for_key(b"user-7", 8)
        out.partitions = 3  # as the conductor does for a topic that exists
        out.send_soon("user-7", {"n": 3})
        moved = partition_for_key(b"user-7", 3)
        stored = await _stored(worker, out)
    assert first != moved  # else the test shows nothing
    assert stored[first][:2] == [b"user-7", b"user-7"]
    assert b"user-7" in stored[moved]


def test_keys_too_long_to_cache_and_other_key_types_are_sent_as_before() -> None:
    asyncio.run(_uncached_keys())


async def _uncached_keys() -> None:
    app = streams.App("key-cache-long", broker="memory://")
    out = app.topic("key-cache-long-out", key_type=str, partitions=8)
    ints = app.topic("key-cache-ints", key_type=int, partitions=8)
    long_key = "k" * 200
    async with Worker(app) as worker:
        out.send_soon(long_key, 1)
        out.send_soon(long_key, 2)
        ints.send_soon(1, 1)
        ints.send_soon(True, 2)  # equal to 1 and of the same hash, but not the same bytes
        stored = await _stored(worker, out)
        stored_ints = await _stored(worker, ints)
    assert stored[partition_for_key(long_key.encode(), 8)] == [long_key.encode()] * 2
    assert long_key not in out._key_cache
    assert stored_ints[partition_for_key(b"1", 8)] == [b"1"]
    assert stored_ints[partition_for_key(b"true", 8)][-1:] == [b"true"]
