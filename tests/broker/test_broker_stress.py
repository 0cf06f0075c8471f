"""The broker under abuse, with its default limits: a flood of idle connections, and
several produce requests near the maximum request size at once. Normal clients
must still be served, the broker's memory and log must stay bounded.

Figures (RSS, successes, log size) are printed: run with `-s` to see them.
"""

from __future__ import annotations

import os
import resource
import select
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kafka_wire import WireClient, batch, metadata_body, produce_body

from runtime.protocol.codes import ApiKey, ErrorCode

pytestmark = pytest.mark.slow

MIB = 1024 * 1024
TIMEOUT_S = 30.0
IDLE_SCRIPT = Path(__file__).with_name("idle_clients.py")
FLOOD_SOURCES = ("127.0.0.2", "127.0.0.3")
FLOOD_PER_SOURCE = 10_000  # 20,000 idle connections
PER_IP_MAX = 1024  # the broker's default --connections-per-ip-max
LARGE_BYTES = 95 * MIB
BUDGET_BYTES = 200 * MIB  # the broker's default request byte budget
LOG_BYTES_MAX = 1_000_000


def proc_status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def raise_own_open_files_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def flood_plan(open_files: int) -> list[tuple[str, int]]:
    """(source, count) per idle_clients.py process: each within its own fd limit."""
    per_process = min(FLOOD_PER_SOURCE, open_files - 200)
    plan = []
    for source in FLOOD_SOURCES:
        left = FLOOD_PER_SOURCE
        while left:
            plan.append((source, min(left, per_process)))
            left -= plan[-1][1]
    return plan


def flood_args(source: str, port: int, count: int) -> list[str]:
    return [
        *("--source", source, "--port", str(port)),
        *("--count", str(count), "--deadline-s", str(TIMEOUT_S)),
    ]


class IdleFlood:
    """idle_clients.py processes, as the plan says; each stopped by pid in close()."""

    def __init__(self, port: int, plan: list[tuple[str, int]]) -> None:
        self.sources = [source for source, _ in plan]
        self.procs = [
            subprocess.Popen(
                [sys.executable, str(IDLE_SCRIPT), *flood_args(source, port, count)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            for source, count in plan
        ]

    def _line(self, proc: subprocess.Popen[str], deadline: float) -> str:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], max(0.0, deadline - time.monotonic()))
        assert ready, "idle_clients.py did not answer in time"
        return proc.stdout.readline()

    def wait_connected(self) -> list[tuple[int, int]]:
        """(connected, failed) of each process, once each has opened its flood."""
        deadline = time.monotonic() + TIMEOUT_S + 10
        out = []
        for proc in self.procs:
            words = self._line(proc, deadline).split()
            assert words[:1] == ["connected"], words
            out.append((int(words[1]), int(words[3])))
        return out

    def open_by_source(self) -> dict[str, int]:
        """Connections not closed by the broker, per source address."""
        out: dict[str, int] = {}
        for source, (still_open, _) in zip(self.sources, self.check(), strict=True):
            out[source] = out.get(source, 0) + still_open
        return out

    def check(self) -> list[tuple[int, int]]:
        """(still open, closed by the broker) of each process."""
        deadline = time.monotonic() + TIMEOUT_S
        out = []
        for proc in self.procs:
            assert proc.stdin is not None
            proc.stdin.write("check\n")
            proc.stdin.flush()
            words = self._line(proc, deadline).split()
            out.append((int(words[1]), int(words[3])))
        return out

    def close(self) -> None:
        for proc in self.procs:
            if proc.stdin is not None:
                proc.stdin.close()
        for proc in self.procs:
            try:
                proc.wait(TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(TIMEOUT_S)
            if proc.stdout is not None:
                proc.stdout.close()


def produce_and_consume(bootstrap: str, topic: str, n: int) -> tuple[int, int]:
    """(delivered, consumed) of n messages through a normal confluent-kafka client."""
    delivered: list[int] = []

    def on_delivery(err: KafkaError | None, msg) -> None:
        if err is None:
            delivered.append(msg.offset())

    producer = Producer({"bootstrap.servers": bootstrap, "message.timeout.ms": 20_000})
    for i in range(n):
        producer.produce(topic, value=f"m{i}".encode(), on_delivery=on_delivery)
    producer.flush(TIMEOUT_S)
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "normal", "auto.offset.reset": "earliest"}
    )
    consumer.assign([TopicPartition(topic, 0, 0)])
    consumed: set[bytes] = set()
    deadline = time.monotonic() + TIMEOUT_S
    while len(consumed) < n and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is not None and msg.error() is None:
            consumed.add(msg.value())
    consumer.close()
    return len(delivered), len(consumed)


