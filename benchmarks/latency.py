"""End-to-end latency of the keyed count on `kafka://` at a fixed rate, alone.

    python -m benchmarks.latency [--rate E] [--partitions P] [--latency-s S]
                                 [--keys K] [--linger-ms L] [--json FILE|-]

The latency phase of benchmarks.workers (one `streams broker` process, one
worker process of benchmarks.count_app; a confluent-kafka producer sends E
events/s for S seconds after a warm-up second, each value its send wall time;
latency is from that time until the agent counted the event), without its
throughput runs, so that a change to the wait on the path can be measured in
a minute: p50, p99, p99.9, the worker's and broker's CPU share, and the
requests the broker answered a second by API with its CPU per request (over
the whole run: start-up and warm-up included).

With the producer's linger.ms 1 (as benchmarks.workers) and 8 partitions,
10,000 events/s arrive as thousands of small produce requests a second, which
the broker queues: most of the latency is then spent before the worker's
fetch returns the events; --linger-ms 5 (fewer, larger requests) shows the
rest of the path.
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

from benchmarks.broker_process import BrokerProcess, running_broker
from benchmarks.embedded import machine
from benchmarks.runs import write_json
from benchmarks.worker_phases import run_latency

TARGET_P99_MS = 5.0


def run(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {"machine": machine(), "load_before": os.getloadavg()[0]}
    with ExitStack() as stack:
        broker = stack.enter_context(running_broker("os", http=True))
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="latency-bench-")))
        before, cpu_s, started = broker.requests_by_api(), broker.cpu_s(), time.perf_counter()
        results["latency"] = run_latency(
            broker,
            tmp,
            args.partitions,
            args.keys,
            args.rate,
            args.latency_s,
            linger_ms=args.linger_ms,
        )
        results["requests"] = _requests(broker, before, cpu_s, time.perf_counter() - started)
    results["linger_ms"] = args.linger_ms
    results["load_after"] = os.getloadavg()[0]
    return results


def _requests(
    broker: BrokerProcess, before: dict[str, float], cpu_s: float, elapsed_s: float
) -> dict[str, Any]:
    """Requests a second by API since `before`, and broker CPU us per request."""
    counts = {
        api: n - before.get(api, 0.0)
        for api, n in broker.requests_by_api().items()
        if n > before.get(api, 0.0)
    }
    total = sum(counts.values())
    return {
        "per_s": {api: n / elapsed_s for api, n in sorted(counts.items(), key=lambda kv: -kv[1])},
        "broker_cpu_us_per_request": (broker.cpu_s() - cpu_s) / total * 1e6 if total else 0.0,
    }


def report(results: dict[str, Any]) -> str:
    lat, requests = results["latency"], results["requests"]
    ok = lat["p99_ms"] <= TARGET_P99_MS
    return "\n".join(
        [
            f"end-to-end latency on kafka:// ({lat['target_rate']:,.0f} events/s over "
            f"{lat['partitions']:.0f} partitions for {lat['duration_s']:.1f} s, producer "
            f"linger.ms {results['linger_ms']:g}; load average "
            f"{results['load_before']:.1f} before, {results['load_after']:.1f} after)",
            f"  achieved rate  {lat['achieved_rate']:>10,.0f} events/s",
            f"  p50 {lat['p50_ms']:.2f} ms  p99 {lat['p99_ms']:.2f} ms  "
            f"p99.9 {lat['p999_ms']:.2f} ms  max {lat['max_ms']:.2f} ms  "
            f"(target p99 <= {TARGET_P99_MS} ms: {'ok' if ok else 'BELOW TARGET'})",
            f"  cpu share      worker {lat['worker_cpu']:.0%}, broker {lat['broker_cpu']:.0%}",
            "  broker         "
            + ", ".join(f"{api} {n:,.0f}/s" for api, n in list(requests["per_s"].items())[:4])
            + f"; {requests['broker_cpu_us_per_request']:.0f} us CPU per request (whole run)",
        ]
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.latency")
    parser.add_argument("--rate", type=int, default=10_000)
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--latency-s", type=float, default=6.0)
    parser.add_argument("--keys", type=int, default=10_000)
    parser.add_argument(
        "--linger-ms",
        type=float,
        default=1.0,
        help="the producer's linger.ms (1: thousands of small produce requests a second)",
    )
    parser.add_argument("--json", metavar="FILE", help="write results as JSON ('-': stdout)")
    args = parser.parse_args(argv)
    if min(args.rate, args.partitions, args.keys) < 1 or args.latency_s <= 0:
        parser.error("--rate, --partitions, --keys and --latency-s must be positive")
    results = run(args)
    print(report(results), flush=True)
    write_json(results, args.json)


if __name__ == "__main__":
    main(sys.argv[1:])
