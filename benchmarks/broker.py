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
import sys
from typing import Any

from benchmarks.broker_phases import (
    LATENCY_WARMUP_S,
    VALUE_BYTES,
    run_consume,
    run_consume_processes,
    run_latency,
    run_produce,
)
from benchmarks.broker_process import running_broker
from benchmarks.embedded import machine
from benchmarks.runs import Best, write_json
from benchmarks.tcp_baseline import TCP_WRITE_BYTES, run_tcp

PRODUCE_TARGET_MSGS_PER_S = 500_000
CONSUME_TARGET_MSGS_PER_S = 1_000_000
LATENCY_P99_TARGET_MS = 10.0
CONSUME_PROCESSES = 2

LATENCY_RATE_PER_S = 10_000


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
            tcp.add(run_tcp(args.messages, VALUE_BYTES))
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
    info, s = r["machine"], r["settings"]
    lines = [
        "streams broker benchmark (confluent-kafka "
        f"{_client_version()} against `python -m streams broker` in its own process)",
        f"  cpu      {info['cpu']} ({info['cores']} cores)",
        f"  python   {info['python']} on {info['platform']}",
        f"  broker   --flush {s['flush']}; topics of {s['partitions']} partition(s); "
        f"{s['messages']:,} messages of {VALUE_BYTES}-byte values per run",
        "",
        *_produce_lines(r),
        "",
        *_consume_lines(r),
        "",
        *_tcp_and_latency_lines(r),
    ]
    if r["broker_log"]:
        lines += ["", "broker warnings:", *(f"  {line.rstrip()}" for line in r["broker_log"][:10])]
    return "\n".join(lines)


def _produce_lines(r: dict[str, Any]) -> list[str]:
    met, tcp_rate = r["targets_met"], r["tcp"]["msgs_per_s"]
    lines = [
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
    return lines


def _consume_lines(r: dict[str, Any]) -> list[str]:
    met, tcp_rate = r["targets_met"], r["tcp"]["msgs_per_s"]
    c, cp, c2 = r["consume"], r["consume_prefetched"], r["consume_2_processes"]
    return [
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
    ]


def _tcp_and_latency_lines(r: dict[str, Any]) -> list[str]:
    s, tcp, lat, met = r["settings"], r["tcp"], r["latency"], r["targets_met"]
    tcp_rate = tcp["msgs_per_s"]
    return [
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
    write_json(results, args.json)


if __name__ == "__main__":
    main(sys.argv[1:])
