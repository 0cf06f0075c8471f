"""Batches compressed by librdkafka (gzip, snappy, lz4, zstd) are stored as
they came and decoded by the framework's record decoder."""

from __future__ import annotations

import asyncio

import pytest
from confluent_kafka import Producer

from runtime.kafka_transport import KafkaTransport
from runtime.log.records import decode_batches, iter_batches
from runtime.types import TopicPartition

pytestmark = pytest.mark.slow

CODECS = {"gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}


def produce(bootstrap: str, topic: str, codec: str, n: int) -> None:
    producer = Producer(
        {"bootstrap.servers": bootstrap, "compression.type": codec, "linger.ms": 20}
    )
    for i in range(n):
        producer.produce(topic, key=f"k{i % 7}".encode(), value=(f"v{i} " * 20).encode())
    assert producer.flush(30) == 0


async def read_all(bootstrap: str, tp: TopicPartition) -> bytes:
    async with KafkaTransport(f"kafka://{bootstrap}") as transport:
        _, end = await transport.offsets(tp)
        data, position = b"", 0
        while position < end:
            chunk = await transport.fetch(tp, position, max_wait_s=0)
            data += chunk
            position = max(h.next_offset for _, h in iter_batches(chunk))
        return data


@pytest.mark.parametrize("codec", sorted(CODECS))
def test_compressed_batches_decode(broker, codec):
    topic = f"compressed-{codec}"
    produce(broker.bootstrap, topic, codec, 500)
    data = asyncio.run(read_all(broker.bootstrap, TopicPartition(topic, 0)))
    codecs = {h.compression for _, h in iter_batches(data)}
    assert codecs == {CODECS[codec]}  # stored as the client compressed them
    records = decode_batches(data)
    assert [r.offset for r in records] == list(range(500))
    assert [r.value for r in records] == [(f"v{i} " * 20).encode() for i in range(500)]
    assert records[8].key == b"k1"
