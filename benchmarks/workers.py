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
import os
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from benchmarks.broker import LATENCY_P99_TARGET_MS
from benchmarks.broker_process import running_broker
from benchmarks.count_topics import produce_events
from benchmarks.embedded import COUNT_TARGET_EVENTS_PER_S, machine
from benchmarks.runs import Best, write_json
from benchmarks.worker_phases import TOPIC, run_count, run_latency
from benchmarks.workers_report import report


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
    summarize(results, counts)
    return results


def summarize(results: dict[str, Any], counts: dict[int, Best]) -> None:
    """The best runs, the 2-worker / 1-worker ratios and the targets, into `results`."""
    for workers, best in counts.items():
        results[f"count_{workers}"] = best.best
        results[f"count_{workers}_runs"] = best.spread()
    # Each worker is assigned once, unless one joined after the other had taken
    # every partition: then the group rebalanced during the run.
    results["rebalanced_runs"] = sum(r["assignments"] > 2 for r in counts[2].runs)
    one, two = counts[1].best, counts[2].best
    results["ratio"] = ratio(two["events_per_s"], one["events_per_s"])
    results["steady_ratio"] = ratio(two["steady_events_per_s"], one["steady_events_per_s"])
    results["targets_met"] = {
        "count_1": one["events_per_s"] >= COUNT_TARGET_EVENTS_PER_S,
        "count_2": two["events_per_s"] >= COUNT_TARGET_EVENTS_PER_S,
        "latency_p99": results["latency"]["p99_ms"] <= LATENCY_P99_TARGET_MS,
    }
    if "latency_1p" in results:
        results["targets_met"]["latency_p99_1p"] = (
            results["latency_1p"]["p99_ms"] <= LATENCY_P99_TARGET_MS
        )


def ratio(a: float, b: float) -> float | None:
    """a / b, or None when either was too short to measure (0.0)."""
    return a / b if a > 0 and b > 0 else None


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
    if int(args.latency_s * args.rate) < 1:
        parser.error("--latency-s x --rate gives no event to measure after the warm-up")
    results = run_all(args)
    print(report(results), flush=True)
    write_json(results, args.json)


if __name__ == "__main__":
    main(sys.argv[1:])
