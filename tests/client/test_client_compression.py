"""The client's producer compresses its batches (gzip, snappy, lz4, zstd), and
unmodified readers (kcat, confluent-kafka) read them from a `streams broker`
process; a bad codec name is refused before anything is sent."""

from __future__ import annotations

import asyncio

import pytest
from client_helpers import cluster, run
from confluent_kafka import Consumer
from confluent_kafka import TopicPartition as KafkaPartition
from kcat_runner import kcat
from waiting import wait_until

from runtime.client import Admin, Producer
from runtime.compression import COMPRESSION_NAMES, codec_id, compress_batch
from runtime.kafka_transport import KafkaTransport
from runtime.log.records import decode_batches, encode_batch, iter_batches
from runtime.types import TopicPartition

pytestmark = pytest.mark.slow

RECORDS = 40
QUIET = {"log_level": 0, "logger": lambda *a: None}


def _values(codec: str) -> list[bytes]:
    return [
        b'{"codec": "%s", "n": %d, "pad": "%s"}' % (codec.encode(), i, b"x" * 40)
        for i in range(RECORDS)
    ]


def test_a_compressed_batch_decodes_to_the_records_it_was_made_of():
    records = [(b"k%d" % i, b"value %d " % i * 8, 1000 + i, ()) for i in range(100)]
    plain = encode_batch(records)
    for name in COMPRESSION_NAMES:
        packed = compress_batch(plain, codec_id(name))
        ((_, header),) = iter_batches(bytes(packed))
        assert header.compression == codec_id(name)
        assert len(packed) < len(plain)
        assert [(r.key, r.value) for r in decode_batches(bytes(packed))] == [
            (k, v) for k, v, _, _ in records
        ]
    assert compress_batch(plain, codec_id(None)) is plain


def test_a_bad_codec_name_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown compression 'lz5': use one of gzip"):
        codec_id("lz5")
    with pytest.raises(ValueError, match="unknown compression"):
        Producer(None, compression="brotli")  # type: ignore[arg-type]


async def _produce_each_codec(bootstrap: str) -> dict[str, set[int]]:
    async with cluster(bootstrap) as c:
        await Admin(c).create_topics({f"z-{name}": (1, {}) for name in COMPRESSION_NAMES})
        for name in COMPRESSION_NAMES:
            async with Producer(c, compression=name, linger_ms=50) as producer:
                futures = [await producer.send(f"z-{name}", v, key=b"k") for v in _values(name)]
                await producer.flush()
                await asyncio.gather(*futures)
    codecs: dict[str, set[int]] = {}
    async with KafkaTransport(f"kafka://{bootstrap}") as transport:
        for name in COMPRESSION_NAMES:
            data = await transport.fetch(TopicPartition(f"z-{name}", 0), 0, max_wait_s=0)
            codecs[name] = {header.compression for _, header in iter_batches(data)}
    return codecs


def test_kcat_and_confluent_kafka_read_what_the_producer_compressed(start_broker):
    broker = start_broker("--partitions", "1")
    codecs = run(_produce_each_codec(broker.bootstrap), timeout_s=60)
    assert codecs == {name: {codec_id(name)} for name in COMPRESSION_NAMES}

    for name in COMPRESSION_NAMES:
        out = kcat("-b", broker.bootstrap, "-C", "-t", f"z-{name}", "-e", "-q", "-f", "%s\\n")
        assert out.splitlines() == [v.decode() for v in _values(name)], name

    consumer = Consumer(
        {
            "bootstrap.servers": broker.bootstrap,
            "group.id": "compressed-readers",
            "auto.offset.reset": "earliest",
            **QUIET,
        }
    )
    read: dict[str, list[bytes]] = {name: [] for name in COMPRESSION_NAMES}
    try:
        consumer.assign([KafkaPartition(f"z-{name}", 0, 0) for name in COMPRESSION_NAMES])

        def all_read() -> bool:
            for msg in consumer.consume(100, timeout=0.5):
                assert msg.error() is None, msg.error()
                read[msg.topic()[2:]].append(msg.value())
            return all(len(values) >= RECORDS for values in read.values())

        wait_until(all_read, timeout_s=30, what="confluent-kafka reads every compressed topic")
    finally:
        consumer.close()
    assert read == {name: _values(name) for name in COMPRESSION_NAMES}
