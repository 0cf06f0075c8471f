"""`streams broker` under a real Kafka client, beside raw loopback TCP, in one report.

    python -m benchmarks.broker [--messages N] [--runs R] [--partitions P]
                                [--flush os|batch|interval] [--latency-s S]
                                [--json FILE|-]

The broker runs as its own process (`python -m streams broker`) on a free
loopback port with a fresh data directory, and is stopped at the end whatever
happened. The clients are confluent-kafka (librdkafka).

1. Produce: N messages of 100-byte values (no keys, compression none, linger.ms
   10, batch.size 1 MiB), once with acks=1 and once with acks=all and the
   idempotent producer, each into its own topic. Timed from the first
   produce() call until flush() returns; the high watermarks must then sum to N.
2. Consume: one consumer reads the acks=1 topic, its partitions assigned
   directly from the beginning (no group join, no commits), with fetch.max.bytes
   and max.partition.fetch.bytes of 32 MiB. Timed from the first message
   received to the last (the first batch returned is not counted). Then the
   same read again after letting the client prefetch the whole topic: that
   times the client's own consume() loop, a ceiling no broker can lift.
   Beside it, the same N messages in a topic of 2 partitions (produced once,
   not timed) read by 2 consumer processes, each assigned one partition: N
   over the span from the first message either receives to the last message
   either receives (the first batch is not counted, as above). One Python
   client cannot take 1M msgs/s; two show whether the broker can serve them.
3. Latency: a producer (linger.ms 1, acks=1) paced at a fixed rate stamps each
   value with its send wall time; a consumer in another process records
   receive time - send time for each message. A warm-up second is not counted.
4. Loopback TCP: the same payload bytes (N x 100, in 1 MiB writes) sent to a
   plain asyncio server in another process, timed until it has them all. The
   produce and consume rates are reported as a share of this rate.

Throughput phases run R times (a fresh topic each time) and the best run is
reported with the spread of the others: the machine may have other work.
The broker's CPU use (from /proc) is shown per phase, as a share of the
phase's wall time and as CPU seconds per million messages (steadier than the
rates when the machine is shared): near 100% of a core means the broker, not
the client, is the limit.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from benchmarks.embedded import machine
from benchmarks.runs import Best

PRODUCE_TARGET_MSGS_PER_S = 500_000
CONSUME_TARGET_MSGS_PER_S = 1_000_000
LATENCY_P99_TARGET_MS = 10.0
CONSUME_PROCESSES = 2

VALUE_BYTES = 100
TCP_WRITE_BYTES = 1 << 20
LATENCY_RATE_PER_S = 10_000
LATENCY_WARMUP_S = 1.0
READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 20.0
PHASE_TIMEOUT_S = 120.0
READY_LINE = "broker ready on "

CLIENT_CONFIG: dict[str, Any] = {"log_level": 4}  # warnings and worse on stderr
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


# --- the broker process ------------------------------------------------------------


class BrokerProcess:
    """`python -m streams broker` on a free loopback port; stderr drained by a thread."""

    def __init__(self, data_dir: Path, flush: str) -> None:
        self.data_dir = data_dir
        self.flush = flush
        self.bootstrap = ""
        self.log: list[str] = []
        self._proc: subprocess.Popen[str] | None = None
        self._ready = threading.Event()
        self._drainer: threading.Thread | None = None

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    def start(self) -> None:
        command = [
            sys.executable,
            "-m",
            "streams",
            "broker",
            "--data",
            str(self.data_dir),
            "--listen",
            "127.0.0.1:0",  # the broker binds a free port and names it when ready
            "--flush",
            self.flush,
            "--loglevel",
            "warning",
        ]
        self._proc = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            text=True, cwd=Path(__file__).resolve().parents[1],
        )  # fmt: skip
        self._drainer = threading.Thread(target=self._drain, name="broker-stderr", daemon=True)
        self._drainer.start()
        if not self._ready.wait(READY_TIMEOUT_S) or not self.bootstrap:
            raise RuntimeError(f"broker did not start:\n{''.join(self.log)}")

    def _drain(self) -> None:
        assert self._proc is not None and self._proc.stderr is not None
        for line in self._proc.stderr:
            self.log.append(line)
            if line.startswith(READY_LINE):
                self.bootstrap = line[len(READY_LINE) :].strip()
                self._ready.set()
        self._ready.set()  # exited before it was ready

    def cpu_s(self) -> float:
        """User + system CPU seconds the broker has used so far."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if self._drainer is not None:
            self._drainer.join(STOP_TIMEOUT_S)
        if proc.stderr is not None:
            proc.stderr.close()


