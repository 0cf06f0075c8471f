"""Transactions with aiokafka (non-flexible protocol versions) against `streams broker`."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import ProducerFenced
from test_confluent_client import create_topic

pytestmark = pytest.mark.slow

TIMEOUT_S = 30.0


async def read_to_end(bootstrap: str, topic: str, isolation: str) -> list[bytes]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        isolation_level=isolation,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        tps = consumer.assignment() or set()
        async with asyncio.timeout(TIMEOUT_S):
            while not tps:
                await asyncio.sleep(0.05)
                tps = consumer.assignment()
            # read_committed: end_offsets are the last stable offsets
            ends = await consumer.end_offsets(list(tps))
            values = []
            while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
                batches = await consumer.getmany(timeout_ms=200)
                values += [r.value for records in batches.values() for r in records]
        return values
    finally:
        await consumer.stop()


async def scenario(bootstrap: str) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id="aio-txn")
    await producer.start()
    try:
        async with producer.transaction():
            for i in range(5):
                await producer.send("aio-txn", f"committed-{i}".encode(), partition=i % 2)
        with pytest.raises(RuntimeError, match="undo"):
            async with producer.transaction():
                for i in range(3):
                    await producer.send("aio-txn", f"aborted-{i}".encode(), partition=i % 2)
                await producer.flush()
                raise RuntimeError("undo")  # aiokafka aborts the transaction
        successor = AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id="aio-txn")
        await successor.start()
        await successor.stop()
        with pytest.raises(ProducerFenced):
            async with producer.transaction():
                await producer.send_and_wait("aio-txn", b"from-the-fenced", partition=0)
    finally:
        await producer.stop()
    committed = await read_to_end(bootstrap, "aio-txn", "read_committed")
    assert sorted(committed) == [f"committed-{i}".encode() for i in range(5)]
    everything = await read_to_end(bootstrap, "aio-txn", "read_uncommitted")
    assert sorted(everything) == sorted(
        [f"committed-{i}".encode() for i in range(5)] + [f"aborted-{i}".encode() for i in range(3)]
    )


def test_aiokafka_commit_abort_and_fencing(broker) -> None:
    create_topic(broker.bootstrap, "aio-txn", 2)
    asyncio.run(scenario(broker.bootstrap))
