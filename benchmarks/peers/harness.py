"""One full run: a broker, the input once, every workload of every system, the
latency runs, and the results as one dict (what --json writes)."""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.broker import running_broker
from benchmarks.embedded import machine
from benchmarks.peers import inputs, report, spec, systems
from benchmarks.peers.runner import INPUT, SMALL_INPUT, System, run_latency, run_one


def _say(text: str) -> None:
    print(text, flush=True)


def _input(bootstrap: str, tmp: Path, events: int, small_events: int) -> Path:
    inputs.create_topics(bootstrap, [INPUT, SMALL_INPUT])
    inputs.produce(bootstrap, INPUT, inputs.event_records(events))
    inputs.produce(bootstrap, SMALL_INPUT, inputs.event_records(small_events))
    template = tmp / "log-template"
    inputs.write_log(template, {INPUT: (inputs.event_records(events), {})})
    return template


def _throughput(
    chosen: list[System],
    workloads: tuple[str, ...],
    args: argparse.Namespace,
    bootstrap: str,
    tmp: Path,
    template: Path,
) -> list[dict[str, Any]]:
    runs = []
    for workload in workloads:
        for system in chosen:
            if workload not in system.workloads:
                continue
            events = args.slow_events if system.small_input else args.events
            outcome = run_one(system, workload, events, bootstrap, tmp, template)
            shown = outcome.error or f"{outcome.figures['events_per_s']:,.0f} events/s"
            _say(f"  {workload:9} {system.name:13} {shown}")
            runs.append(outcome.as_dict())
    return runs


def _latency(
    chosen: list[System],
    runs: list[dict[str, Any]],
    args: argparse.Namespace,
    bootstrap: str,
    tmp: Path,
) -> list[dict[str, Any]]:
    stateless = {r["system"]: r for r in runs if r["workload"] == "stateless"}
    results = []
    for system in chosen:
        run = stateless.get(system.name)
        if run is None:
            continue
        if run["error"] or run["events_per_s"] < args.rate * 1.2:
            rate = "FAILED" if run["error"] else f"{run['events_per_s']:,.0f} events/s"
            why = f"its stateless rate ({rate}) cannot sustain {args.rate:,}/s"
            results.append({"system": system.name, "error": "", "skipped": why})
            continue
        outcome = run_latency(system, bootstrap, tmp, args.rate, args.latency_s)
        shown = outcome.error or f"p99 {outcome.figures['p99_ms']:.1f} ms"
        _say(f"  latency   {system.name:13} {shown}")
        results.append(outcome.as_dict())
    return results


def run_all(args: argparse.Namespace) -> dict[str, Any]:
    started = time.time()
    notes: dict[str, str] = {}
    chosen, skipped = systems.build(args.only, args.cache, notes)
    workloads = tuple(w for w in spec.WORKLOADS if w in args.workloads)
    results: dict[str, Any] = {
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)),
        "load_before": os.getloadavg(),
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "peers": notes,
    }
    with running_broker("os") as broker, tempfile.TemporaryDirectory(prefix="peers-") as t:
        tmp = Path(t)
        t0 = time.perf_counter()
        template = _input(broker.bootstrap, tmp, args.events, args.slow_events)
        _say(
            f"input: {args.events:,} events (+{args.slow_events:,} for faust) in "
            f"{time.perf_counter() - t0:.1f} s"
        )
        runs = _throughput(chosen, workloads, args, broker.bootstrap, tmp, template)
        latencies = (
            _latency(chosen, runs, args, broker.bootstrap, tmp) if args.latency_s > 0 else []
        )
    results["load_after"] = os.getloadavg()
    results["elapsed_s"] = time.time() - started
    results["runs"] = runs
    results["latency"] = latencies
    labels = {s: systems.LABELS[s] for s in args.only}
    results["table"] = report.rows(runs, latencies, skipped, labels, workloads)
    return results