@contextmanager
def running_broker(flush: str) -> Iterator[BrokerProcess]:
    with tempfile.TemporaryDirectory(prefix="broker-bench-") as tmp:
        broker = BrokerProcess(Path(tmp) / "data", flush)
        try:
            broker.start()
            yield broker
        finally:
            broker.stop()


@dataclass
class Phase:
    """Wall time, and CPU time of the broker and of this (client) process, of one phase."""

    broker: BrokerProcess
    elapsed_s: float = 0.0
    broker_cpu_s: float = 0.0
    client_cpu_s: float = 0.0
    _t0: float = 0.0
    _cpu0: float = 0.0
    _client0: float = 0.0

    def start(self) -> None:
        self._t0, self._cpu0 = time.perf_counter(), self.broker.cpu_s()
        self._client0 = time.process_time()

    def stop(self) -> None:
        self.elapsed_s = time.perf_counter() - self._t0
        self.broker_cpu_s = self.broker.cpu_s() - self._cpu0
        self.client_cpu_s = time.process_time() - self._client0

    @property
    def broker_cpu_share(self) -> float:
        return self.broker_cpu_s / self.elapsed_s if self.elapsed_s else 0.0

    @property
    def client_cpu_share(self) -> float:
        return self.client_cpu_s / self.elapsed_s if self.elapsed_s else 0.0


