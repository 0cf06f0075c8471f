"""The workloads on faust-streaming (its own venv; see benchmarks.peers.envs).

    <faust venv>/bin/python benchmarks/peers/faust_app.py

One worker; tables in its RocksDB store (rocksdict) with their changelogs.
faust has no stream-table join operator, so it runs stateless, count, window.
Settings come from BENCH_* (benchmarks.peers.runner).
"""

from __future__ import annotations

import os
import sys

import faust
from probe import from_env, window_key

WORKLOAD = os.environ.get("BENCH_WORKLOAD", "count")
PARTITIONS = int(os.environ.get("BENCH_PARTITIONS", "8"))
WINDOW_S = 10

app = faust.App(
    os.environ.get("BENCH_APP_ID", "peers-faust"),
    broker=f"kafka://{os.environ.get('BENCH_BOOTSTRAP', '127.0.0.1:9092')}",
    store="rocksdb://",
    datadir=os.environ.get("BENCH_STATE_DIR", "faust-data"),
    topic_partitions=PARTITIONS,
    web_enabled=False,
    consumer_auto_offset_reset="earliest",
)


class Event(faust.Record, serializer="json"):
    user: str
    amount: int
    ts: float
    sent_ns: int


source = app.topic(
    os.environ.get("BENCH_INPUT", "events"), key_type=str, value_type=Event, key_serializer="raw"
)
output = app.topic(os.environ.get("BENCH_OUTPUT", "output"), key_type=str, key_serializer="raw")
probe = from_env()

if WORKLOAD == "stateless":

    @app.agent(source)
    async def stateless(stream):  # type: ignore[no-untyped-def]
        async for event in stream.events():
            value = event.value
            if value.amount % 2 == 0:
                await output.send(key=event.key, value=value)
            if probe.tick():
                probe.done()

elif WORKLOAD == "count":
    counts = app.Table("counts", default=int, partitions=PARTITIONS)

    @app.agent(source)
    async def count(stream):  # type: ignore[no-untyped-def]
        async for event in stream.events():
            counts[event.key] += 1
            if probe.tick():
                probe.done(counts={str(k): v for k, v in counts.items()})

elif WORKLOAD == "window":
    per_window = (
        app.Table("windows", default=int, partitions=PARTITIONS)
        .tumbling(WINDOW_S, expires=3600)
        .relative_to_field(Event.ts)
    )
    seen: dict[str, int] = {}  # the windowed table's values as they are written

    @app.agent(source)
    async def window(stream):  # type: ignore[no-untyped-def]
        async for event in stream.events():
            per_window[event.key] += 1
            ts = event.value.ts
            seen[window_key(event.key, ts - ts % WINDOW_S)] = per_window[event.key].value()
            if probe.tick():
                probe.done(windows=seen)


if __name__ == "__main__":
    sys.argv = [sys.argv[0], "worker", "-l", "warn", "--without-web"]
    app.main()
