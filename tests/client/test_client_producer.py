from __future__ import annotations

import asyncio

import pytest
from client_helpers import CuttingProxy, broker, cluster, run, stored_values

from runtime.broker.server import Address
from runtime.client.errors import KafkaError
from runtime.client.producer import Producer
from runtime.log.records import iter_batches, parse_header
from runtime.partitioner import partition_for_key
from runtime.protocol.codes import ApiKey, ErrorCode
from runtime.types import TopicPartition


def _batch_headers(b, tp):
    log = b.transport.log
    data = log.read(tp, 0, 1 << 24)
    return [header for _, header in iter_batches(data)]


def test_idempotent_round_trip_keeps_per_partition_order():
    async def main():
        async with broker(default_partitions=4) as b, cluster(b) as c:
            async with Producer(c, linger_ms=1, batch_bytes_max=2048) as producer:
                futures = [
                    await producer.send("orders", b"%d" % i, key=b"key-%d" % (i % 7))
                    for i in range(1000)
                ]
                offsets = await asyncio.gather(*futures)
                assert producer.producer_id >= 0
            expected: dict[int, list[bytes]] = {}
            for i in range(1000):
                p = partition_for_key(b"key-%d" % (i % 7), 4)
                expected.setdefault(p, []).append(b"%d" % i)
            for p, values in expected.items():
                tp = TopicPartition("orders", p)
                assert stored_values(b, tp) == values
                headers = _batch_headers(b, tp)
                assert len(headers) > 1  # several batches, so order across batches counts
                assert {h.producer_id for h in headers} == {producer.producer_id}
                sequence = 0
                for h in headers:
                    assert h.base_sequence == sequence
                    sequence += h.record_count
            # each partition's offsets count up from 0 in send order
            by_partition: dict[int, list[int]] = {}
            for i, offset in enumerate(offsets):
                by_partition.setdefault(partition_for_key(b"key-%d" % (i % 7), 4), []).append(
                    offset
                )
            for values in by_partition.values():
                assert values == list(range(len(values)))

    run(main())


def test_a_batch_retried_after_a_lost_answer_is_stored_once():
    async def main():
        proxy = CuttingProxy()
        await proxy.start()
        async with broker(advertise=Address("127.0.0.1", proxy.port)) as b:
            assert b.address is not None
            proxy.upstream = ("127.0.0.1", b.address.port)
            tp = TopicPartition("payments", 0)
            b.transport.log.create_topic(tp.topic, 1)
            async with cluster(f"127.0.0.1:{proxy.port}") as c, Producer(c) as producer:
                assert await producer.send_and_wait(tp, b"first") == 0
                proxy.arm(ApiKey.PRODUCE)  # the broker stores the next batch; its answer is lost
                futures = [await producer.send(tp, b"v%d" % i) for i in range(5)]
                assert await asyncio.gather(*futures) == [1, 2, 3, 4, 5]
                assert proxy.cuts == 1
                assert await producer.send_and_wait(tp, b"last") == 6
            assert stored_values(b, tp) == [b"first", b"v0", b"v1", b"v2", b"v3", b"v4", b"last"]
        await proxy.stop()

    run(main())


def test_non_idempotent_producers_with_acks_one_and_zero():
    async def main():
        async with broker() as b, cluster(b) as c:
            tp = TopicPartition("plain", 0)
            async with Producer(c, acks=1, idempotent=False) as producer:
                assert await producer.send_and_wait(tp, b"a") == 0
            assert parse_header(b.transport.log.read(tp, 0, 1 << 16)).producer_id == -1
            async with Producer(c, acks=0, idempotent=False) as producer:
                assert await producer.send_and_wait(tp, b"b") == -1
                assert await producer.send_and_wait(tp, b"c") == -1
            async with Producer(c, acks=1, idempotent=False) as producer:
                assert await producer.send_and_wait(tp, b"d") == 3  # after b and c
            assert stored_values(b, tp) == [b"a", b"b", b"c", b"d"]
            with pytest.raises(ValueError, match="acks"):
                Producer(c, acks=1)

    run(main())


def test_sending_to_a_missing_topic_fails_once_the_delivery_timeout_passes():
    async def main():
        async with (
            broker(auto_create_topics=False) as b,
            cluster(b) as c,
            Producer(c, delivery_timeout_ms=300) as producer,
        ):
            with pytest.raises(KafkaError) as info:
                await producer.send("nowhere", b"x")
            assert info.value.code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
            future = await producer.send(TopicPartition("nowhere", 0), b"x")
            with pytest.raises(KafkaError) as info:
                await future
            assert info.value.code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
            assert info.value.topic == "nowhere"

    run(main())


def test_null_keys_spread_over_partitions_and_flush_sends_everything():
    async def main():
        async with broker(default_partitions=3) as b, cluster(b) as c:
            producer = Producer(c, linger_ms=60_000)  # only flush() sends
            futures = [await producer.send("spread", b"%d" % i) for i in range(9)]
            assert not any(f.done() for f in futures)
            await producer.flush()
            assert all(f.done() for f in futures)
            await producer.close()
            await producer.close()
            for p in range(3):
                assert len(stored_values(b, TopicPartition("spread", p))) == 3

    run(main())
