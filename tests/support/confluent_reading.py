"""Read a topic to its end with confluent-kafka (librdkafka), at an isolation level:
what Kafka's own client sees, to check our broker and our producers against."""

from __future__ import annotations

import time

from confluent_kafka import Consumer, KafkaError, TopicPartition


def read_to_end(
    bootstrap: str,
    topic: str,
    partitions: int,
    isolation: str,
    *,
    expect: int | None = None,
    timeout_s: float = 30.0,
) -> dict[int, list[str]]:
    """Per partition, every value from offset 0 up to the end a reader of that
    isolation reaches (read_committed: the last stable offset; read_uncommitted:
    the high watermark), once it has `expect` values if given."""
    found = read_records_to_end(
        bootstrap, topic, partitions, isolation, expect=expect, timeout_s=timeout_s
    )
    return {p: [value.decode() for _, value in rows] for p, rows in found.items()}


def read_records_to_end(
    bootstrap: str,
    topic: str,
    partitions: int,
    isolation: str,
    *,
    expect: int | None = None,
    timeout_s: float = 30.0,
) -> dict[int, list[tuple[bytes | None, bytes]]]:
    """read_to_end, with each record's key: (key, value) per partition."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"reader-{isolation}",
            "enable.auto.commit": False,
            "isolation.level": isolation,
            "enable.partition.eof": True,
        }
    )
    values: dict[int, list[tuple[bytes | None, bytes]]] = {p: [] for p in range(partitions)}
    try:
        consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
        at_end: set[int] = set()
        deadline = time.monotonic() + timeout_s
        while len(at_end) < partitions or (
            expect is not None and sum(map(len, values.values())) < expect
        ):
            assert time.monotonic() < deadline, f"read {values}"
            msg = consumer.poll(0.2)
            if msg is None:
                continue
            if msg.error() is not None:
                assert msg.error().code() == KafkaError._PARTITION_EOF, msg.error()
                at_end.add(msg.partition())
                continue
            at_end.discard(msg.partition())
            values[msg.partition()].append((msg.key(), msg.value()))
    finally:
        consumer.close()
    return values


def read_values(
    bootstrap: str, topic: str, count: int, *, partition: int = 0, timeout_s: float = 30.0
) -> list[bytes]:
    """The first `count` values of one partition, as stored (bytes)."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"values-{topic}",
            "enable.auto.commit": False,
            "log_level": 3,
        }
    )
    out: list[bytes] = []
    try:
        consumer.assign([TopicPartition(topic, partition, 0)])
        deadline = time.monotonic() + timeout_s
        while len(out) < count:
            assert time.monotonic() < deadline, f"{len(out)} of {count} values of {topic} read"
            msg = consumer.poll(0.2)
            if msg is None:
                continue
            assert msg.error() is None, msg.error()
            out.append(msg.value())
    finally:
        consumer.close()
    return out
