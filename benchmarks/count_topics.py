"""The count benchmarks' topics through confluent-kafka: pre-producing the events,
end offsets, a group's committed offsets as they grow, the changelog's sum.
"""

from __future__ import annotations

import random
import time
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)

from benchmarks.broker_process import CLIENT_CONFIG, PHASE_TIMEOUT_S, create_topic
from benchmarks.worker_processes import WorkerProcess, check_alive

POLL_INTERVAL_S = 0.02

PRODUCER_CONFIG: dict[str, Any] = {
    **CLIENT_CONFIG,
    "partitioner": "murmur2_random",  # Kafka's (and streams') key -> partition
    "linger.ms": 10,
    "batch.size": 1 << 20,
    "compression.type": "none",
    "queue.buffering.max.messages": 1_000_000,
    "queue.buffering.max.kbytes": 1 << 20,
}


def event_keys(count: int) -> list[bytes]:
    return [f"user-{i:05d}".encode() for i in range(count)]


def produce_events(bootstrap: str, topic: str, events: int, keys: int, partitions: int) -> None:
    """`events` keyed events with JSON int 0 values, as fast as the client goes."""
    create_topic(bootstrap, topic, partitions)
    errors: list[str] = []

    def on_delivery(err: Any, msg: Any) -> None:
        if err is not None and len(errors) < 10:
            errors.append(str(err))

    producer = Producer(
        {
            **PRODUCER_CONFIG,
            "bootstrap.servers": bootstrap,
            "delivery.report.only.error": True,
            "on_delivery": on_delivery,
        }
    )
    rng = random.Random(7)
    encoded = event_keys(keys)
    for _ in range(events):
        key = encoded[rng.randrange(keys)]
        while True:
            try:
                producer.produce(topic, b"0", key=key)
                break
            except BufferError:  # the client's queue is full: let it drain
                producer.poll(0.05)
    remaining = producer.flush(PHASE_TIMEOUT_S)
    if remaining or errors:
        raise RuntimeError(f"pre-production: {remaining} undelivered, errors: {errors}")
    stored = sum(end_offsets(bootstrap, topic, partitions).values())
    if stored != events:
        raise RuntimeError(f"pre-production: {stored} events stored, {events} sent")


def end_offsets(bootstrap: str, topic: str, partitions: int) -> dict[int, int]:
    consumer = Consumer({**CLIENT_CONFIG, "bootstrap.servers": bootstrap, "group.id": "bench"})
    try:
        return {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in range(partitions)
        }
    finally:
        consumer.close()


class CommittedPoller:
    """The sum of a group's committed offsets over a topic, sampled with time.monotonic()."""

    def __init__(self, bootstrap: str, group: str, topic: str, partitions: int) -> None:
        self._consumer = Consumer(
            {
                **CLIENT_CONFIG,
                "bootstrap.servers": bootstrap,
                "group.id": group,  # committed() asks about this group; it never joins
                "enable.auto.commit": False,
            }
        )
        self._tps = [TopicPartition(topic, p) for p in range(partitions)]
        self.samples: list[tuple[float, int]] = []

    def total(self) -> int:
        found = self._consumer.committed(self._tps, timeout=10)
        return sum(max(0, tp.offset) for tp in found)

    def wait_for(self, total: int, workers: list[WorkerProcess]) -> float:
        """Poll until the committed offsets sum to `total`; return when they did."""
        deadline = time.monotonic() + PHASE_TIMEOUT_S
        while True:
            committed = self.total()
            now = time.monotonic()
            self.samples.append((now, committed))
            if committed >= total:
                return now
            check_alive(workers)
            if now > deadline:
                raise RuntimeError(f"{committed} of {total} committed after {PHASE_TIMEOUT_S}s")
            time.sleep(POLL_INTERVAL_S)

    def close(self) -> None:
        self._consumer.close()


def changelog_sum(bootstrap: str, topic: str, partitions: int) -> int:
    """The table as its changelog says (the last count per key), summed. Read to
    each partition's end event: a transactional changelog ends with a marker,
    which is never delivered."""
    ends = end_offsets(bootstrap, topic, partitions)
    wanted = {p for p, end in ends.items() if end > 0}
    consumer = Consumer(
        {
            **CLIENT_CONFIG,
            "bootstrap.servers": bootstrap,
            "group.id": "bench-changelog",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    table: dict[bytes, int] = {}
    try:
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in wanted])
        deadline = time.monotonic() + PHASE_TIMEOUT_S
        while wanted and time.monotonic() < deadline:
            for msg in consumer.consume(num_messages=100_000, timeout=0.5):
                if msg.error() is not None:
                    if msg.error().code() == KafkaError._PARTITION_EOF:
                        wanted.discard(msg.partition())
                        continue
                    raise KafkaException(msg.error())
                if msg.value() is not None:
                    table[msg.key()] = int(msg.value())
        if wanted:
            raise RuntimeError(f"could not read partitions {sorted(wanted)} of {topic}")
    finally:
        consumer.close()
    return sum(table.values())
