"""The two phases of the worker benchmarks: a keyed count's throughput, and its
end-to-end latency (see benchmarks.workers for what each times).

Each phase starts worker processes of a fresh app (worker_processes.py) on a
running broker, watches the group's committed offsets (count_topics.py), checks
the result and returns its figures. A figure that needs a span of time is 0.0
when the run was too short to have that span (the report says so).
"""

from __future__ import annotations

import random
import time
from array import array
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import Producer

from benchmarks.broker_process import (
    CLIENT_CONFIG,
    PHASE_TIMEOUT_S,
    READY_TIMEOUT_S,
    BrokerProcess,
    create_topic,
)
from benchmarks.count_topics import (
    POLL_INTERVAL_S,
    CommittedPoller,
    changelog_sum,
    event_keys,
)
from benchmarks.phases import Phase, paced_send
from benchmarks.worker_processes import WorkerProcess, check_alive, running_workers

TOPIC = "events"
LATENCY_TOPIC = "latency-events"
COMMIT_INTERVAL_S = 0.2
LATENCY_WARMUP_S = 1.0


def _app_env(
    app_id: str, topic: str, partitions: int, extra_env: dict[str, str] | None
) -> dict[str, str]:
    """What benchmarks.count_app reads from its environment."""
    return {
        "BENCH_APP_ID": app_id,
        "BENCH_TOPIC": topic,
        "BENCH_PARTITIONS": str(partitions),
        "BENCH_COMMIT_INTERVAL_S": str(COMMIT_INTERVAL_S),
        **(extra_env or {}),
    }


def _share(amount: float, seconds: float) -> float:
    return amount / seconds if seconds > 0 else 0.0


# --- throughput ------------------------------------------------------------------------


@dataclass
class _CountRun:
    """What one throughput run saw, on time.monotonic()."""

    start: float  # the first worker process started
    done: float  # every event's offset committed
    broker_cpu_s: float
    workers_cpu_s: float
    assigned: float  # every worker had its partitions
    settled: float  # the last assignment
    assignments: int
    exit_codes: list[int | None]


def run_count(
    broker: BrokerProcess,
    tmp: Path,
    workers: int,
    run: int,
    events: int,
    partitions: int,
    extra_env: dict[str, str] | None = None,
    label: str = "",
) -> dict[str, float]:
    app_id = f"count-{workers}w-{run}{label}"
    env = _app_env(app_id, TOPIC, partitions, extra_env)
    poller = CommittedPoller(broker.bootstrap, app_id, TOPIC, partitions)
    try:
        seen = _count_until_committed(broker, poller, workers, tmp / app_id, env, events)
    finally:
        poller.close()
    steady = steady_rate(poller.samples, seen.settled, seen.done, events)
    first_commit = next(t for t, c in poller.samples if c > 0)
    elapsed = seen.done - seen.start
    counted = changelog_sum(broker.bootstrap, f"{app_id}-counts-changelog", partitions)
    return {
        "workers": float(workers),
        "events": float(events),
        "elapsed_s": elapsed,
        "events_per_s": events / elapsed,
        "assigned_s": seen.assigned - seen.start,
        "first_commit_s": first_commit - seen.start,
        "settled_s": seen.settled - seen.start,
        "steady_events_per_s": steady,
        "broker_cpu": seen.broker_cpu_s / elapsed,
        "broker_cpu_s_per_m": seen.broker_cpu_s * 1e6 / events,
        "workers_cpu": seen.workers_cpu_s / elapsed,
        "workers_cpu_s_per_m": seen.workers_cpu_s * 1e6 / events,
        "assignments": float(seen.assignments),
        "table_sum": float(counted),
        "clean_exits": float(sum(code == 0 for code in seen.exit_codes)),
    }


def _count_until_committed(
    broker: BrokerProcess,
    poller: CommittedPoller,
    workers: int,
    data_dir: Path,
    env: dict[str, str],
    events: int,
) -> _CountRun:
    broker_cpu0 = broker.cpu_s()
    with running_workers(broker.bootstrap, workers, data_dir, env) as procs:
        start = min(w.started_at for w in procs)
        done = poller.wait_for(events, procs)
        broker_cpu = broker.cpu_s() - broker_cpu0
        workers_cpu = sum(w.cpu_s() for w in procs)
        check_alive(procs)
        assigned = max(w.assigned_at[0] if w.assigned_at else done for w in procs)
        settled = max(w.assigned_at[-1] if w.assigned_at else done for w in procs)
        assignments = sum(len(w.assigned_at) for w in procs)
    exit_codes = [w.exit_code for w in procs]
    return _CountRun(
        start, done, broker_cpu, workers_cpu, assigned, settled, assignments, exit_codes
    )


def steady_rate(
    samples: list[tuple[float, int]], settled: float, done: float, events: int
) -> float:
    """Events committed per second from the first commit after the last assignment
    until 90% of the events were (or all, if that came first); 0.0 when the run
    was too short to measure it: no commit came after the last assignment before
    the end, or the span has no length."""
    after = next(((t, c) for t, c in samples if t >= settled and c > 0), None)
    if after is None:
        return 0.0
    t0, c0 = after
    t90, c90 = next(((t, c) for t, c in samples if c >= 0.9 * events), (done, events))
    if t90 <= t0:
        t90, c90 = done, events
    return (c90 - c0) / (t90 - t0) if t90 > t0 else 0.0