def test_idle_flood_of_20000_connections_leaves_normal_clients_served(start_broker) -> None:
    open_files = raise_own_open_files_limit()  # the broker inherits it
    plan = flood_plan(open_files)
    broker = start_broker()
    base_rss = proc_status_kib(broker.pid, "VmRSS")
    base_fds = open_fds(broker.pid)
    flood = IdleFlood(broker.port, plan)
    try:
        started = time.monotonic()
        opened = flood.wait_connected()
        flood_s = time.monotonic() - started
        delivered, consumed = produce_and_consume(broker.bootstrap, "normal", 50)
        # what the broker holds: at most its limit per address, plus its own files
        fds_max = len(FLOOD_SOURCES) * PER_IP_MAX + base_fds + 16
        deadline = time.monotonic() + TIMEOUT_S
        while (fds := open_fds(broker.pid)) > fds_max and time.monotonic() < deadline:
            time.sleep(0.05)  # refusals may still be on their way
        held = flood.open_by_source()
        flood_rss = proc_status_kib(broker.pid, "VmRSS")
    finally:
        flood.close()
    log_bytes = len(broker.log_text().encode())
    print(
        f"\nidle flood (test RLIMIT_NOFILE {open_files}, {len(plan)} processes): "
        f"{sum(c for c, _ in opened)} connected in {flood_s:.1f}s (failed "
        f"{sum(f for _, f in opened)}); broker fds {base_fds} -> {fds} (clients see open "
        f"per address {held}); normal "
        f"client delivered {delivered}/50 consumed {consumed}/50; broker RSS "
        f"{base_rss // 1024} MiB -> {flood_rss // 1024} MiB; broker log {log_bytes} bytes"
    )
    assert (delivered, consumed) == (50, 50)
    assert sum(c for c, _ in opened) == len(FLOOD_SOURCES) * FLOOD_PER_SOURCE
    assert fds <= fds_max
    # each held connection costs a transport and a protocol, no buffer: a few KiB
    assert flood_rss - base_rss < 64 * 1024
    assert log_bytes < LOG_BYTES_MAX


def create_large_topic(bootstrap: str, name: str) -> None:
    config = {"max.message.bytes": str(100 * MIB)}
    with AdminClient({"bootstrap.servers": bootstrap}) as admin:
        admin.create_topics([NewTopic(name, 1, 1, config=config)])[name].result(TIMEOUT_S)


def large_produce(bootstrap: str, topic: str, answers: list, errors: list) -> None:
    try:
        with WireClient(bootstrap, timeout_s=TIMEOUT_S * 2) as client:
            body = produce_body(topic, 0, batch(b"x" * LARGE_BYTES))
            answers.append(client.request(ApiKey.PRODUCE, 7, body))
    except Exception as exc:  # reported by the test
        errors.append(exc)


def small_requests_during(bootstrap: str, stop: threading.Event, latencies: list) -> None:
    with WireClient(bootstrap, timeout_s=TIMEOUT_S) as client:
        while not stop.is_set():
            started = time.monotonic()
            answer = client.request(ApiKey.PRODUCE, 7, produce_body("small", 0, batch(b"s")))
            assert answer["responses"][0]["partitions"][0]["error_code"] == ErrorCode.NONE
            client.request(ApiKey.METADATA, 8, metadata_body("small"))
            latencies.append(time.monotonic() - started)


def test_four_concurrent_95_mib_produce_requests_stay_within_the_budget(start_broker) -> None:
    broker = start_broker()
    create_large_topic(broker.bootstrap, "large")
    with WireClient(broker.bootstrap) as client:
        client.request(ApiKey.METADATA, 8, metadata_body("small", auto_create=True))
    base_rss = proc_status_kib(broker.pid, "VmRSS")
    answers: list[dict] = []
    errors: list[BaseException] = []
    latencies: list[float] = []
    stop = threading.Event()
    small = threading.Thread(target=small_requests_during, args=(broker.bootstrap, stop, latencies))
    large = [
        threading.Thread(target=large_produce, args=(broker.bootstrap, "large", answers, errors))
        for _ in range(4)
    ]
    started = time.monotonic()
    small.start()
    for thread in large:
        thread.start()
    for thread in large:
        thread.join(TIMEOUT_S * 2)
    elapsed_s = time.monotonic() - started
    stop.set()
    small.join(TIMEOUT_S)
    peak_rss = proc_status_kib(broker.pid, "VmHWM")
    print(
        f"\n4 x 95 MiB produce: {len(answers)}/4 answered in {elapsed_s:.1f}s; broker RSS "
        f"{base_rss // 1024} MiB before, peak {peak_rss // 1024} MiB; small requests "
        f"meanwhile {len(latencies)}, slowest {max(latencies, default=0):.2f}s"
    )
    assert not errors, errors
    parts = [a["responses"][0]["partitions"][0] for a in answers]
    assert [p["error_code"] for p in parts] == [ErrorCode.NONE] * 4
    assert sorted(p["base_offset"] for p in parts) == [0, 1, 2, 3]
    assert latencies and max(latencies) < 10.0
    # at most the budget's worth of requests is in memory at once, plus the
    # interpreter's own growth while it works (allocator, buffers): 64 MiB
    assert peak_rss * 1024 < base_rss * 1024 + BUDGET_BYTES + 64 * MIB
