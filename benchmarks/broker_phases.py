"""The client phases of the broker benchmark: produce, consume, latency.

Each runs confluent-kafka against a running broker (broker_process.py), checks
what it got (every message stored, every message received) and returns its
figures; benchmarks.broker runs them and reports.
"""

from __future__ import annotations

import multiprocessing
import struct
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Producer, TopicPartition

from benchmarks.broker_process import (
    CLIENT_CONFIG,
    PHASE_TIMEOUT_S,
    READY_TIMEOUT_S,
    STOP_TIMEOUT_S,
    BrokerProcess,
    create_topic,
    high_watermarks,
)
from benchmarks.phases import Phase, paced_send

VALUE_BYTES = 100
LATENCY_WARMUP_S = 1.0

PRODUCER_CONFIG: dict[str, Any] = {
    **CLIENT_CONFIG,
    "linger.ms": 10,
    "batch.size": 1 << 20,
    "batch.num.messages": 1_000_000,  # let batch.size decide
    "message.max.bytes": 1 << 20,  # librdkafka caps a batch at this too (default 1,000,000)
    "compression.type": "none",
    "queue.buffering.max.messages": 2_000_000,
    "queue.buffering.max.kbytes": 2 << 20,  # the whole run fits: produce() never blocks
}
CONSUMER_CONFIG: dict[str, Any] = {
    **CLIENT_CONFIG,
    "group.id": "benchmark",  # required by the client; assign() never joins it
    "enable.auto.commit": False,
    "enable.partition.eof": False,
    "fetch.max.bytes": 32 << 20,
    "max.partition.fetch.bytes": 32 << 20,
    "receive.message.max.bytes": 64 << 20,
    "queued.max.messages.kbytes": 256 << 10,
    # Fetching pauses for fetch.queue.backoff.ms (1 s) whenever more than
    # queued.min.messages wait in the client's queue: one 32 MiB fetch holds ~300,000.
    "queued.min.messages": 10_000_000,
    "fetch.queue.backoff.ms": 0,
    "fetch.wait.max.ms": 100,
}


# --- produce and consume ---------------------------------------------------------------


def run_produce(
    broker: BrokerProcess, topic: str, messages: int, partitions: int, acks: str
) -> dict[str, float]:
    create_topic(broker.bootstrap, topic, partitions)
    errors: list[str] = []

    def on_delivery(err: Any, msg: Any) -> None:
        if err is not None and len(errors) < 10:
            errors.append(str(err))

    config = {
        "bootstrap.servers": broker.bootstrap,
        **PRODUCER_CONFIG,
        "acks": acks,
        "enable.idempotence": acks == "all",
        "delivery.report.only.error": True,
        "on_delivery": on_delivery,
    }
    producer = Producer(config)
    producer.list_topics(topic, timeout=10)  # connected, metadata known: not timed
    value = b"v" * VALUE_BYTES
    produce = producer.produce
    phase = Phase(broker)
    phase.start()
    if partitions == 1:
        for _ in range(messages):
            produce(topic, value, partition=0)
    else:
        for i in range(messages):
            produce(topic, value, partition=i % partitions)
    queued_s = time.perf_counter() - phase._t0
    remaining = producer.flush(PHASE_TIMEOUT_S)
    phase.stop()
    if remaining or errors:
        raise RuntimeError(f"produce acks={acks}: {remaining} undelivered, errors: {errors}")
    stored = high_watermarks(broker.bootstrap, topic, partitions)
    if stored != messages:
        raise RuntimeError(f"produce acks={acks}: {stored} messages stored, {messages} sent")
    return {
        "messages": float(messages),
        "elapsed_s": phase.elapsed_s,
        "msgs_per_s": messages / phase.elapsed_s,
        "bytes_per_s": messages * VALUE_BYTES / phase.elapsed_s,
        "produce_calls_s": queued_s,
        "broker_cpu_s_per_m": phase.broker_cpu_s * 1e6 / messages,
        "broker_cpu": phase.broker_cpu_share,
        "client_cpu": phase.client_cpu_share,
    }


