"""The embedded log and a keyed count on it, end to end, in one report.

    python -m benchmarks.embedded [--events N] [--keys K] [--partitions P]
                                  [--profile] [--loop events|items] [--json FILE|-]

1. Log.append of 1000-record batches (100-byte values) beside raw os.write of
   the same bytes, and Log.read + decode (benchmarks.log_bench).
2. A real App on log://<tmpdir> with rocksdb:// stores: N events, keyed by
   ~K str keys, are pre-produced straight into the log; then a Worker runs
   `counts[event.key] += 1` over them. Timed from worker start until every
   event is processed and committed (changelogs flushed, offsets stored);
   the pre-production is not timed. The result is checked: committed offsets
   reach the end of every partition and the table's counts sum to N.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import io
import platform
import pstats
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

import streams
from benchmarks.log_bench import run_log_benchmark
from benchmarks.runs import write_json
from runtime.log import FlushPolicy, Log
from runtime.log.record_columns import RecordColumns, decode_batch_columns
from runtime.log.records import encode_batch, iter_batches
from runtime.partitioner import partition_for_key
from runtime.types import TopicPartition
from streams.gc_tuning import freeze_after_startup
from streams.topic import Topic
from streams.wiring import Wiring
from streams.worker import Worker

APPEND_TARGET_RECORDS_PER_S = 1_000_000
APPEND_TARGET_VS_RAW = 0.5
COUNT_TARGET_EVENTS_PER_S = 150_000
BATCH_RECORDS = 1000
TOPIC = "events"
TIMEOUT_S = 300.0


# --- the machine ----------------------------------------------------------------


def machine() -> dict[str, str]:
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import os

    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(terse=True),
    }


# --- the keyed count ---------------------------------------------------------------


def _keys(count: int) -> list[str]:
    return [f"user-{i:05d}" for i in range(count)]


def produce(log_dir: Path, events: int, keys: list[str], partitions: int) -> None:
    """Write `events` keyed records straight into the log, as a producer would."""
    rng = random.Random(7)
    encoded = [k.encode() for k in keys]
    routes = [partition_for_key(k, partitions) for k in encoded]
    values = [orjson.dumps({"amount": i}) for i in range(100)]
    now_ms = int(time.time() * 1000)
    pending: list[list[tuple[bytes, bytes, int, tuple[()]]]] = [[] for _ in range(partitions)]
    with Log.open(log_dir, flush=FlushPolicy("os")) as log:
        log.create_topic(TOPIC, partitions)
        for i in range(events):
            k = rng.randrange(len(keys))
            rows = pending[routes[k]]
            rows.append((encoded[k], values[i % 100], now_ms, ()))
            if len(rows) == BATCH_RECORDS:
                log.append(TopicPartition(TOPIC, routes[k]), encode_batch(rows))
                rows.clear()
        for p, rows in enumerate(pending):
            if rows:
                log.append(TopicPartition(TOPIC, p), encode_batch(rows))


class _GCTime:
    """Wall time the cyclic garbage collector runs, from gc.callbacks."""

    def __init__(self) -> None:
        self.total_s = 0.0
        self.collections = 0
        self._start = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._start = time.perf_counter()
        else:
            self.total_s += time.perf_counter() - self._start
            self.collections += 1

    def __enter__(self) -> _GCTime:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self)


class _Timed:
    """Wraps an async method, adding its wall time to a total."""

    def __init__(self) -> None:
        self.total_s = 0.0
        self.calls = 0

    def wrap(self, fn: Any) -> Any:
        async def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return await fn(*args, **kwargs)
            finally:
                self.total_s += time.perf_counter() - start
                self.calls += 1

        return timed


async def _run_count(data: Path, events: int, partitions: int, loop: str) -> dict[str, float]:
    app = streams.App(
        "bench",
        broker=f"log://{data / 'log'}",
        data_dir=str(data),
        store="rocksdb://",
        topic_partitions=partitions,
    )
    source = app.topic(TOPIC, key_type=str, value_type=None, partitions=partitions)
    counts = app.Table("counts", default=int, partitions=partitions)
    processed = 0
    done = asyncio.Event()

    @app.agent(source)
    async def count(stream: streams.Stream) -> None:
        nonlocal processed
        if loop == "items":  # no Event per record
            async for key, _ in stream.items():
                counts[key] += 1
                processed += 1
                if processed == events:
                    done.set()
            return
        async for event in stream.events():
            counts[event.key] += 1
            processed += 1
            if processed == events:
                done.set()

    worker = Worker(app)
    flush_time = _Timed()
    counts.flush = flush_time.wrap(counts.flush)  # type: ignore[method-assign]

    gc_time = _GCTime()
    cpu_start = time.process_time()
    start = time.perf_counter()
    gc_time.__enter__()
    await worker.start()
    freeze_after_startup()  # as `streams worker` does
    try:
        started = time.perf_counter()
        async with asyncio.timeout(TIMEOUT_S):
            await done.wait()
        processed_at = time.perf_counter()
        await worker.commit()
        end = time.perf_counter()
        cpu_s = time.process_time() - cpu_start
        gc_time.__exit__()
        committed = await worker.transport.committed(app.id, source.tps())
        for tp in source.tps():
            _, log_end = await worker.transport.offsets(tp)
            if committed.get(tp) != log_end:
                raise RuntimeError(f"{tp}: committed {committed.get(tp)}, log ends at {log_end}")
        table = counts.as_dict()
        if sum(table.values()) != events:
            raise RuntimeError(f"table counts sum to {sum(table.values())}, expected {events}")
        keys_counted = len(table)
    finally:
        await worker.stop()
    elapsed = end - start
    return {
        "events": float(events),
        "keys": float(keys_counted),
        "elapsed_s": elapsed,
        "events_per_s": events / elapsed,
        "cpu_s": cpu_s,
        "events_per_cpu_s": events / cpu_s,
        "startup_s": started - start,
        "processing_s": processed_at - started,
        "final_commit_s": end - processed_at,
        "table_flush_s": flush_time.total_s,
        "table_flushes": float(flush_time.calls),
        "gc_s": gc_time.total_s,
        "gc_collections": float(gc_time.collections),
    }


def run_count(
    events: int, keys: int, partitions: int, profile: bool, loop: str = "events"
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="embedded-bench-") as tmp:
        data = Path(tmp)
        t0 = time.perf_counter()
        produce(data / "log", events, _keys(keys), partitions)
        produce_s = time.perf_counter() - t0
        read_s, to_events_s = _decode_only(data / "log", partitions)
        profiler = cProfile.Profile() if profile else None
        if profiler is not None:
            profiler.enable()
        result: dict[str, Any] = asyncio.run(_run_count(data, events, partitions, loop))
        if profiler is not None:
            profiler.disable()
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(25)
            result["profile"] = out.getvalue()
    result["produce_s"] = produce_s
    result["read_decode_s"] = read_s
    result["to_events_s"] = to_events_s
    return result


def _decode_only(log_dir: Path, partitions: int) -> tuple[float, float]:
    """The worker's decode path without the worker, over the whole topic:
    seconds for Log.read + decode into columns, and for columns -> events."""
    topic = Topic(Wiring("bench"), TOPIC, key_type=str, partitions=partitions)
    read_s = events_s = 0.0
    with Log.open(log_dir) as log:
        for p in range(partitions):
            tp = TopicPartition(TOPIC, p)
            position, end = log.offsets(tp)
            while position < end:
                t0 = time.perf_counter()
                data = log.read(tp, position, 1 << 20)
                batches = list(iter_batches(data))
                chunks = []
                for pos, header in batches:  # one batch a chunk, as the worker decodes
                    decode_batch_columns(data, pos, header, columns := RecordColumns())
                    chunks.append(columns)
                t1 = time.perf_counter()
                for columns in chunks:
                    topic.decode_batch(columns, p)
                events_s += time.perf_counter() - t1
                read_s += t1 - t0
                position = batches[-1][1].next_offset
    return read_s, events_s


# --- report ----------------------------------------------------------------------


def _verdict(ok: bool) -> str:
    return "ok" if ok else "BELOW TARGET"


def report(info: dict[str, str], log: dict[str, float], count: dict[str, Any]) -> str:
    lines = [
        "streams embedded benchmark",
        f"  cpu      {info['cpu']} ({info['cores']} cores)",
        f"  python   {info['python']} on {info['platform']}",
        "",
        f"log append ({int(log['records']):,} records, 100-byte values, "
        f"batches of {BATCH_RECORDS:,} = {int(log['batch_bytes']):,} bytes)",
    ]
    append_ok = (
        log["append_records_per_s"] >= APPEND_TARGET_RECORDS_PER_S
        and log["append_vs_raw"] >= APPEND_TARGET_VS_RAW
    )
    lines += [
        f"  raw os.write     {log['raw_write_records_per_s']:>14,.0f} records/s "
        f"{log['raw_write_bytes_per_s'] / 1e6:>9,.0f} MB/s",
        f"  Log.append       {log['append_records_per_s']:>14,.0f} records/s "
        f"{log['append_bytes_per_s'] / 1e6:>9,.0f} MB/s",
        f"  append / raw     {log['append_vs_raw']:>14.2f}x   "
        f"(target >= {APPEND_TARGET_RECORDS_PER_S:,} records/s and "
        f">= {APPEND_TARGET_VS_RAW:.0%} of raw: {_verdict(append_ok)})",
        "",
        "log read",
        f"  Log.read+decode  {log['read_records_per_s']:>14,.0f} records/s",
        "",
    ]
    ev = count["events"]
    rest_s = count["processing_s"] - count["read_decode_s"] - count["to_events_s"]
    count_ok = count["events_per_s"] >= COUNT_TARGET_EVENTS_PER_S
    lines += [
        f"keyed count (agent: counts[event.key] += 1; rocksdb table with changelog; "
        f"{int(ev):,} events, {int(count['keys']):,} keys, {count['partitions']} partitions)",
        f"  events/s         {count['events_per_s']:>14,.0f}   "
        f"(target >= {COUNT_TARGET_EVENTS_PER_S:,}: {_verdict(count_ok)}; "
        f"{count['events_per_s'] / COUNT_TARGET_EVENTS_PER_S:.2f}x of target)",
        f"  per event        {1e6 / count['events_per_s']:>14.2f} us",
        f"  per CPU second   {count['events_per_cpu_s']:>14,.0f} events   "
        f"({count['cpu_s']:.3f} CPU s: steadier than events/s on a busy machine)",
        f"  total            {count['elapsed_s']:>14.3f} s   (worker start .. last commit)",
        f"    startup        {count['startup_s']:>14.3f} s   (open log, stores, recovery)",
        f"    processing     {count['processing_s']:>14.3f} s   (until the last event is counted)",
        f"    final commit   {count['final_commit_s']:>14.3f} s",
        f"    table flushes  {count['table_flush_s']:>14.3f} s   "
        f"({int(count['table_flushes'])} flushes: changelog append + rocksdb write)",
        f"    gc             {count['gc_s']:>14.3f} s   "
        f"({int(count['gc_collections']):,} collections of the cyclic garbage collector)",
        "  the same work alone (no worker), over the same records:",
        f"    read+decode    {count['read_decode_s']:>14.3f} s   "
        f"({ev / count['read_decode_s']:,.0f} records/s: Log.read, decode_batch_columns)",
        f"    to events      {count['to_events_s']:>14.3f} s   "
        f"({ev / count['to_events_s']:,.0f} events/s: Topic.decode, key str + value json)",
        f"    the rest       {rest_s:>14.3f} s   (of processing: agent loop, table updates, "
        "channels, gc)",
        f"  (pre-production, not timed: {count['produce_s']:.2f} s)",
    ]
    if "profile" in count:
        lines += ["", "profile of the keyed count (cProfile, by own time):", count["profile"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.embedded")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--keys", type=int, default=10_000)
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--log-records", type=int, default=1_000_000)
    parser.add_argument("--profile", action="store_true", help="cProfile the keyed count")
    parser.add_argument(
        "--loop",
        choices=["events", "items"],
        default="events",
        help="the agent's loop: stream.events() (event.key) or stream.items() (no Event)",
    )
    parser.add_argument("--json", metavar="FILE", help="write results as JSON ('-': stdout)")
    args = parser.parse_args(argv)

    info = machine()
    log = run_log_benchmark(args.log_records)
    count = run_count(args.events, args.keys, args.partitions, args.profile, args.loop)
    count["partitions"] = args.partitions
    print(report(info, log, count), flush=True)
    results = {
        "machine": info,
        "log": log,
        "keyed_count": {k: v for k, v in count.items() if k != "profile"},
        "targets_met": {
            "append": log["append_records_per_s"] >= APPEND_TARGET_RECORDS_PER_S
            and log["append_vs_raw"] >= APPEND_TARGET_VS_RAW,
            "keyed_count": count["events_per_s"] >= COUNT_TARGET_EVENTS_PER_S,
        },
    }
    write_json(results, args.json)


if __name__ == "__main__":
    main(sys.argv[1:])
