"""Transactions across processes: our transactional producer read by confluent-kafka
(librdkafka) read_committed consumers and the other way round, and a `streams
broker` process SIGKILLed in the middle of a transaction: afterwards the
transaction commits whole, or is aborted whole, never in part."""

from __future__ import annotations

import asyncio

import pytest
from client_helpers import cluster, run
from confluent_kafka import Producer as ConfluentProducer
from confluent_reading import read_to_end

from runtime.client import Consumer, TransactionalProducer
from runtime.log.records import decode_batches
from runtime.types import TopicPartition

pytestmark = pytest.mark.slow

TIMEOUT_S = 30.0
OUT = [TopicPartition("out", 0), TopicPartition("out", 1)]


def confluent_read(bootstrap: str, isolation: str, expect: int) -> dict[int, list[str]]:
    """Per partition of "out", the values a librdkafka reader of that isolation level
    sees from offset 0 to its end, once it has `expect` of them."""
    return read_to_end(bootstrap, "out", len(OUT), isolation, expect=expect, timeout_s=TIMEOUT_S)


async def our_read(bootstrap: str, isolation: str) -> dict[int, list[str]]:
    """The same, read by our consumer up to the end its isolation level allows."""
    async with (
        cluster(bootstrap) as c,
        Consumer(c, isolation_level=isolation, auto_offset_reset="earliest") as consumer,
    ):
        consumer.assign(OUT)
        ends = await consumer.list_offsets(OUT, -1)
        values: dict[int, list[str]] = {tp.partition: [] for tp in OUT}
        while any([await consumer.position(tp) < ends[tp] for tp in OUT]):
            positions = {tp: await consumer.position(tp) for tp in OUT}
            for tp, data in (await consumer.fetch(max_wait_ms=100)).items():
                values[tp.partition] += [
                    r.value.decode() for r in decode_batches(data) if r.offset >= positions[tp]
                ]
        return values


def _split(values: list[str]) -> dict[int, list[str]]:
    """The values sent round robin to the two partitions, as each holds them."""
    return {p: values[p :: len(OUT)] for p in range(len(OUT))}


def test_our_transactions_as_confluent_kafka_reads_them(start_broker) -> None:
    broker = start_broker("--partitions", "2")

    async def produce() -> None:
        async with (
            cluster(broker.bootstrap) as c,
            TransactionalProducer(c, "ours") as producer,
        ):
            await producer.init_transactions()
            async with producer.transaction():
                for i in range(10):
                    await producer.send(OUT[i % 2], b"committed-%d" % i)
            await producer.begin_transaction()
            for i in range(6):
                await producer.send(OUT[i % 2], b"aborted-%d" % i)
            await producer.flush()
            await producer.abort_transaction()
            async with producer.transaction():
                await producer.send(OUT[0], b"last")

    run(produce(), TIMEOUT_S)
    committed = _split([f"committed-{i}" for i in range(10)])
    committed[0].append("last")
    assert confluent_read(broker.bootstrap, "read_committed", 11) == committed
    assert run(our_read(broker.bootstrap, "read_committed"), TIMEOUT_S) == committed
    everything = confluent_read(broker.bootstrap, "read_uncommitted", 17)
    aborted = _split([f"aborted-{i}" for i in range(6)])
    assert everything == {
        0: committed[0][:-1] + aborted[0] + ["last"],
        1: committed[1] + aborted[1],
    }


def test_confluent_kafka_transactions_as_our_read_committed_consumer_reads_them(
    start_broker,
) -> None:
    broker = start_broker("--partitions", "2")
    plain = ConfluentProducer({"bootstrap.servers": broker.bootstrap, "linger.ms": 0})
    producer = ConfluentProducer(
        {"bootstrap.servers": broker.bootstrap, "transactional.id": "theirs", "linger.ms": 5}
    )
    producer.init_transactions(TIMEOUT_S)
    producer.begin_transaction()
    for i in range(10):
        producer.produce("out", f"committed-{i}", partition=i % 2)
    producer.flush(TIMEOUT_S)
    plain.produce("out", "plain", partition=0)  # inside the open transaction's range
    plain.flush(TIMEOUT_S)
    producer.commit_transaction(TIMEOUT_S)
    producer.begin_transaction()
    for i in range(6):
        producer.produce("out", f"aborted-{i}", partition=i % 2)
    producer.flush(TIMEOUT_S)
    producer.abort_transaction(TIMEOUT_S)
    producer.begin_transaction()
    producer.produce("out", "last", partition=1)
    producer.commit_transaction(TIMEOUT_S)

    committed = _split([f"committed-{i}" for i in range(10)])
    committed[0].append("plain")
    committed[1].append("last")
    assert run(our_read(broker.bootstrap, "read_committed"), TIMEOUT_S) == committed
    everything = run(our_read(broker.bootstrap, "read_uncommitted"), TIMEOUT_S)
    assert sum(map(len, everything.values())) == 18


def test_a_broker_killed_mid_transaction_commits_it_whole_or_aborts_it_whole(
    start_broker,
) -> None:
    broker = start_broker("--partitions", "2")

    async def main() -> None:
        async with (
            cluster(broker.bootstrap) as c,
            TransactionalProducer(c, "survivor", linger_ms=0) as producer,
        ):
            await producer.init_transactions()
            await producer.begin_transaction()
            for i in range(10):
                await producer.send(OUT[i % 2], b"v-%d" % i)
            await producer.flush()
            await asyncio.to_thread(broker.kill)
            await asyncio.to_thread(broker.start)
            for i in range(10, 20):  # sent to the restarted broker, retried until it answers
                await producer.send(OUT[i % 2], b"v-%d" % i)
            await producer.commit_transaction()

            # a transaction left open by a killed broker and a producer that vanished:
            # the next instance of the id aborts it
            await producer.begin_transaction()
            for i in range(4):
                await producer.send(OUT[i % 2], b"lost-%d" % i)
            await producer.flush()
        await asyncio.to_thread(broker.kill)
        await asyncio.to_thread(broker.start)
        async with (
            cluster(broker.bootstrap) as c,
            TransactionalProducer(c, "survivor") as successor,
        ):
            await successor.init_transactions()

    run(main(), 90.0)
    committed = _split([f"v-{i}" for i in range(20)])
    assert run(our_read(broker.bootstrap, "read_committed"), TIMEOUT_S) == committed
    assert confluent_read(broker.bootstrap, "read_committed", 20) == committed
    everything = run(our_read(broker.bootstrap, "read_uncommitted"), TIMEOUT_S)
    assert sorted(v for values in everything.values() for v in values) == sorted(
        [f"v-{i}" for i in range(20)] + [f"lost-{i}" for i in range(4)]
    )  # each record stored once, retries or not
