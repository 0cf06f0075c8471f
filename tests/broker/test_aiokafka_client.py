"""aiokafka (what faust-streaming uses) against a real `streams broker` process."""

from __future__ import annotations

import asyncio
from collections import defaultdict

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import CommitFailedError, RebalanceInProgressError
from waiting import wait_until_async

pytestmark = pytest.mark.slow

TIMEOUT_S = 30.0
TOPIC = "aio"


async def produce(bootstrap: str, partitions: int, start: int, stop: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=2)
    await producer.start()
    try:
        futures = []
        for seq in range(start, stop):
            for p in range(partitions):
                value = f"{p}:{seq}".encode()
                futures.append((seq, await producer.send(TOPIC, value, key=b"k", partition=p)))
        for seq, future in futures:
            meta = await future
            assert meta.offset == seq
    finally:
        await producer.stop()


async def member(
    name: str,
    bootstrap: str,
    seen: list[tuple[str, int, int]],
    assigned: dict[str, set[int]],
    stop: asyncio.Event,
) -> None:
    """A group member; a record counts once its commit succeeded."""
    consumer = AIOKafkaConsumer(
        TOPIC,
        bootstrap_servers=bootstrap,
        group_id="aio-group",
        client_id=name,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=6000,
        heartbeat_interval_ms=300,
        max_poll_interval_ms=10000,
    )
    await consumer.start()
    try:
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=100, max_records=1)
            assigned[name] = {tp.partition for tp in consumer.assignment()}
            records = [r for rs in batches.values() for r in rs]
            if not records:
                continue
            try:
                await consumer.commit()
            except (CommitFailedError, RebalanceInProgressError):
                continue  # read again by the partition's next owner
            for r in records:
                p, seq = map(int, r.value.decode().split(":"))
                assert p == r.partition
                seen.append((name, p, seq))
    finally:
        await consumer.stop()


async def scenario(bootstrap: str) -> list[tuple[str, int, int]]:
    partitions, per_partition = 4, 60
    half = per_partition // 2
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(TOPIC, partitions, 1)])
    finally:
        await admin.close()
    await produce(bootstrap, partitions, 0, half)

    seen: list[tuple[str, int, int]] = []
    assigned: dict[str, set[int]] = {}
    stop = asyncio.Event()
    async with asyncio.TaskGroup() as tg:
        for name in ("aio0", "aio1"):
            tg.create_task(member(name, bootstrap, seen, assigned, stop))
        try:
            await wait_until_async(
                lambda: (
                    len(assigned) == 2
                    and all(assigned.values())
                    and set().union(*assigned.values()) == set(range(partitions))
                ),
                timeout_s=TIMEOUT_S,
                what="two members share the partitions",
            )
            await produce(bootstrap, partitions, half, per_partition)
            await wait_until_async(
                lambda: len(seen) >= partitions * per_partition,
                timeout_s=TIMEOUT_S,
                what="all consumed",
            )
        finally:
            stop.set()
    by_partition: dict[int, list[int]] = defaultdict(list)
    for _, p, seq in seen:
        by_partition[p].append(seq)
    assert sorted(by_partition) == list(range(partitions))
    for p, seqs in by_partition.items():
        assert seqs == list(range(per_partition)), p
    assert {name for name, _, seq in seen if seq >= half} == {"aio0", "aio1"}
    return seen


def test_producer_and_consumer_group_of_two(broker) -> None:
    asyncio.run(scenario(broker.bootstrap))
