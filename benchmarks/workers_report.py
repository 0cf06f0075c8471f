"""The worker benchmarks' report: the figures of benchmarks.workers as text.

A figure the run was too short to measure (a steady rate of 0.0, a ratio of
None) is shown as such, never divided by.
"""

from __future__ import annotations

from typing import Any

from benchmarks.broker import LATENCY_P99_TARGET_MS
from benchmarks.count_topics import POLL_INTERVAL_S
from benchmarks.embedded import COUNT_TARGET_EVENTS_PER_S
from benchmarks.worker_phases import COMMIT_INTERVAL_S, LATENCY_WARMUP_S

TOO_SHORT = "n/a (the run was too short to measure it)"


def _verdict(ok: bool) -> str:
    return "ok" if ok else "BELOW TARGET"


def _rate(events_per_s: float) -> str:
    return f"{events_per_s:,.0f} events/s" if events_per_s > 0 else TOO_SHORT


def _times(ratio: float | None) -> str:
    return TOO_SHORT if ratio is None else f"{ratio:.2f}x"


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
        f"after {c['first_commit_s']:.3f} s; steady rate {_rate(c['steady_events_per_s'])}",
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
        f"  2 workers / 1 worker {_times(r['ratio']):>13}   (steady rates: "
        f"{_times(r['steady_ratio'])}; the target is the embedded keyed count's)",
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
