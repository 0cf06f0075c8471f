"""kafka:// (KafkaTransport) on librdkafka's three-broker mock cluster: one Fetch
per broker for the partitions it leads, and fetch loops and appends that go on
through moving leaders, a broker down, and injected errors."""

from __future__ import annotations

import asyncio

from client_helpers import run

from runtime.kafka_transport import KafkaTransport
from runtime.log.records import decode_batches, encode_batch
from runtime.types import TopicPartition

PARTITIONS = 6


async def _fetch_loop(transport: KafkaTransport, tp: TopicPartition, want: int, got: dict) -> None:
    position = 0
    got[tp] = []
    while len(got[tp]) < want:
        data = await transport.fetch(tp, position, max_wait_s=0.3)
        for record in decode_batches(data):
            if record.offset >= position:
                got[tp].append(record.value)
                position = record.offset + 1


def _batch(value: bytes) -> bytes:
    return bytes(encode_batch([(None, value, 0, ())]))


def test_waiting_fetches_go_out_as_one_fetch_per_broker(mock_cluster):
    mock_cluster.create_topic("muxed", PARTITIONS)
    mock_cluster.spread_leaders("muxed", PARTITIONS)
    tps = [TopicPartition("muxed", p) for p in range(PARTITIONS)]

    async def main():
        async with KafkaTransport(mock_cluster.url) as transport:
            got: dict = {}
            loops = [asyncio.create_task(_fetch_loop(transport, tp, 10, got)) for tp in tps]
            for i in range(10):
                for tp in tps:
                    await transport.append(tp, _batch(f"{tp.partition}-{i}".encode()))
            await asyncio.wait_for(asyncio.gather(*loops), 30)
            assert got == {tp: [f"{tp.partition}-{i}".encode() for i in range(10)] for tp in tps}
            lanes = {key for key in transport.cluster._connections if key[1].startswith("fetch")}
            assert lanes == {(1, "fetch"), (2, "fetch"), (3, "fetch")}

    run(main(), timeout_s=60)
