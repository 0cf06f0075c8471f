"""The four workloads on streams, run as a worker process by the harness:

    python -m streams -A benchmarks.peers.streams_app worker --broker URL --data DIR

BENCH_WORKLOAD picks the agent (stateless, count, window, join); BENCH_APP_ID,
BENCH_INPUT, BENCH_OUTPUT name the app and its topics; BENCH_EVENTS and
BENCH_RESULT are the probe's (benchmarks.peers.probe). Tables are RocksDB-backed
with their changelogs, as a user would run them.
"""

from __future__ import annotations

import os
from typing import Any

import streams
from benchmarks.peers.probe import from_env, window_key

WORKLOAD = os.environ.get("BENCH_WORKLOAD", "count")
PARTITIONS = int(os.environ.get("BENCH_PARTITIONS", "8"))
WINDOW_S = 10
EXPIRES_S = 3600  # keeps every window of a run for the check


class Event(streams.Record):
    user: str
    amount: int
    ts: float
    sent_ns: int


_commit_interval = os.environ.get("BENCH_COMMIT_INTERVAL_S")  # default: the App's
app = streams.App(
    os.environ.get("BENCH_APP_ID", "peers-streams"),
    store="rocksdb://",
    commit_interval_s=float(_commit_interval) if _commit_interval else None,
    topic_partitions=PARTITIONS,
)
source = app.topic(
    os.environ.get("BENCH_INPUT", "events"), key_type=str, value_type=Event, partitions=PARTITIONS
)
output = app.topic(os.environ.get("BENCH_OUTPUT", "output"), key_type=str, partitions=PARTITIONS)
probe = from_env()


async def stateless(stream: streams.Stream) -> None:
    tick, send = probe.tick, output.send_soon
    async for event in stream.events():
        value = event.value
        if value.amount % 2 == 0:
            send(key=event.key, value=value)
        if tick():
            probe.done()


async def count(stream: streams.Stream) -> None:
    tick = probe.tick
    async for event in stream.events():
        counts[event.key] += 1
        if tick():
            probe.done(counts=counts.as_dict())


async def window(stream: streams.Stream) -> None:
    tick = probe.tick
    async for event in stream.events():
        per_window[event.key] += 1
        if tick():
            result = {window_key(k, start): n for (k, start), n in per_window.items()}
            probe.done(windows=result)


async def join(stream: streams.Stream) -> None:
    tick, send = probe.tick, output.send_soon
    async for event, row in stream.join(users).events():
        value = event.value
        send(key=event.key, value={"user": value.user, "amount": value.amount, **row})
        if tick():
            probe.done()


AGENTS: dict[str, Any] = {
    "stateless": stateless,
    "count": count,
    "window": window,
    "join": join,
}
if WORKLOAD == "count":
    counts = app.Table("counts", default=int, key_type=str, partitions=PARTITIONS)
elif WORKLOAD == "window":
    per_window = (
        app.Table("windows", default=int, key_type=str, partitions=PARTITIONS)
        .tumbling(WINDOW_S, expires=EXPIRES_S)
        .relative_to_field(Event.ts)
    )
elif WORKLOAD == "join":
    # Filled from its changelog, which the harness writes before the worker starts.
    users = app.Table("users", key_type=str, partitions=PARTITIONS)
app.agent(source, name=WORKLOAD)(AGENTS[WORKLOAD])
