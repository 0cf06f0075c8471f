"""Joins against a plain agent, on memory://, in one process.

    python -m benchmarks.joins [--events N] [--keys K] [--partitions P]

1. A plain agent reading 2N events (the baseline).
2. A windowed stream-stream inner join: N views and N clicks, view i and click i
   share a key and a timestamp, so there are exactly N pairs; all the views are
   sent before the clicks, so the buffer holds a side that runs ahead.
3. A table-table outer join: 2N writes alternating between the two sides.

Each is timed from the first send until its last result; wall and CPU seconds
are printed (CPU is the fairer figure on a shared machine).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Callable

import streams
from streams.worker import Worker

TIMEOUT_S = 300.0


async def _timed(
    app: streams.App,
    send: Callable[[], None],
    done: asyncio.Event,
    check: Callable[[], None] = lambda: None,
) -> tuple[float, float]:
    async with Worker(app):
        wall, cpu = time.perf_counter(), time.process_time()
        send()
        await asyncio.wait_for(done.wait(), TIMEOUT_S)
        elapsed = time.perf_counter() - wall, time.process_time() - cpu
        check()  # while the worker still holds the tables
        return elapsed


async def plain(n: int, keys: int, partitions: int) -> tuple[float, float]:
    app = streams.App("bench-plain", broker="memory://", commit_interval_s=1.0)
    events = app.topic("events", key_type=str, partitions=partitions)
    done, seen = asyncio.Event(), [0]

    @app.agent(events)
    async def read(stream):
        async for _ in stream:
            seen[0] += 1
            if seen[0] == 2 * n:
                done.set()

    def send() -> None:
        for i in range(2 * n):
            events.send_soon(f"k{i % keys}", "v", timestamp=float(i))

    return await _timed(app, send, done)


async def stream_stream(n: int, keys: int, partitions: int) -> tuple[float, float]:
    app = streams.App("bench-ssj", broker="memory://", commit_interval_s=1.0)
    views = app.topic("views", key_type=str, partitions=partitions)
    clicks = app.topic("clicks", key_type=str, partitions=partitions)
    windows = app.JoinWindows("views-clicks", within=0.5, partitions=partitions)
    done, pairs = asyncio.Event(), [0]

    @app.agent(views)
    async def attribute(stream):
        async for _ in stream.join(clicks, windows=windows):
            pairs[0] += 1
            if pairs[0] == n:
                done.set()

    def send() -> None:
        for topic in (views, clicks):
            for i in range(n):
                topic.send_soon(f"k{i % keys}", "v", timestamp=float(i))

    def check() -> None:
        if windows.late_dropped:
            raise AssertionError(f"{windows.late_dropped} events dropped as late")

    return await _timed(app, send, done, check)


async def table_table(n: int, keys: int, partitions: int) -> tuple[float, float]:
    app = streams.App("bench-ttj", broker="memory://", commit_interval_s=1.0)
    writes = app.topic("writes", key_type=str, partitions=partitions)
    left = app.Table("left", key_type=str, partitions=partitions)
    right = app.Table("right", key_type=str, partitions=partitions)
    joined = left.join(right, how="outer")
    done, seen = asyncio.Event(), [0]

    @app.agent(writes)
    async def write(stream):
        async for key, value in stream.items():
            (left if value % 2 else right)[key] = value
            seen[0] += 1
            if seen[0] == 2 * n:
                done.set()

    def send() -> None:
        for i in range(2 * n):
            writes.send_soon(f"k{i % keys}", i, timestamp=float(i))

    def check() -> None:
        if len(joined) != min(keys, 2 * n):
            raise AssertionError(f"the joined table has {len(joined)} rows")

    return await _timed(app, send, done, check)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000, help="N (per side)")
    parser.add_argument("--keys", type=int, default=1000)
    parser.add_argument("--partitions", type=int, default=4)
    args = parser.parse_args()
    n, keys, partitions = args.events, args.keys, args.partitions
    for name, run in [
        ("plain agent", plain),
        ("stream-stream inner join", stream_stream),
        ("table-table outer join", table_table),
    ]:
        wall, cpu = asyncio.run(run(n, keys, partitions))
        print(
            f"{name:26} {2 * n} events  wall {wall:6.2f}s  cpu {cpu:6.2f}s  "
            f"{2 * n / cpu:10,.0f} events per cpu-second"
        )


if __name__ == "__main__":
    main()
