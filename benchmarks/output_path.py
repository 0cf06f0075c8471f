"""The per-record output path, in one process on memory://: what a forwarded
record and a stream-table join cost, in CPU seconds per million events.

    python -m benchmarks.output_path [--events N] [--keys K] [--partitions P]
                                     [--workloads stateless,join] [--profile]

stateless: parse a Record, keep half, `send_soon` it to an output topic (the
peers benchmark's workload 1). join: look each event's key up in a Table and
`send_soon` the enriched value (workload 4). The input is buffered before the
clock starts; the figure is the worker's CPU time until the agent has read N
events, and the output topic is checked to hold what the agent sent.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import time
from typing import Any

import streams
from streams.gc_tuning import freeze_after_startup
from streams.worker import Worker

TIMEOUT_S = 300.0


class Event(streams.Record):
    user: str
    amount: int


async def _run(workload: str, n: int, keys: int, partitions: int) -> tuple[float, float]:
    app = streams.App(f"output-path-{workload}", broker="memory://", commit_interval_s=1.0)
    source = app.topic("events", key_type=str, value_type=Event, partitions=partitions)
    output = app.topic("output", key_type=str, partitions=partitions)
    fills = app.topic("users", key_type=str, partitions=partitions)
    users = app.Table("users-table", key_type=str, partitions=partitions)
    seen, sent, done = [0], [0], asyncio.Event()

    if workload == "join":

        @app.agent(fills)
        async def fill(stream: Any) -> None:
            async for key, value in stream.items():
                users[key] = value

        @app.agent(source)
        async def join(stream: Any) -> None:
            send = output.send_soon
            async for event, row in stream.join(users).events():
                value = event.value
                send(key=event.key, value={"user": value.user, "amount": value.amount, **row})
                sent[0] += 1
                seen[0] += 1
                if seen[0] == n:
                    done.set()
    else:

        @app.agent(source)
        async def stateless(stream: Any) -> None:
            send = output.send_soon
            async for event in stream.events():
                value = event.value
                if value.amount % 2 == 0:
                    send(key=event.key, value=value)
                    sent[0] += 1
                seen[0] += 1
                if seen[0] == n:
                    done.set()

    async with Worker(app) as worker:
        freeze_after_startup()  # as `streams worker` does
        if workload == "join":
            for i in range(keys):
                fills.send_soon(f"u{i}", {"name": f"n{i}", "tier": i % 3})
            async with asyncio.timeout(TIMEOUT_S):
                while len(users) < keys:  # every key in the table before the first event
                    await asyncio.sleep(0.01)
        for i in range(n):
            source.send_soon(f"u{i % keys}", Event(user=f"u{i % keys}", amount=i))
        wall, cpu = time.perf_counter(), time.process_time()
        await asyncio.wait_for(done.wait(), TIMEOUT_S)
        assert worker.producer is not None
        await worker.producer.flush()
        elapsed = time.perf_counter() - wall, time.process_time() - cpu
        stored = 0
        for tp in output.tps():
            start, end = await worker.transport.offsets(tp)
            stored += end - start
        if stored != sent[0]:
            raise AssertionError(f"the output holds {stored} records, the agent sent {sent[0]}")
        return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--keys", type=int, default=10_000)
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--workloads", default="stateless,join")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of each run")
    args = parser.parse_args()
    for workload in args.workloads.split(","):
        profile = cProfile.Profile() if args.profile else None
        if profile is not None:
            profile.enable()
        wall, cpu = asyncio.run(_run(workload, args.events, args.keys, args.partitions))
        if profile is not None:
            profile.disable()
            pstats.Stats(profile).sort_stats("tottime").print_stats(25)
        load = os.getloadavg()[0]
        print(
            f"{workload:10} {args.events:,} events  wall {wall:6.2f}s  cpu {cpu:6.2f}s  "
            f"{cpu / args.events * 1e6:6.2f} CPU s per million events  (load average {load:.2f})"
        )


if __name__ == "__main__":
    main()
