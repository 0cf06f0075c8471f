"""Our client against librdkafka's mock cluster: three brokers of a Kafka
implementation that is not ours, partition leaders on each of them, faults
injected through the mock's own API."""

from __future__ import annotations

import asyncio

from client_helpers import cluster, run

from runtime.client.connection import Connection
from runtime.client.consumer import Consumer
from runtime.client.producer import Producer
from runtime.log.records import decode_batches
from runtime.protocol.codes import ApiKey
from runtime.types import TopicPartition

PARTITIONS = 6


def _host_port(bootstrap: str) -> tuple[str, int]:
    host, _, port = bootstrap.partition(":")
    return host, int(port)


async def _read_all(consumer: Consumer, tps: list[TopicPartition], want: int) -> dict:
    consumer.assign(tps)
    consumer.seek_to_beginning()
    got: dict[TopicPartition, list[bytes | None]] = {tp: [] for tp in tps}
    while sum(len(v) for v in got.values()) < want:
        for tp, data in (await consumer.fetch(max_wait_ms=200)).items():
            got[tp] += [r.value for r in decode_batches(data)]
    return got


def test_connection_handshakes_with_a_broker_that_is_not_ours(mock_cluster):
    async def main():
        host, port = _host_port(mock_cluster.bootstraps.split(",")[0])
        async with await Connection.open(host, port) as conn:
            assert conn.version(ApiKey.PRODUCE) == 8
            assert conn.version(ApiKey.FETCH) == 11
            answer = await conn.request(ApiKey.METADATA, {"topics": None})
            assert sorted(b["node_id"] for b in answer["brokers"]) == [1, 2, 3]

    run(main())


def test_produce_and_fetch_go_to_each_partitions_leader(mock_cluster):
    mock_cluster.create_topic("spread", PARTITIONS)
    mock_cluster.spread_leaders("spread", PARTITIONS)
    tps = [TopicPartition("spread", p) for p in range(PARTITIONS)]

    async def main():
        async with cluster(mock_cluster.bootstraps) as c:
            leaders = {tp: await c.leader_for(tp) for tp in tps}
            assert set(leaders.values()) == {1, 2, 3}
            async with Producer(c, linger_ms=1) as producer:
                futures = [
                    await producer.send(tp, f"{tp.partition}-{i}".encode())
                    for i in range(20)
                    for tp in tps
                ]
                offsets = await asyncio.gather(*futures)
            assert sorted(offsets) == sorted(list(range(20)) * PARTITIONS)
            async with Consumer(c, auto_offset_reset="earliest") as consumer:
                got = await _read_all(consumer, tps, 20 * PARTITIONS)
            for tp in tps:
                assert got[tp] == [f"{tp.partition}-{i}".encode() for i in range(20)]

    run(main())
