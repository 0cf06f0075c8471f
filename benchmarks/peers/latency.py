"""End-to-end latency of the stateless workload at a fixed input rate.

A producer (confluent-kafka, linger.ms 1, acks=1) sends RATE events/s, spread
over the 8 partitions by key, each stamped with its send wall time (`sent_ns`);
a reader in this process (confluent-kafka, its partitions assigned) takes each
output record's receive time. Warm-up: events go at the rate until outputs come
back within CAUGHT_UP_MS of their input (the app has its partitions and no
backlog), then two more seconds. Then
DURATION_S seconds are measured; p50/p99 of receive - send over the measured
events. Every measured event with an even amount must come out, or the run is
FAILED.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Producer, TopicPartition

from benchmarks.peers import checks, spec
from benchmarks.peers.inputs import CLIENT_CONFIG

WARMUP_AFTER_FIRST_S = 2.0
READY_TIMEOUT_S = 90.0
DRAIN_TIMEOUT_S = 30.0
CAUGHT_UP_MS = 250.0
CAUGHT_UP_SAMPLES = 500
POLL_S = 0.05


class OutputReader:
    """Receive time - send time of every output record, from a thread."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self._consumer = Consumer(
            {
                **CLIENT_CONFIG,
                "bootstrap.servers": bootstrap,
                "group.id": "peers-latency-reader",
                "enable.auto.commit": False,
                "fetch.wait.max.ms": 5,
            }
        )
        self._consumer.assign(
            [TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(spec.PARTITIONS)]
        )
        self.samples: list[tuple[int, int]] = []  # (sent_ns, received_ns)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="latency-reader", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        # consume(n, timeout) returns only once it has n messages or the timeout
        # is over, which would add up to the timeout to every sample: wait for
        # one message, then take what else is queued without waiting
        while not self._stop.is_set():
            first = self._consumer.poll(POLL_S)
            if first is None:
                continue
            now = time.time_ns()
            for msg in [first, *self._consumer.consume(10_000, timeout=0)]:
                if msg.error() is not None:
                    raise KafkaException(msg.error())
                self.samples.append((orjson.loads(msg.value())["sent_ns"], now))

    def caught_up(self) -> bool:
        """The newest CAUGHT_UP_SAMPLES outputs each came within CAUGHT_UP_MS of
        their input: no backlog left from the start."""
        recent = self.samples[-CAUGHT_UP_SAMPLES:]
        return len(recent) == CAUGHT_UP_SAMPLES and all(
            received_ns - sent_ns < CAUGHT_UP_MS * 1_000_000 for sent_ns, received_ns in recent
        )

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self._consumer.close()


def measure(
    bootstrap: str, topic: str, output: str, rate: int, duration_s: float
) -> tuple[dict[str, float], str]:
    """(figures, error): error '' when every measured event came out."""
    producer = Producer(
        {
            **CLIENT_CONFIG,
            "bootstrap.servers": bootstrap,
            "partitioner": "murmur2_random",
            "linger.ms": 1,
            "acks": 1,
            "compression.type": "none",
        }
    )
    reader = OutputReader(bootstrap, output)
    source = spec.events(10**9)
    expected = sent = 0

    def send(measured: bool) -> None:
        nonlocal expected, sent
        event = next(source)
        producer.produce(topic, event.encode(time.time_ns()), key=event.key.encode())
        if measured:
            sent += 1
            expected += event.amount % 2 == 0

    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        _paced(send, producer, rate, lambda: bool(reader.samples) or time.monotonic() > deadline)
        if not reader.samples:
            return {}, f"no output after {READY_TIMEOUT_S:.0f} s of input"
        deadline = time.monotonic() + READY_TIMEOUT_S
        _paced(send, producer, rate, lambda: reader.caught_up() or time.monotonic() > deadline)
        _paced(send, producer, rate, _after(WARMUP_AFTER_FIRST_S))
        start_ns = time.time_ns()
        sent_s = _paced(lambda _m: send(True), producer, rate, _after(duration_s))
        producer.flush(DRAIN_TIMEOUT_S)
        drain_deadline = time.monotonic() + DRAIN_TIMEOUT_S
        while _measured(reader, start_ns) < expected and time.monotonic() < drain_deadline:
            time.sleep(0.05)
    finally:
        reader.close()
    latencies = sorted((r - s) / 1e6 for s, r in reader.samples if s >= start_ns)
    if len(latencies) != expected:
        return {}, f"{len(latencies)} of {expected} measured outputs came back"
    return {
        "rate": float(rate),
        "achieved_rate": sent / sent_s if sent_s else 0.0,
        "outputs": float(expected),
        "p50_ms": checks.percentile(latencies, 0.50),
        "p99_ms": checks.percentile(latencies, 0.99),
        "max_ms": latencies[-1],
    }, ""


def _measured(reader: OutputReader, start_ns: int) -> int:
    return sum(1 for s, _ in reader.samples if s >= start_ns)


def _after(seconds: float) -> Any:
    end = time.monotonic() + seconds
    return lambda: time.monotonic() >= end


def _paced(send: Any, producer: Producer, rate: int, done: Any) -> float:
    """Send at `rate` events/s (late ones at once, none skipped) until done();
    returns the seconds it took."""
    interval_s = 1.0 / rate
    start = time.perf_counter()
    i = 0
    while not done():
        due = int((time.perf_counter() - start) / interval_s) + 1
        while i < due:
            send(False)
            i += 1
        producer.poll(0)
        wait_s = start + i * interval_s - time.perf_counter()
        if wait_s > 0:
            time.sleep(wait_s)
    return time.perf_counter() - start
