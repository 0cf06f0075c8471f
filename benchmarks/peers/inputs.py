"""Putting the input where each system reads it, and counting what came out.

The broker's copy is produced once with confluent-kafka (murmur2, Kafka's key
partitioner, as every peer's producer uses). The log:// copy is the same
records appended straight into a log directory once (a template), which each
log:// run copies, so every run starts from the same fresh log.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from benchmarks.peers import spec
from runtime.log import FlushPolicy, Log
from runtime.log.records import encode_batch
from runtime.partitioner import partition_for_key
from runtime.types import TopicPartition as LogPartition

CLIENT_CONFIG: dict[str, Any] = {"log_level": 4}
PRODUCER_CONFIG: dict[str, Any] = {
    **CLIENT_CONFIG,
    "partitioner": "murmur2_random",
    "linger.ms": 10,
    "batch.size": 1 << 20,
    "compression.type": "none",
    "queue.buffering.max.messages": 1_000_000,
    "queue.buffering.max.kbytes": 1 << 20,
}
BATCH_RECORDS = 1000
COMPACT = {"cleanup.policy": "compact"}
TIMEOUT_S = 120.0


def create_topics(
    bootstrap: str, names: Iterable[str], config: dict[str, str] | None = None
) -> None:
    admin = AdminClient({**CLIENT_CONFIG, "bootstrap.servers": bootstrap})
    topics = [NewTopic(n, spec.PARTITIONS, 1, config=config or {}) for n in names]
    for future in admin.create_topics(topics, operation_timeout=10).values():
        future.result(timeout=30)


def produce(bootstrap: str, topic: str, records: Iterable[tuple[str, bytes]]) -> int:
    """Send `records` (key, value) and wait until the broker has them all."""
    errors: list[str] = []

    def on_delivery(err: Any, _msg: Any) -> None:
        if err is not None and len(errors) < 10:
            errors.append(str(err))

    producer = Producer(
        {
            **PRODUCER_CONFIG,
            "bootstrap.servers": bootstrap,
            "on_delivery": on_delivery,
            "delivery.report.only.error": True,
        }
    )
    sent = 0
    for key, value in records:
        while True:
            try:
                producer.produce(topic, value, key=key.encode())
                break
            except BufferError:  # the client's queue is full: let it drain
                producer.poll(0.05)
        sent += 1
    if producer.flush(TIMEOUT_S) or errors:
        raise RuntimeError(f"producing {topic}: errors {errors}")
    return sent


def event_records(count: int) -> Iterable[tuple[str, bytes]]:
    return ((e.key, e.encode()) for e in spec.events(count))


def broker_count(bootstrap: str, topic: str) -> int:
    """Records in `topic` on the broker (the sum of its high watermarks)."""
    consumer = Consumer({**CLIENT_CONFIG, "bootstrap.servers": bootstrap, "group.id": "peers"})
    try:
        return sum(
            consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in range(spec.PARTITIONS)
        )
    finally:
        consumer.close()


def wait_broker_count(bootstrap: str, topic: str, expected: int, timeout_s: float) -> int:
    """The record count once it reaches `expected`, or the last one seen at the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = broker_count(bootstrap, topic)
        if found >= expected or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def write_log(
    log_dir: Path, topics: dict[str, tuple[Iterable[tuple[str, bytes]], dict[str, str]]]
) -> None:
    """Append each topic's (key, value) records into the log at `log_dir`,
    partitioned by the key's murmur2, in batches."""
    now_ms = int(time.time() * 1000)
    with Log.open(log_dir, flush=FlushPolicy("os")) as log:
        for name, (records, config) in topics.items():
            log.create_topic(name, spec.PARTITIONS, config)
            pending: list[list[tuple[bytes, bytes, int, tuple[()]]]] = [
                [] for _ in range(spec.PARTITIONS)
            ]
            for key, value in records:
                k = key.encode()
                p = partition_for_key(k, spec.PARTITIONS)
                rows = pending[p]
                rows.append((k, value, now_ms, ()))
                if len(rows) == BATCH_RECORDS:
                    log.append(LogPartition(name, p), encode_batch(rows))
                    rows.clear()
            for p, rows in enumerate(pending):
                if rows:
                    log.append(LogPartition(name, p), encode_batch(rows))


def log_count(log_dir: Path, topic: str) -> int:
    """Records in `topic` of a log directory no process holds any more."""
    with Log.open(log_dir) as log:
        if topic not in log.topics():
            return 0
        return sum(
            end - start
            for start, end in (log.offsets(LogPartition(topic, p)) for p in range(spec.PARTITIONS))
        )