# --- latency -----------------------------------------------------------------------------


@dataclass
class _Sent:
    """The measured part of the paced sending."""

    cut_ns: int  # the send wall time of the first event after the warm-up
    measured_start: float
    measured_end: float
    worker_cpu_s: float
    phase: Phase


def run_latency(
    broker: BrokerProcess,
    tmp: Path,
    partitions: int,
    keys: int,
    rate: int,
    duration_s: float,
    extra_env: dict[str, str] | None = None,
    label: str = "",
    linger_ms: float = 1.0,
) -> dict[str, float]:
    measured = int(duration_s * rate)
    if measured < 1:
        raise ValueError(
            f"latency: {duration_s} s at {rate} events/s is too short to measure "
            "(no event after the warm-up)"
        )
    app_id = f"latency-{partitions}p{label}"
    topic = f"{LATENCY_TOPIC}-{partitions}p{label}"
    stamps_file = tmp / f"{app_id}.stamps"
    env = _app_env(
        app_id, topic, partitions, {"BENCH_LATENCY_FILE": str(stamps_file), **(extra_env or {})}
    )
    create_topic(broker.bootstrap, topic, partitions)
    warmup = int(LATENCY_WARMUP_S * rate)
    total = warmup + measured
    poller = CommittedPoller(broker.bootstrap, app_id, topic, partitions)
    producer = _latency_producer(broker.bootstrap, topic, linger_ms)
    try:
        with running_workers(broker.bootstrap, 1, tmp / app_id, env) as procs:
            (worker,) = procs
            _wait_assigned(worker, procs)
            sent = _send_stamped(producer, topic, worker, broker, rate, total, warmup, keys)
            poller.wait_for(total, procs)
    finally:
        poller.close()
    if worker.exit_code != 0:
        raise RuntimeError(f"latency worker exited {worker.exit_code}:\n{worker.tail()}")
    latencies_ms = _latencies_ms(stamps_file, sent.cut_ns)
    n = len(latencies_ms)
    if n != measured:
        raise RuntimeError(f"latency: {n} events counted after the warm-up, {measured} sent")
    elapsed = sent.measured_end - sent.measured_start
    return {
        "events": float(n),
        "target_rate": float(rate),
        "achieved_rate": _share(n, elapsed),
        "duration_s": elapsed,
        "p50_ms": latencies_ms[n // 2],
        "p99_ms": latencies_ms[min(n - 1, int(n * 0.99))],
        "p999_ms": latencies_ms[min(n - 1, int(n * 0.999))],
        "max_ms": latencies_ms[-1],
        "partitions": float(partitions),
        "broker_cpu": sent.phase.broker_cpu_share,
        "worker_cpu": _share(sent.worker_cpu_s, sent.phase.elapsed_s),
    }


def _latency_producer(bootstrap: str, topic: str, linger_ms: float) -> Producer:
    producer = Producer(
        {
            **CLIENT_CONFIG,
            "bootstrap.servers": bootstrap,
            "partitioner": "murmur2_random",
            "linger.ms": linger_ms,
            "acks": 1,
            "compression.type": "none",
        }
    )
    producer.list_topics(topic, timeout=10)  # connected, metadata known
    return producer


def _wait_assigned(worker: WorkerProcess, procs: list[WorkerProcess]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not worker.assigned_at:
        check_alive(procs)
        if time.monotonic() > deadline:
            raise RuntimeError(f"the worker got no partitions:\n{worker.tail()}")
        time.sleep(POLL_INTERVAL_S)


def _send_stamped(
    producer: Producer,
    topic: str,
    worker: WorkerProcess,
    broker: BrokerProcess,
    rate: int,
    total: int,
    warmup: int,
    keys: int,
) -> _Sent:
    """Send `total` events at `rate`, each value its send wall time, then flush."""
    rng = random.Random(11)
    encoded = event_keys(keys)
    cut: dict[str, float] = {}

    def send(i: int) -> None:
        now_ns = time.time_ns()
        if i == warmup:
            cut.update(send_ns=now_ns, worker_cpu_s=worker.cpu_s())
        producer.produce(topic, str(now_ns).encode(), key=encoded[rng.randrange(keys)])

    phase = Phase(broker)
    _, measured_start, measured_end = paced_send(send, producer.poll, total, rate, warmup, phase)
    phase.stop()
    worker_cpu = worker.cpu_s() - cut["worker_cpu_s"]
    if producer.flush(PHASE_TIMEOUT_S):
        raise RuntimeError("latency: events left unsent")
    return _Sent(int(cut["send_ns"]), measured_start, measured_end, worker_cpu, phase)


def _latencies_ms(stamps_file: Path, cut_ns: int) -> list[float]:
    """Sorted (counted - sent) of the events sent from `cut_ns` on, from the
    (send ns, counted ns) pairs the worker wrote."""
    stamps = array("q")
    stamps.frombytes(stamps_file.read_bytes())
    send_ns, processed_ns = stamps[0::2], stamps[1::2]
    return sorted((p - s) / 1e6 for s, p in zip(send_ns, processed_ns, strict=True) if s >= cut_ns)
