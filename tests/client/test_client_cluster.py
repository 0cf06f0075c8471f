from __future__ import annotations

import asyncio

import pytest
from client_helpers import broker, cluster, run, stored_values

from runtime.client.cluster import GROUP, TRANSACTION, parse_bootstrap
from runtime.client.consumer import Consumer
from runtime.client.errors import KafkaError
from runtime.client.producer import Producer
from runtime.log.records import decode_batches
from runtime.protocol.codes import ErrorCode
from runtime.types import TopicPartition


def test_parse_bootstrap():
    assert parse_bootstrap("a:1, b:2,c") == [("a", 1), ("b", 2), ("c", 9092)]
    assert parse_bootstrap("[::1]:9093") == [("::1", 9093)]
    for bad in ("", "a:b", "a:70000"):
        with pytest.raises(ValueError):
            parse_bootstrap(bad)


def test_bootstrap_skips_an_unreachable_address_and_caches_metadata():
    async def main():
        dead = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        dead_port = dead.sockets[0].getsockname()[1]
        dead.close()
        await dead.wait_closed()
        async with broker(default_partitions=3) as b:
            assert b.address is not None
            b.transport.log.create_topic("known", 2)
            async with cluster(f"127.0.0.1:{dead_port},127.0.0.1:{b.address.port}") as c:
                assert set(c.brokers) == {0}
                assert c.brokers[0].port == b.address.port
                assert c.partitions("known") == [0, 1]
                assert await c.leader_for(TopicPartition("known", 1)) == 0
                assert c.partitions("fresh") is None
                assert await c.partitions_for("fresh") == [0, 1, 2]  # auto-created
                assert await c.coordinator("some-group") == 0
                with pytest.raises(KafkaError) as info:
                    await c.leader_for(TopicPartition("known", 5))
                assert info.value.code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION

    run(main())


def test_unknown_topics_are_errors_without_auto_create():
    async def main():
        async with broker() as b, cluster(b, allow_auto_create_topics=False) as c:
            with pytest.raises(KafkaError) as info:
                await c.partitions_for("missing")
            assert info.value.code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
            assert info.value.retriable
            assert "missing" not in b.transport.log.topics()

    run(main())


def test_clients_reconnect_when_the_broker_restarts_on_the_same_port(tmp_path):
    async def main():
        tp = TopicPartition("durable", 0)
        async with broker(tmp_path) as first:
            assert first.address is not None
            port = first.address.port
            async with cluster(first) as c, Producer(c) as producer, Consumer(c) as consumer:
                assert await producer.send_and_wait(tp, b"before") == 0
                consumer.assign([tp])
                consumer.seek(tp, 0)
                assert [r.value for r in decode_batches((await consumer.fetch())[tp])] == [
                    b"before"
                ]
                await first.stop()
                # the producer's connection is broken: the send waits for the new broker
                pending = await producer.send(tp, b"after")
                async with broker(tmp_path, port=port) as second:
                    assert await asyncio.wait_for(pending, 10) == 1
                    await c.refresh()
                    assert c.partitions("durable") == [0]
                    got = []
                    for _ in range(50):
                        got += [
                            r.value for r in decode_batches((await consumer.fetch()).get(tp, b""))
                        ]
                        if got:
                            break
                    assert got == [b"after"]
                    assert stored_values(second, tp) == [b"before", b"after"]

    run(main())


def test_coordinators_are_found_and_cached_per_key_type():
    async def main():
        async with broker() as b, cluster(b) as c:
            node = await c.coordinator("billing")
            assert await c.coordinator("billing", key_type=TRANSACTION) == node
            assert c._coordinators == {(GROUP, "billing"): node, (TRANSACTION, "billing"): node}
            c.forget_coordinator("billing", key_type=TRANSACTION)
            assert c._coordinators == {(GROUP, "billing"): node}

    run(main())