def run_consume(
    broker: BrokerProcess, topic: str, messages: int, partitions: int, prefetch_s: float = 0.0
) -> dict[str, float]:
    """Read the topic from the beginning. With prefetch_s, first let the client
    fetch for that long before reading: what is then timed is mostly the
    client's own consume() loop over messages it already holds."""
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, **CONSUMER_CONFIG})
    try:
        phase = Phase(broker)
        phase.start()
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
        if prefetch_s:
            time.sleep(prefetch_s)
        received, first_at, first_batch = drain(consumer, messages, time.perf_counter, "consume")
        last_at = time.perf_counter()
        phase.stop()
    finally:
        consumer.close()
    if received != messages:
        raise RuntimeError(f"consume: {received} messages, expected {messages}")
    span_s = last_at - first_at
    counted = messages - first_batch  # the first batch arrived at first_at: not timed
    return {
        "messages": float(messages),
        "elapsed_s": span_s,
        "msgs_per_s": counted / span_s if span_s > 0 else 0.0,
        "bytes_per_s": counted * VALUE_BYTES / span_s if span_s > 0 else 0.0,
        "assign_to_last_s": phase.elapsed_s,
        "first_message_s": first_at - phase._t0,
        "broker_cpu_s_per_m": phase.broker_cpu_s * 1e6 / messages,
        "broker_cpu": phase.broker_cpu_share,
        "client_cpu": phase.client_cpu_share,
    }


def drain(
    consumer: Consumer, messages: int, clock: Callable[[], float], what: str
) -> tuple[int, float, int]:
    """Consume `messages` messages: (received, time of the first batch, its size)."""
    received = first_batch = 0
    first_at = 0.0
    deadline = time.monotonic() + PHASE_TIMEOUT_S
    while received < messages:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: {received} of {messages} after {PHASE_TIMEOUT_S}s")
        batch = consumer.consume(num_messages=min(100_000, messages - received), timeout=1.0)
        if not batch:
            continue
        if not first_at:
            first_at, first_batch = clock(), len(batch)
        for msg in batch:
            if msg.error() is not None:
                raise KafkaException(msg.error())
        received += len(batch)
    return received, first_at, first_batch


def _partition_consumer(bootstrap: str, topic: str, partition: int, conn: Connection) -> None:
    """In its own process: read one partition from the beginning to its end offset, once
    told to; send back what run_consume times, on the system-wide time.monotonic()."""
    try:
        consumer = Consumer({"bootstrap.servers": bootstrap, **CONSUMER_CONFIG})
        tp = TopicPartition(topic, partition, OFFSET_BEGINNING)
        _, end = consumer.get_watermark_offsets(tp, timeout=10)  # connected: not timed
        conn.send("ready")
        conn.recv()
        cpu0 = time.process_time()
        consumer.assign([tp])
        received, first_at, first_batch = drain(consumer, end, time.monotonic, f"consume {tp}")
        last_at = time.monotonic()
        cpu_s = time.process_time() - cpu0
        consumer.close()
        conn.send(
            {
                "messages": received,
                "first_batch": first_batch,
                "first_at": first_at,
                "last_at": last_at,
                "cpu_s": cpu_s,
            }
        )
    except Exception as exc:
        conn.send({"error": repr(exc)})


def run_consume_processes(
    broker: BrokerProcess, topic: str, messages: int, partitions: int
) -> dict[str, Any]:
    """Read the topic with one consumer process per partition, started together."""
    context = multiprocessing.get_context("spawn")
    pipes, children = [], []
    try:
        for p in range(partitions):
            ours, theirs = context.Pipe()
            child = context.Process(
                target=_partition_consumer, args=(broker.bootstrap, topic, p, theirs), daemon=True
            )
            child.start()
            pipes.append(ours)
            children.append(child)
        for conn in pipes:
            said = conn.recv() if conn.poll(READY_TIMEOUT_S) else "nothing"
            if said != "ready":
                raise RuntimeError(f"a consumer process did not start: {said}")
        phase = Phase(broker)
        phase.start()
        for conn in pipes:
            conn.send("go")
        results = []
        for conn in pipes:
            if not conn.poll(PHASE_TIMEOUT_S):
                raise RuntimeError("a consumer process did not answer")
            results.append(conn.recv())
        phase.stop()
        for child in children:
            child.join(STOP_TIMEOUT_S)
    finally:
        for child in children:
            if child.is_alive():
                child.terminate()
                child.join()
    errors = [r["error"] for r in results if "error" in r]
    if errors:
        raise RuntimeError(f"consume with {partitions} processes: {errors}")
    received = sum(r["messages"] for r in results)
    if received != messages:
        raise RuntimeError(f"consume with {partitions} processes: {received} of {messages}")
    first = min(results, key=lambda r: r["first_at"])
    span_s = max(r["last_at"] for r in results) - first["first_at"]
    counted = messages - first["first_batch"]  # it arrived at the start of the span
    rates = [
        (r["messages"] - r["first_batch"]) / (r["last_at"] - r["first_at"])
        if r["last_at"] > r["first_at"]
        else 0.0
        for r in results
    ]
    return {
        "messages": float(messages),
        "elapsed_s": span_s,
        "msgs_per_s": counted / span_s if span_s > 0 else 0.0,
        "bytes_per_s": counted * VALUE_BYTES / span_s if span_s > 0 else 0.0,
        "start_skew_s": max(r["first_at"] for r in results) - first["first_at"],
        "process_rates": rates,
        "broker_cpu_s_per_m": phase.broker_cpu_s * 1e6 / messages,
        "broker_cpu": phase.broker_cpu_share,
        "clients_cpu": sum(r["cpu_s"] for r in results) / phase.elapsed_s,
    }