def create_topic(bootstrap: str, name: str, partitions: int) -> None:
    admin = AdminClient({**CLIENT_CONFIG, "bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(name, partitions, 1)], operation_timeout=10)
    futures[name].result(timeout=30)


def high_watermarks(bootstrap: str, topic: str, partitions: int) -> int:
    consumer = Consumer(
        {**CLIENT_CONFIG, "bootstrap.servers": bootstrap, "group.id": "benchmark-check"}
    )
    try:
        return sum(
            consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in range(partitions)
        )
    finally:
        consumer.close()


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
        sent, measured_start, measured_end = _paced_send(
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


def _paced_send(
    send: Callable[[int], None],
    poll: Callable[[float], int],
    total: int,
    rate: int,
    warmup: int,
    phase: Phase,
) -> tuple[int, float, float]:
    """Send message i at start + i/rate (a late one goes at once, none are skipped).

    Returns (sent, when the first counted message went, when the last went)."""
    interval_s = 1.0 / rate
    start = time.perf_counter()
    measured_start = start
    i = 0
    while i < total:
        now = time.perf_counter()
        due = min(total, int((now - start) / interval_s) + 1)
        while i < due:
            if i == warmup:
                measured_start = time.perf_counter()
                phase.start()
            send(i)
            i += 1
        poll(0)
        wait_s = start + i * interval_s - time.perf_counter()
        if wait_s > 0:
            time.sleep(wait_s)
    return total, measured_start, time.perf_counter()


# --- loopback TCP ----------------------------------------------------------------------


class _Sink(asyncio.Protocol):
    def __init__(self, expected: int, done: asyncio.Future[None]) -> None:
        self.expected = expected
        self.received = 0
        self.done = done
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.received += len(data)
        if self.received >= self.expected and self.transport is not None:
            self.transport.write(b"\x01")
            if not self.done.done():
                self.done.set_result(None)


def _tcp_sink(expected: int, conn: Connection) -> None:
    """In its own process: a plain asyncio server that takes `expected` bytes and acks."""

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        server = await loop.create_server(lambda: _Sink(expected, done), "127.0.0.1", 0)
        conn.send(server.sockets[0].getsockname()[1])
        async with server:
            await asyncio.wait_for(done, PHASE_TIMEOUT_S)
            await asyncio.sleep(0.1)  # let the ack go out

    asyncio.run(serve())


def run_tcp(messages: int) -> dict[str, float]:
    total = messages * VALUE_BYTES
    chunk = b"v" * (TCP_WRITE_BYTES // VALUE_BYTES * VALUE_BYTES)
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    child = context.Process(target=_tcp_sink, args=(total, theirs), daemon=True)
    child.start()
    try:
        if not ours.poll(READY_TIMEOUT_S):
            raise RuntimeError("tcp sink did not start")
        port = ours.recv()
        with socket.create_connection(("127.0.0.1", port)) as sock:
            view = memoryview(chunk)
            start = time.perf_counter()
            left = total
            while left > 0:
                n = min(left, len(chunk))
                sock.sendall(view[:n])
                left -= n
            if sock.recv(1) != b"\x01":
                raise RuntimeError("tcp sink closed before taking every byte")
            elapsed = time.perf_counter() - start
        child.join(STOP_TIMEOUT_S)
    finally:
        if child.is_alive():
            child.terminate()
            child.join()
    return {
        "bytes": float(total),
        "elapsed_s": elapsed,
        "bytes_per_s": total / elapsed,
        "msgs_per_s": messages / elapsed,
    }


# --- runs and report -------------------------------------------------------------------


def run_all(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {"machine": machine(), "settings": vars(args).copy()}
    produce1, produce_all, consume, prefetched, tcp = (
        Best("msgs_per_s"),
        Best("msgs_per_s"),
        Best("msgs_per_s"),
        Best("msgs_per_s"),
        Best("msgs_per_s"),
    )
    consume2 = Best("msgs_per_s")
    with running_broker(args.flush) as broker:
        # The 2-partition topic the consumer processes read: produced once, not timed.
        run_produce(broker, "consume2", args.messages, CONSUME_PROCESSES, "1")
        for run in range(args.runs):
            produce1.add(run_produce(broker, f"acks1-{run}", args.messages, args.partitions, "1"))
            produce_all.add(
                run_produce(broker, f"acksall-{run}", args.messages, args.partitions, "all")
            )
            consume.add(run_consume(broker, f"acks1-{run}", args.messages, args.partitions))
            consume2.add(
                run_consume_processes(broker, "consume2", args.messages, CONSUME_PROCESSES)
            )
            prefetch_s = 1.0 + 1.5 * consume.runs[-1]["assign_to_last_s"]
            prefetched.add(
                run_consume(broker, f"acks1-{run}", args.messages, args.partitions, prefetch_s)
            )
            tcp.add(run_tcp(args.messages))
        latency = run_latency(
            broker, "latency", args.partitions, LATENCY_RATE_PER_S, args.latency_s
        )
        results["broker_log"] = [
            line for line in broker.log if "WARNING" in line or "ERROR" in line
        ]
    results.update(
        produce_acks1=produce1.best,
        produce_acks1_runs=produce1.spread(),
        produce_acks_all=produce_all.best,
        produce_acks_all_runs=produce_all.spread(),
        consume=consume.best,
        consume_runs=consume.spread(),
        consume_2_processes=consume2.best,
        consume_2_processes_runs=consume2.spread(),
        consume_prefetched=prefetched.best,
        consume_prefetched_runs=prefetched.spread(),
        tcp=tcp.best,
        tcp_runs=tcp.spread(),
        latency=latency,
    )
    results["targets_met"] = {
        "produce_acks1": produce1.best["msgs_per_s"] >= PRODUCE_TARGET_MSGS_PER_S,
        "produce_acks_all": produce_all.best["msgs_per_s"] >= PRODUCE_TARGET_MSGS_PER_S,
        "consume": consume.best["msgs_per_s"] >= CONSUME_TARGET_MSGS_PER_S,
        "consume_2_processes": consume2.best["msgs_per_s"] >= CONSUME_TARGET_MSGS_PER_S,
        "latency_p99": latency["p99_ms"] <= LATENCY_P99_TARGET_MS,
    }
    return results


def _verdict(ok: bool) -> str:
    return "ok" if ok else "BELOW TARGET"


def report(r: dict[str, Any]) -> str:
    info, s, tcp, lat = r["machine"], r["settings"], r["tcp"], r["latency"]
    met = r["targets_met"]
    tcp_rate = tcp["msgs_per_s"]
    lines = [
        "streams broker benchmark (confluent-kafka "
        f"{_client_version()} against `python -m streams broker` in its own process)",
        f"  cpu      {info['cpu']} ({info['cores']} cores)",
        f"  python   {info['python']} on {info['platform']}",
        f"  broker   --flush {s['flush']}; topics of {s['partitions']} partition(s); "
        f"{s['messages']:,} messages of {VALUE_BYTES}-byte values per run",
        "",
        "produce (linger.ms 10, batch.size 1 MiB, compression none; "
        "first produce() .. flush() returned)",
    ]
    for key, label, target_key in (
        ("produce_acks1", "acks=1  ", "produce_acks1"),
        ("produce_acks_all", "acks=all", "produce_acks_all"),
    ):
        p = r[key]
        lines.append(
            f"  {label} idempotence {'on ' if key == 'produce_acks_all' else 'off'}"
            f"{p['msgs_per_s']:>12,.0f} msgs/s {p['bytes_per_s'] / 1e6:>7,.1f} MB/s   "
            f"(target >= {PRODUCE_TARGET_MSGS_PER_S:,}: {_verdict(met[target_key])}; "
            f"{p['msgs_per_s'] / tcp_rate:.2f}x of TCP)"
        )
        lines.append(
            f"      {p['elapsed_s']:.3f} s; produce() calls alone {p['produce_calls_s']:.3f} s; "
            f"CPU: broker {p['broker_cpu']:.0%} ({p['broker_cpu_s_per_m']:.2f} s per 1M msgs), "
            f"client {p['client_cpu']:.0%}; {r[key + '_runs']}"
        )
    c, cp, c2 = r["consume"], r["consume_prefetched"], r["consume_2_processes"]
    lines += [
        "",
        "consume (partitions assigned from the beginning, no group; fetch.max.bytes and "
        "max.partition.fetch.bytes 32 MiB; first message .. last)",
        f"  consume              {c['msgs_per_s']:>12,.0f} msgs/s {c['bytes_per_s'] / 1e6:>7,.1f}"
        f" MB/s   (target >= {CONSUME_TARGET_MSGS_PER_S:,}: {_verdict(met['consume'])}; "
        f"{c['msgs_per_s'] / tcp_rate:.2f}x of TCP)",
        f"      {c['elapsed_s']:.3f} s first..last; assign..last {c['assign_to_last_s']:.3f} s "
        f"(first message after {c['first_message_s'] * 1000:.0f} ms: client start-up); "
        f"CPU: broker {c['broker_cpu']:.0%} ({c['broker_cpu_s_per_m']:.2f} s per 1M msgs), "
        f"client {c['client_cpu']:.0%}; {r['consume_runs']}",
        f"  client alone         {cp['msgs_per_s']:>12,.0f} msgs/s   (the same read after letting "
        "the client prefetch everything: its own consume() loop,",
        f"      the ceiling for any broker on this machine; {r['consume_prefetched_runs']})",
        f"  2 consumers          {c2['msgs_per_s']:>12,.0f} msgs/s {c2['bytes_per_s'] / 1e6:>7,.1f}"
        f" MB/s   (target >= {CONSUME_TARGET_MSGS_PER_S:,}: "
        f"{_verdict(met['consume_2_processes'])}; {c2['msgs_per_s'] / tcp_rate:.2f}x of TCP)",
        f"      {CONSUME_PROCESSES} processes, one partition each of a "
        f"{CONSUME_PROCESSES}-partition topic; first message of any .. last of all "
        f"{c2['elapsed_s']:.3f} s (starts "
        f"{c2['start_skew_s'] * 1000:.0f} ms apart); each "
        f"{' and '.join(f'{x:,.0f}' for x in c2['process_rates'])} msgs/s;",
        f"      CPU: broker {c2['broker_cpu']:.0%} ({c2['broker_cpu_s_per_m']:.2f} s per 1M msgs), "
        f"clients {c2['clients_cpu']:.0%}; {r['consume_2_processes_runs']}",
        "",
        f"loopback TCP (the same {s['messages'] * VALUE_BYTES / 1e6:,.0f} MB in "
        f"{TCP_WRITE_BYTES >> 20} MiB writes to a plain asyncio server in another process)",
        f"  TCP                  {tcp_rate:>12,.0f} msgs/s {tcp['bytes_per_s'] / 1e6:>7,.1f} MB/s"
        f"   ({r['tcp_runs']})",
        "",
        f"end-to-end latency (acks=1, linger.ms 1, {lat['target_rate']:,.0f} msgs/s for "
        f"{lat['duration_s']:.1f} s after {LATENCY_WARMUP_S:.0f} s of warm-up; consumer in "
        "another process; receive - send wall time)",
        f"  achieved rate        {lat['achieved_rate']:>12,.0f} msgs/s ({int(lat['messages']):,}"
        " messages)",
        f"  p50 {lat['p50_ms']:.2f} ms   p99 {lat['p99_ms']:.2f} ms   p99.9 {lat['p999_ms']:.2f} ms"
        f"   max {lat['max_ms']:.2f} ms   (target p99 <= {LATENCY_P99_TARGET_MS:.0f} ms: "
        f"{_verdict(met['latency_p99'])}); broker CPU {lat['broker_cpu']:.0%}",
    ]
    if r["broker_log"]:
        lines += ["", "broker warnings:", *(f"  {line.rstrip()}" for line in r["broker_log"][:10])]
    return "\n".join(lines)


def _client_version() -> str:
    import confluent_kafka

    return f"{confluent_kafka.__version__}, librdkafka {confluent_kafka.libversion()[0]}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.broker")
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3, help="runs of the throughput phases")
    parser.add_argument("--partitions", type=int, default=1)
    parser.add_argument("--flush", choices=["os", "batch", "interval"], default="os")
    parser.add_argument("--latency-s", type=float, default=8.0)
    parser.add_argument("--json", metavar="FILE", help="write results as JSON ('-': stdout)")
    args = parser.parse_args(argv)
    if args.messages < 1 or args.runs < 1 or args.partitions < 1 or args.latency_s <= 0:
        parser.error("--messages, --runs, --partitions and --latency-s must be positive")
    results = run_all(args)
    print(report(results), flush=True)
    if args.json == "-":
        print(json.dumps(results))
    elif args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
