"""A keyed count in 1 and 2 worker processes on `streams broker`, and its latency.

    python -m benchmarks.workers [--events N] [--keys K] [--partitions P] [--runs R]
                                 [--rate E] [--latency-s S] [--json FILE|-]

The broker runs as its own process (`python -m streams broker`, as in
benchmarks.broker). Each worker is its own process, `python -m streams -A
benchmarks.count_app worker --broker kafka://...` with its own data directory:
the workers of an app join a consumer group named after the app id and share
its partitions. Every process started here is stopped at the end, whatever
happened.

1. Throughput: N events (keys drawn from K str keys, values the JSON int 0) are
   pre-produced with confluent-kafka into a topic of P partitions; that is not
   timed. Then 1, or 2, worker processes of a fresh app count them: the agent
   does `counts[event.key] += 1` into a RocksDB-backed table with its
   changelog. Timed from starting the worker processes until the group's
   committed offsets (polled every POLL_INTERVAL_S with confluent-kafka's
   Consumer.committed) equal the topic's end offsets: every event processed,
   its table update in the changelog, its offset committed. So the time
   includes starting Python, joining the group (and any rebalance) and the
   last commit; the steady rate shown beside it does not: events committed
   from the first commit after the last assignment until 90% of the events
   were, over that time.
   The result is checked: the changelog's last count per key sums to N.
2. Latency: one worker of a fresh app is started and has its partitions; then
   a producer (linger.ms 1, acks=1) sends E events/s for S seconds after a
   warm-up second, each value its send wall time (time.time_ns()). The agent
   keeps (send time, time it counted the event); the worker writes them out
   when it stops. p50/p99 of the difference over the events sent after the
   warm-up. Then the same on a topic of 1 partition (unless P is 1): the
   worker fetches each partition with its own requests, so P partitions at a
   low rate cost the broker and the worker more than one.

Throughput runs alternate 1 and 2 workers R times (a fresh app id, data
directories and changelog each time) and the best of each is reported with
the spread of the others: the machine may have other work. CPU seconds per
million events of the broker and of the workers (from /proc) are steadier
than the rates when the machine is shared. With fewer cores than busy
processes (a broker and two workers on 2 cores) the processes take turns on
the cores, and 2 workers cannot reach twice the rate of 1.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from array import array
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)

from benchmarks.broker import LATENCY_P99_TARGET_MS
from benchmarks.broker_process import (
    CLIENT_CONFIG,
    PHASE_TIMEOUT_S,
    READY_TIMEOUT_S,
    STOP_TIMEOUT_S,
    BrokerProcess,
    create_topic,
    running_broker,
)
from benchmarks.embedded import COUNT_TARGET_EVENTS_PER_S, machine
from benchmarks.phases import Phase, paced_send
from benchmarks.runs import Best

TOPIC = "events"
LATENCY_TOPIC = "latency-events"
COMMIT_INTERVAL_S = 0.2
LATENCY_WARMUP_S = 1.0
POLL_INTERVAL_S = 0.02
ASSIGNED_LINE = "INFO streams.worker: assigned app="  # a worker has its partitions
REPO = Path(__file__).resolve().parents[1]

PRODUCER_CONFIG: dict[str, Any] = {
    **CLIENT_CONFIG,
    "partitioner": "murmur2_random",  # Kafka's (and streams') key -> partition
    "linger.ms": 10,
    "batch.size": 1 << 20,
    "compression.type": "none",
    "queue.buffering.max.messages": 1_000_000,
    "queue.buffering.max.kbytes": 1 << 20,
}


def _keys(count: int) -> list[bytes]:
    return [f"user-{i:05d}".encode() for i in range(count)]


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds process `pid` has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- worker processes ----------------------------------------------------------------


class WorkerProcess:
    """A worker of benchmarks.count_app; stderr drained by a thread, which notes
    when each assignment is logged."""

    def __init__(self, bootstrap: str, data_dir: Path, env: dict[str, str]) -> None:
        self.log: list[str] = []
        self.assigned_at: list[float] = []  # time.monotonic() of each "assigned" line
        self.started_at = time.monotonic()
        self.exit_code: int | None = None
        self._cpu_s = 0.0
        command = [sys.executable, "-m", "streams", "-A", "benchmarks.count_app", "worker"]
        command += ["--broker", f"kafka://{bootstrap}", "--data", str(data_dir), "-l", "info"]
        self._proc = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            text=True, cwd=REPO, env={**os.environ, **env},
        )  # fmt: skip
        self._drain = threading.Thread(target=self._read, name="worker-stderr", daemon=True)
        self._drain.start()

    def _read(self) -> None:
        assert self._proc.stderr is not None
        for line in self._proc.stderr:
            self.log.append(line)
            if ASSIGNED_LINE in line:
                self.assigned_at.append(time.monotonic())

    def alive(self) -> bool:
        return self._proc.poll() is None

    @property
    def returncode(self) -> int | None:
        return self._proc.poll()

    def cpu_s(self) -> float:
        """CPU seconds used so far (the last reading once the process is gone)."""
        if self.alive():
            with suppress(OSError):  # it exited just now
                self._cpu_s = _cpu_s(self._proc.pid)
        return self._cpu_s

    def terminate(self) -> None:
        if self._proc.poll() is None:
            self.cpu_s()
            self._proc.send_signal(signal.SIGTERM)

    def wait(self) -> int:
        """Wait for the exit after terminate() (SIGKILL after STOP_TIMEOUT_S)."""
        try:
            self.exit_code = self._proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self.exit_code = self._proc.wait()
        self._drain.join(STOP_TIMEOUT_S)
        if self._proc.stderr is not None:
            self._proc.stderr.close()
        return self.exit_code

    def tail(self, lines: int = 20) -> str:
        return "".join(self.log[-lines:])


@contextmanager
def running_workers(
    bootstrap: str, count: int, tmp: Path, env: dict[str, str]
) -> Iterator[list[WorkerProcess]]:
    """`count` workers, each with its own data directory; all stopped on exit."""
    workers: list[WorkerProcess] = []
    try:
        for i in range(count):
            workers.append(WorkerProcess(bootstrap, tmp / f"worker-{i}", env))
        yield workers
    finally:
        for w in workers:
            w.terminate()
        for w in workers:
            w.wait()


def _check_alive(workers: list[WorkerProcess]) -> None:
    for w in workers:
        if not w.alive():
            raise RuntimeError(f"a worker exited ({w.returncode}):\n{w.tail()}")


# --- topics and offsets through confluent-kafka --------------------------------------


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
    encoded = _keys(keys)
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
            _check_alive(workers)
            if now > deadline:
                raise RuntimeError(f"{committed} of {total} committed after {PHASE_TIMEOUT_S}s")
            time.sleep(POLL_INTERVAL_S)

    def first_at(self, share: float, total: int) -> tuple[float, int]:
        """The first sample with at least `share` of `total` committed."""
        return next((t, c) for t, c in self.samples if c >= share * total)

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


# --- throughput ------------------------------------------------------------------------


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
    env = {
        "BENCH_APP_ID": app_id,
        "BENCH_TOPIC": TOPIC,
        "BENCH_PARTITIONS": str(partitions),
        "BENCH_COMMIT_INTERVAL_S": str(COMMIT_INTERVAL_S),
        **(extra_env or {}),
    }
    poller = CommittedPoller(broker.bootstrap, app_id, TOPIC, partitions)
    try:
        broker_cpu0 = broker.cpu_s()
        with running_workers(broker.bootstrap, workers, tmp / app_id, env) as procs:
            start = min(w.started_at for w in procs)
            done = poller.wait_for(events, procs)
            broker_cpu = broker.cpu_s() - broker_cpu0
            workers_cpu = sum(w.cpu_s() for w in procs)
            _check_alive(procs)
            assigned = [w.assigned_at[0] if w.assigned_at else done for w in procs]
            settled = max(w.assigned_at[-1] if w.assigned_at else done for w in procs)
            assignments = sum(len(w.assigned_at) for w in procs)
        exit_codes = [w.exit_code for w in procs]
    finally:
        poller.close()
    t0, c0 = next((t, c) for t, c in poller.samples if t >= settled and c > 0)
    t90, c90 = poller.first_at(0.9, events)
    if t90 <= t0:
        t90, c90 = done, events
    first_commit = next(t for t, c in poller.samples if c > 0)
    elapsed = done - start
    counted = changelog_sum(broker.bootstrap, f"{app_id}-counts-changelog", partitions)
    return {
        "workers": float(workers),
        "events": float(events),
        "elapsed_s": elapsed,
        "events_per_s": events / elapsed,
        "assigned_s": max(assigned) - start,
        "first_commit_s": first_commit - start,
        "settled_s": settled - start,
        "steady_events_per_s": (c90 - c0) / (t90 - t0) if t90 > t0 else 0.0,
        "broker_cpu": broker_cpu / elapsed,
        "broker_cpu_s_per_m": broker_cpu * 1e6 / events,
        "workers_cpu": workers_cpu / elapsed,
        "workers_cpu_s_per_m": workers_cpu * 1e6 / events,
        "assignments": float(assignments),
        "table_sum": float(counted),
        "clean_exits": float(sum(code == 0 for code in exit_codes)),
    }


# --- latency -----------------------------------------------------------------------------


def run_latency(
    broker: BrokerProcess,
    tmp: Path,
    partitions: int,
    keys: int,
    rate: int,
    duration_s: float,
    extra_env: dict[str, str] | None = None,
    label: str = "",
) -> dict[str, float]:
    app_id = f"latency-{partitions}p{label}"
    topic = f"{LATENCY_TOPIC}-{partitions}p{label}"
    stamps_file = tmp / f"{app_id}.stamps"
    env = {
        "BENCH_APP_ID": app_id,
        "BENCH_TOPIC": topic,
        "BENCH_PARTITIONS": str(partitions),
        "BENCH_COMMIT_INTERVAL_S": str(COMMIT_INTERVAL_S),
        "BENCH_LATENCY_FILE": str(stamps_file),
        **(extra_env or {}),
    }
    create_topic(broker.bootstrap, topic, partitions)
    warmup = int(LATENCY_WARMUP_S * rate)
    total = warmup + int(duration_s * rate)
    poller = CommittedPoller(broker.bootstrap, app_id, topic, partitions)
    producer = Producer(
        {
            **CLIENT_CONFIG,
            "bootstrap.servers": broker.bootstrap,
            "partitioner": "murmur2_random",
            "linger.ms": 1,
            "acks": 1,
            "compression.type": "none",
        }
    )
    producer.list_topics(topic, timeout=10)  # connected, metadata known
    rng = random.Random(11)
    encoded = _keys(keys)
    cut: dict[str, float] = {}
    try:
        with running_workers(broker.bootstrap, 1, tmp / app_id, env) as procs:
            (worker,) = procs
            deadline = time.monotonic() + READY_TIMEOUT_S
            while not worker.assigned_at:
                _check_alive(procs)
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the worker got no partitions:\n{worker.tail()}")
                time.sleep(POLL_INTERVAL_S)

            def send(i: int) -> None:
                now_ns = time.time_ns()
                if i == warmup:
                    cut.update(send_ns=now_ns, worker_cpu_s=worker.cpu_s())
                producer.produce(topic, str(now_ns).encode(), key=encoded[rng.randrange(keys)])

            phase = Phase(broker)
            _, measured_start, measured_end = paced_send(
                send, producer.poll, total, rate, warmup, phase
            )
            phase.stop()
            worker_cpu = worker.cpu_s() - cut["worker_cpu_s"]
            if producer.flush(PHASE_TIMEOUT_S):
                raise RuntimeError("latency: events left unsent")
            poller.wait_for(total, procs)
    finally:
        poller.close()
    if worker.exit_code != 0:
        raise RuntimeError(f"latency worker exited {worker.exit_code}:\n{worker.tail()}")
    stamps = array("q")
    stamps.frombytes(stamps_file.read_bytes())
    send_ns, processed_ns = stamps[0::2], stamps[1::2]
    latencies_ms = sorted(
        (p - s) / 1e6 for s, p in zip(send_ns, processed_ns, strict=True) if s >= cut["send_ns"]
    )
    n = len(latencies_ms)
    if n != total - warmup:
        raise RuntimeError(f"latency: {n} events counted after the warm-up, {total - warmup} sent")
    elapsed = measured_end - measured_start
    return {
        "events": float(n),
        "target_rate": float(rate),
        "achieved_rate": n / elapsed,
        "duration_s": elapsed,
        "p50_ms": latencies_ms[n // 2],
        "p99_ms": latencies_ms[min(n - 1, int(n * 0.99))],
        "p999_ms": latencies_ms[min(n - 1, int(n * 0.999))],
        "max_ms": latencies_ms[-1],
        "partitions": float(partitions),
        "broker_cpu": phase.broker_cpu_share,
        "worker_cpu": worker_cpu / phase.elapsed_s,
    }


# --- runs and report -------------------------------------------------------------------


def run_all(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {"machine": machine(), "settings": vars(args).copy()}
    results["load_before"] = os.getloadavg()[0]
    counts = {1: Best("events_per_s"), 2: Best("events_per_s")}
    with ExitStack() as stack:
        broker = stack.enter_context(running_broker("os"))
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="workers-bench-")))
        t0 = time.perf_counter()
        produce_events(broker.bootstrap, TOPIC, args.events, args.keys, args.partitions)
        results["produce_s"] = time.perf_counter() - t0
        for run in range(args.runs):
            for workers, best in counts.items():
                best.add(run_count(broker, tmp, workers, run, args.events, args.partitions))
        results["latency"] = run_latency(
            broker, tmp, args.partitions, args.keys, args.rate, args.latency_s
        )
        if args.partitions != 1:  # what the partitions cost: the same on one partition
            results["latency_1p"] = run_latency(
                broker, tmp, 1, args.keys, args.rate, args.latency_s
            )
        results["broker_log"] = [
            line for line in broker.log if "WARNING" in line or "ERROR" in line
        ]
    for workers, best in counts.items():
        results[f"count_{workers}"] = best.best
        results[f"count_{workers}_runs"] = best.spread()
    # Each worker is assigned once, unless one joined after the other had taken
    # every partition: then the group rebalanced during the run.
    results["rebalanced_runs"] = sum(r["assignments"] > 2 for r in counts[2].runs)
    one, two = counts[1].best, counts[2].best
    results["ratio"] = two["events_per_s"] / one["events_per_s"]
    results["steady_ratio"] = two["steady_events_per_s"] / one["steady_events_per_s"]
    results["targets_met"] = {
        "count_1": one["events_per_s"] >= COUNT_TARGET_EVENTS_PER_S,
        "count_2": two["events_per_s"] >= COUNT_TARGET_EVENTS_PER_S,
        "latency_p99": results["latency"]["p99_ms"] <= LATENCY_P99_TARGET_MS,
    }
    if "latency_1p" in results:
        results["targets_met"]["latency_p99_1p"] = (
            results["latency_1p"]["p99_ms"] <= LATENCY_P99_TARGET_MS
        )
    return results


def _verdict(ok: bool) -> str:
    return "ok" if ok else "BELOW TARGET"


def _count_lines(r: dict[str, Any], workers: int) -> list[str]:
    c, events = r[f"count_{workers}"], r["settings"]["events"]
    label = "1 worker " if workers == 1 else f"{workers} workers"
    check = "ok" if int(c["table_sum"]) == events else f"MISMATCH: {int(c['table_sum']):,}"
    exits = "" if int(c["clean_exits"]) == workers else "; a worker did not exit 0 on SIGTERM"
    ok = r["targets_met"][f"count_{workers}"]
    return [
        f"  {label}      {c['events_per_s']:>12,.0f} events/s   "
        f"(target >= {COUNT_TARGET_EVENTS_PER_S:,}: {_verdict(ok)};"
        f" {c['events_per_s'] / COUNT_TARGET_EVENTS_PER_S:.2f}x of target)",
        f"      {c['elapsed_s']:.3f} s total; every worker had its partitions after "
        f"{c['assigned_s']:.3f} s, the last assignment at {c['settled_s']:.3f} s, first commit "
        f"after {c['first_commit_s']:.3f} s; steady rate {c['steady_events_per_s']:,.0f} events/s",
        f"      CPU: broker {c['broker_cpu']:.0%} ({c['broker_cpu_s_per_m']:.2f} s per 1M events), "
        f"workers {c['workers_cpu']:.0%} ({c['workers_cpu_s_per_m']:.2f} s per 1M events); "
        f"{int(c['assignments'])} assignment(s); changelog sums to N: {check}{exits}",
        f"      {r[f'count_{workers}_runs']}",
    ]


def _latency_lines(lat: dict[str, float], ok: bool) -> list[str]:
    return [
        f"  p50 {lat['p50_ms']:.2f} ms   p99 {lat['p99_ms']:.2f} ms   p99.9 {lat['p999_ms']:.2f} ms"
        f"   max {lat['max_ms']:.2f} ms   (target p99 <= {LATENCY_P99_TARGET_MS:.0f} ms, the "
        f"broker's produce..consume target: {_verdict(ok)})",
        f"      {int(lat['partitions'])} partition(s); CPU: broker {lat['broker_cpu']:.0%}, "
        f"worker {lat['worker_cpu']:.0%}",
    ]


def report(r: dict[str, Any]) -> str:
    info, s, lat, met = r["machine"], r["settings"], r["latency"], r["targets_met"]
    cores = int(info["cores"]) if info["cores"].isdigit() else 0
    lines = [
        "streams workers benchmark (`python -m streams -A benchmarks.count_app worker` processes "
        "on `python -m streams broker` in its own process)",
        f"  cpu      {info['cpu']} ({info['cores']} cores)",
        f"  python   {info['python']} on {info['platform']}",
        f"  load     {r['load_before']:.2f} (1-minute load average before the run: other work "
        "on the machine slows the rates; CPU s per 1M events are steadier)",
        f"  input    {s['events']:,} events pre-produced with confluent-kafka in "
        f"{r['produce_s']:.2f} s (not timed); {s['keys']:,} str keys; topic of "
        f"{s['partitions']} partitions",
        "",
        "keyed count (agent: counts[event.key] += 1; rocksdb table with changelog; "
        f"commit interval {COMMIT_INTERVAL_S} s; worker processes started .. all committed)",
        *_count_lines(r, 1),
        *_count_lines(r, 2),
        f"  2 workers / 1 worker {r['ratio']:>12.2f}x   (steady rates: "
        f"{r['steady_ratio']:.2f}x; the target is the embedded keyed count's)",
    ]
    if cores and cores < 3:
        lines.append(
            f"      this machine has {cores} cores: the broker and the two workers share them "
            f"(and this process polls offsets every {POLL_INTERVAL_S * 1000:.0f} ms), so 2 "
            "workers cannot reach 2x here"
        )
    if r["rebalanced_runs"]:
        lines.append(
            f"      {r['rebalanced_runs']} of {s['runs']} runs of 2 workers rebalanced: one worker "
            "joined after the other had taken every partition (revoke, commit, table recovery)"
        )
    lines += [
        "",
        f"end-to-end latency (1 worker; acks=1, linger.ms 1; {lat['target_rate']:,.0f} events/s "
        f"for {lat['duration_s']:.1f} s after {LATENCY_WARMUP_S:.0f} s of warm-up; "
        "send wall time .. the agent counting the event)",
        f"  achieved rate        {lat['achieved_rate']:>12,.0f} events/s ({int(lat['events']):,}"
        " events)",
        *_latency_lines(lat, met["latency_p99"]),
    ]
    if "latency_1p" in r:
        lat1 = r["latency_1p"]
        lines += [
            "  the same on a topic of 1 partition (the worker then fetches one partition)",
            *_latency_lines(lat1, met["latency_p99_1p"]),
        ]
    if r["broker_log"]:
        lines += ["", "broker warnings:", *(f"  {line.rstrip()}" for line in r["broker_log"][:10])]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.workers")
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--keys", type=int, default=10_000)
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--runs", type=int, default=3, help="runs of each throughput figure")
    parser.add_argument("--rate", type=int, default=5_000, help="events/s of the latency phase")
    parser.add_argument("--latency-s", type=float, default=8.0)
    parser.add_argument("--json", metavar="FILE", help="write results as JSON ('-': stdout)")
    args = parser.parse_args(argv)
    if min(args.events, args.keys, args.partitions, args.runs, args.rate) < 1:
        parser.error("--events, --keys, --partitions, --runs and --rate must be positive")
    if args.latency_s <= 0:
        parser.error("--latency-s must be positive")
    results = run_all(args)
    print(report(results), flush=True)
    if args.json == "-":
        print(json.dumps(results))
    elif args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
