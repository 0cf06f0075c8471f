from __future__ import annotations

import pytest
from client_helpers import broker, cluster, run

from runtime.client.consumer import Consumer
from runtime.client.errors import KafkaError
from runtime.client.offsets import EARLIEST, LATEST
from runtime.client.producer import Producer
from runtime.log.records import decode_batches
from runtime.protocol.codes import ErrorCode
from runtime.types import TopicPartition

A0, A1 = TopicPartition("events", 0), TopicPartition("events", 1)


async def _produce(c, tp: TopicPartition, values: list[bytes], timestamp_ms: int = 1000) -> None:
    async with Producer(c) as producer:
        for i, value in enumerate(values):
            await producer.send(tp, value, timestamp_ms=timestamp_ms + i)


async def _read(consumer: Consumer, count: int, *, rounds: int = 50) -> dict[TopicPartition, list]:
    """Fetch until `count` records arrived (records below the position skipped)."""
    out: dict[TopicPartition, list] = {}
    total = 0
    for _ in range(rounds):
        if total >= count:
            break
        positions = {tp: await consumer.position(tp) for tp in consumer.assignment()}
        for tp, data in (await consumer.fetch(max_wait_ms=200)).items():
            records = [r for r in decode_batches(data) if r.offset >= positions[tp]]
            out.setdefault(tp, []).extend(records)
            total += len(records)
    return out


def test_seek_pause_and_resume():
    async def main():
        async with broker(default_partitions=2) as b, cluster(b) as c:
            await _produce(c, A0, [b"a%d" % i for i in range(10)])
            await _produce(c, A1, [b"b%d" % i for i in range(10)])
            async with Consumer(c, auto_offset_reset="earliest") as consumer:
                consumer.assign([A0, A1])
                consumer.seek(A0, 5)
                consumer.pause([A1])
                got = await _read(consumer, 5)
                assert set(got) == {A0}
                assert [r.value for r in got[A0]] == [b"a%d" % i for i in range(5, 10)]
                assert await consumer.position(A0) == 10
                assert await consumer.position(A1) == 0
                consumer.resume([A1])
                got = await _read(consumer, 10)
                assert [r.value for r in got[A1]] == [b"b%d" % i for i in range(10)]
                # mid-batch seek: records below the position come in the batch, and are skipped
                consumer.seek(A1, 7)
                got = await _read(consumer, 3)
                assert [r.value for r in got[A1]] == [b"b7", b"b8", b"b9"]
                with pytest.raises(ValueError):
                    consumer.seek(TopicPartition("events", 9), 0)

    run(main())


def test_new_records_arrive_in_the_pipelined_fetch():
    async def main():
        async with broker() as b, cluster(b) as c:
            tp = TopicPartition("live", 0)
            await _produce(c, tp, [b"old"])
            async with Consumer(c) as consumer:  # latest: skips "old"
                consumer.assign([tp])
                assert await consumer.position(tp) == 1
                assert await consumer.fetch(max_wait_ms=50) == {}
                await _produce(c, tp, [b"new"])
                got = await _read(consumer, 1)
                assert [r.value for r in got[tp]] == [b"new"]

    run(main())


def test_offset_out_of_range_resets_to_the_configured_end():
    async def main():
        async with broker() as b, cluster(b) as c:
            tp = TopicPartition("short", 0)
            await _produce(c, tp, [b"x%d" % i for i in range(4)])
            async with Consumer(c, auto_offset_reset="earliest") as consumer:
                consumer.assign([tp])
                consumer.seek(tp, 1000)
                got = await _read(consumer, 4)
                assert [r.offset for r in got[tp]] == [0, 1, 2, 3]
            async with Consumer(c, auto_offset_reset="latest") as consumer:
                consumer.assign([tp])
                consumer.seek(tp, 1000)
                assert await consumer.fetch(max_wait_ms=50) == {}
                assert await consumer.position(tp) == 4
            async with Consumer(c, auto_offset_reset="none") as consumer:
                consumer.assign([tp])
                consumer.seek(tp, 1000)
                with pytest.raises(KafkaError) as info:
                    for _ in range(10):
                        await consumer.fetch(max_wait_ms=50)
                assert info.value.code == ErrorCode.OFFSET_OUT_OF_RANGE
                assert (info.value.topic, info.value.partition, info.value.offset) == (
                    "short",
                    0,
                    1000,
                )

    run(main())


def test_seek_to_beginning_and_end_and_list_offsets():
    async def main():
        async with broker() as b, cluster(b) as c:
            tp = TopicPartition("times", 0)
            await _produce(c, tp, [b"t%d" % i for i in range(5)], timestamp_ms=10_000)
            async with Consumer(c) as consumer:
                consumer.assign([tp])
                consumer.seek_to_beginning()
                assert await consumer.position(tp) == 0
                consumer.seek_to_end([tp])
                assert await consumer.position(tp) == 5
                assert await consumer.list_offsets([tp], EARLIEST) == {tp: 0}
                assert await consumer.list_offsets([tp], LATEST) == {tp: 5}
                assert await consumer.list_offsets([tp], 10_002) == {tp: 2}
                assert await consumer.list_offsets([tp], 99_999) == {tp: -1}

    run(main())


def test_commit_and_committed():
    async def main():
        async with broker(default_partitions=2) as b, cluster(b) as c:
            await c.refresh(["events"])
            async with Consumer(c) as consumer:
                assert await consumer.committed("readers", [A0, A1]) == {}
                await consumer.commit("readers", {A0: 5, A1: 7})
                await consumer.commit("readers", {A0: 6})
                assert await consumer.committed("readers", [A0, A1]) == {A0: 6, A1: 7}
                assert await consumer.committed("readers") == {A0: 6, A1: 7}
                assert await consumer.committed("others", [A0]) == {}
                with pytest.raises(KafkaError) as info:
                    await consumer.commit("readers", {A0: 8}, generation=3, member_id="ghost")
                assert info.value.code in (
                    ErrorCode.UNKNOWN_MEMBER_ID,
                    ErrorCode.ILLEGAL_GENERATION,
                )

    run(main())
