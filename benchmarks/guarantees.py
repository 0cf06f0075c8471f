"""The keyed count under at_least_once and under exactly_once, side by side, from one run.

    python -m benchmarks.guarantees [--events N] [--keys K] [--partitions P] [--runs R]
                                    [--rate E] [--latency-s S] [--commit-interval-s C]
                                    [--json FILE|-]

One `streams broker` process; worker processes of benchmarks.count_app, as in
benchmarks.workers (whose phases this reuses), once per guarantee:

1. Throughput: N pre-produced events counted by 1 worker (RocksDB table with its
   changelog), from starting the worker until its committed offsets reach the
   end; the best of R runs per guarantee. Under exactly_once every commit is a
   transaction (changelog batches and the consumed offsets, then EndTxn).
2. Latency: E events/s for S seconds into 1 worker that also sends each event
   on to an output topic. Two latencies per event, from its send wall time:
   - processed: when the agent counted it (what benchmarks.workers reports);
   - visible: when a read_committed confluent-kafka consumer of the output topic
     got it. Under at_least_once that is the producer's linger after processing;
     under exactly_once the result waits for its transaction to commit, so the
     commit interval (the same for both here) is part of it.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer

from benchmarks.broker_process import CLIENT_CONFIG, create_topic, running_broker
from benchmarks.count_topics import produce_events
from benchmarks.embedded import machine
from benchmarks.runs import Best, write_json
from benchmarks.worker_phases import (
    COMMIT_INTERVAL_S,
    LATENCY_WARMUP_S,
    TOPIC,
    run_count,
    run_latency,
)

GUARANTEES = ("at_least_once", "exactly_once")
OUTPUT_TOPIC = "latency-results"


class OutputWatcher:
    """A read_committed consumer of an output topic whose values are send times
    (time.time_ns() at the producer): (send_ns, seen_ns) of each record."""

    def __init__(self, bootstrap: str, topic: str, partitions: int) -> None:
        self._consumer = Consumer(
            {
                **CLIENT_CONFIG,
                "bootstrap.servers": bootstrap,
                "group.id": f"watch-{topic}",
                "isolation.level": "read_committed",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
                "fetch.wait.max.ms": 5,
            }
        )
        self._consumer.subscribe([topic])
        self.pairs: list[tuple[int, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            msg = self._consumer.poll(0.05)  # returns with the first record there is
            if msg is not None and msg.error() is None:
                self.pairs.append((int(msg.value()), time.time_ns()))

    def wait_for(self, count: int, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while len(self.pairs) < count:
            if time.monotonic() > deadline:
                raise RuntimeError(f"output: {len(self.pairs)} of {count} results seen")
            time.sleep(0.05)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self._consumer.close()


def visible_latency(pairs: list[tuple[int, int]], warmup: int) -> dict[str, float]:
    measured = sorted(pairs)[warmup:]  # the first sends were the warm-up
    latencies = sorted((seen - sent) / 1e6 for sent, seen in measured)
    n = len(latencies)
    return {
        "visible_events": float(n),
        "visible_p50_ms": latencies[n // 2],
        "visible_p99_ms": latencies[min(n - 1, int(n * 0.99))],
        "visible_max_ms": latencies[-1],
    }


def run_all(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {"machine": machine(), "settings": vars(args).copy()}
    results["load_before"] = os.getloadavg()[0]
    best = {g: Best("events_per_s") for g in GUARANTEES}
    interval = str(args.commit_interval_s)
    with ExitStack() as stack:
        broker = stack.enter_context(running_broker("os"))
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="guarantees-bench-")))
        produce_events(broker.bootstrap, TOPIC, args.events, args.keys, args.partitions)
        for run in range(args.runs):
            for guarantee in GUARANTEES:
                env = {"BENCH_GUARANTEE": guarantee, "BENCH_COMMIT_INTERVAL_S": interval}
                label = f"-{guarantee.replace('_', '')}"
                best[guarantee].add(
                    run_count(broker, tmp, 1, run, args.events, args.partitions, env, label)
                )
        for guarantee in GUARANTEES:
            label = f"-{guarantee.replace('_', '')}"
            output = f"{OUTPUT_TOPIC}{label}"
            create_topic(broker.bootstrap, output, args.partitions)
            watcher = OutputWatcher(broker.bootstrap, output, args.partitions)
            env = {
                "BENCH_GUARANTEE": guarantee,
                "BENCH_OUTPUT_TOPIC": output,
                "BENCH_COMMIT_INTERVAL_S": interval,
            }
            try:
                lat = run_latency(
                    broker, tmp, args.partitions, args.keys, args.rate, args.latency_s, env, label
                )
                total = int(lat["events"]) + int(LATENCY_WARMUP_S * args.rate)
                watcher.wait_for(total, timeout_s=30)
            finally:
                watcher.close()
            lat.update(visible_latency(watcher.pairs, total - int(lat["events"])))
            results[f"latency_{guarantee}"] = lat
    for guarantee in GUARANTEES:
        results[f"count_{guarantee}"] = best[guarantee].best
        results[f"count_{guarantee}_runs"] = best[guarantee].spread()
    return results


def report(r: dict[str, Any]) -> str:
    info, s = r["machine"], r["settings"]
    alo, eos = r["count_at_least_once"], r["count_exactly_once"]
    lines = [
        "streams keyed count: at_least_once vs exactly_once (1 worker process on "
        "`python -m streams broker`)",
        f"  cpu      {info['cpu']} ({info['cores']} cores); load {r['load_before']:.2f} before",
        f"  input    {s['events']:,} events, {s['keys']:,} keys, {s['partitions']} partitions; "
        f"commit interval {s['commit_interval_s']} s for both",
        "",
        f"throughput (worker started .. every offset committed; best of {s['runs']} runs)",
    ]
    for guarantee, c in (("at_least_once", alo), ("exactly_once", eos)):
        lines += [
            f"  {guarantee:<14} {c['events_per_s']:>10,.0f} events/s   steady "
            f"{c['steady_events_per_s']:>10,.0f} events/s   worker CPU "
            f"{c['workers_cpu_s_per_m']:.2f} s per 1M events   table sums to N: "
            f"{'ok' if int(c['table_sum']) == s['events'] else 'MISMATCH'}",
            f"      {r[f'count_{guarantee}_runs']}",
        ]
    lines.append(
        f"  exactly_once / at_least_once {_ratio(eos, alo, 'events_per_s')} "
        f"(steady {_ratio(eos, alo, 'steady_events_per_s')})"
    )
    lines += [
        "",
        f"latency ({s['rate']:,} events/s for {s['latency_s']:.0f} s after "
        f"{LATENCY_WARMUP_S:.0f} s of warm-up; from the send wall time)",
    ]
    for guarantee in GUARANTEES:
        lat = r[f"latency_{guarantee}"]
        lines.append(
            f"  {guarantee:<14} processed p50 {lat['p50_ms']:7.2f} ms  p99 {lat['p99_ms']:7.2f} ms"
            f"   visible to read_committed p50 {lat['visible_p50_ms']:7.2f} ms  p99 "
            f"{lat['visible_p99_ms']:7.2f} ms  max {lat['visible_max_ms']:7.2f} ms"
        )
    return "\n".join(lines)


def _ratio(a: dict[str, float], b: dict[str, float], name: str) -> str:
    return f"{a[name] / b[name]:.2f}x" if b[name] > 0 else "n/a (run too short)"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.guarantees")
    parser.add_argument("--events", type=int, default=500_000)
    parser.add_argument("--keys", type=int, default=10_000)
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--runs", type=int, default=2, help="runs of each throughput figure")
    parser.add_argument("--rate", type=int, default=2_000, help="events/s of the latency phase")
    parser.add_argument("--latency-s", type=float, default=6.0)
    parser.add_argument(
        "--commit-interval-s",
        type=float,
        default=COMMIT_INTERVAL_S,
        help="both guarantees' (exactly_once's own default is 0.1 s)",
    )
    parser.add_argument("--json", metavar="FILE", help="write results as JSON ('-': stdout)")
    args = parser.parse_args(argv)
    if min(args.events, args.keys, args.partitions, args.runs, args.rate) < 1:
        parser.error("--events, --keys, --partitions, --runs and --rate must be positive")
    if args.latency_s <= 0 or args.commit_interval_s <= 0:
        parser.error("--latency-s and --commit-interval-s must be positive")
    results = run_all(args)
    print(report(results), flush=True)
    write_json(results, args.json)


if __name__ == "__main__":
    main(sys.argv[1:])