# --- end-to-end latency ----------------------------------------------------------------

_STAMP = struct.Struct(">q")


def _latency_consumer(bootstrap: str, topic: str, partitions: int, conn: Connection) -> None:
    """In its own process: receive every message, keep (send_ns, receive_ns) pairs."""
    consumer = Consumer({**CONSUMER_CONFIG, "bootstrap.servers": bootstrap})
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
    consumer.consume(num_messages=1, timeout=0.5)  # connected and fetching
    conn.send("ready")
    expected: int | None = None
    sent: list[int] = []
    received: list[int] = []
    unpack = _STAMP.unpack_from
    deadline = time.monotonic() + PHASE_TIMEOUT_S
    while (expected is None or len(sent) < expected) and time.monotonic() < deadline:
        if expected is None and conn.poll():
            expected = conn.recv()
        # poll() returns as soon as a message is there (consume(n, timeout) would wait
        # for n messages or the timeout); what else is queued is taken without waiting.
        first = consumer.poll(0.05)
        if first is None:
            continue
        now_ns = time.time_ns()
        for msg in [first, *consumer.consume(num_messages=10_000, timeout=0)]:
            if msg.error() is None:
                sent.append(unpack(msg.value())[0])
                received.append(now_ns)
    consumer.close()
    conn.send((sent, received))


def run_latency(
    broker: BrokerProcess, topic: str, partitions: int, rate: int, duration_s: float
) -> dict[str, float]:
    create_topic(broker.bootstrap, topic, partitions)
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    child = context.Process(
        target=_latency_consumer, args=(broker.bootstrap, topic, partitions, theirs), daemon=True
    )
    child.start()
    try:
        if not ours.poll(READY_TIMEOUT_S):
            raise RuntimeError("latency consumer did not start")
        ours.recv()
        producer = Producer(
            {
                **CLIENT_CONFIG,
                "bootstrap.servers": broker.bootstrap,
                "linger.ms": 1,
                "acks": 1,
                "compression.type": "none",
            }
        )
        producer.list_topics(topic, timeout=10)
        warmup = int(LATENCY_WARMUP_S * rate)
        total = warmup + int(duration_s * rate)
        padding = b"v" * (VALUE_BYTES - _STAMP.size)
        phase = Phase(broker)
        sent, measured_start, measured_end = paced_send(
            lambda i: producer.produce(
                topic, _STAMP.pack(time.time_ns()) + padding, partition=i % partitions
            ),
            producer.poll,
            total,
            rate,
            warmup,
            phase,
        )
        producer.flush(30)
        phase.stop()
        ours.send(sent)
        if not ours.poll(PHASE_TIMEOUT_S):
            raise RuntimeError("latency consumer did not answer")
        send_ns, receive_ns = ours.recv()
        child.join(STOP_TIMEOUT_S)
    finally:
        if child.is_alive():
            child.terminate()
            child.join()
    if len(send_ns) != total:
        raise RuntimeError(f"latency: {len(send_ns)} of {total} messages received")
    latencies_ms = sorted(
        (r - s) / 1e6 for s, r in zip(send_ns[warmup:], receive_ns[warmup:], strict=True)
    )
    n = len(latencies_ms)
    return {
        "messages": float(n),
        "target_rate": float(rate),
        "achieved_rate": (total - warmup) / (measured_end - measured_start),
        "duration_s": measured_end - measured_start,
        "p50_ms": latencies_ms[n // 2],
        "p99_ms": latencies_ms[min(n - 1, int(n * 0.99))],
        "p999_ms": latencies_ms[min(n - 1, int(n * 0.999))],
        "max_ms": latencies_ms[-1],
        "broker_cpu": phase.broker_cpu_share,
    }
