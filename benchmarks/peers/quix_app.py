"""The workloads on quixstreams (its own venv; see benchmarks.peers.envs).

    <quix venv>/bin/python benchmarks/peers/quix_app.py

One application process; state in its RocksDB stores with changelog topics
(quixstreams' defaults). Event time for the window comes from the payload
through the topic's timestamp_extractor. quixstreams has no stream-table join
over a changelogged table (join_asof joins two streams by time), so it runs
stateless, count, window. Settings come from BENCH_* (benchmarks.peers.runner).
"""

from __future__ import annotations

import os
from typing import Any

from probe import from_env, window_key
from quixstreams import Application

WORKLOAD = os.environ.get("BENCH_WORKLOAD", "count")
WINDOW_MS = 10_000

app = Application(
    broker_address=os.environ.get("BENCH_BOOTSTRAP", "127.0.0.1:9092"),
    consumer_group=os.environ.get("BENCH_APP_ID", "peers-quix"),
    auto_offset_reset="earliest",
    state_dir=os.environ.get("BENCH_STATE_DIR", "quix-state"),
    loglevel="WARNING",
)


def event_time(value: Any, headers: Any, timestamp: float, timestamp_type: Any) -> int:
    return round(value["ts"] * 1000)


source = app.topic(
    os.environ.get("BENCH_INPUT", "events"),
    value_deserializer="json",
    key_deserializer="str",
    timestamp_extractor=event_time,
)
output = app.topic(os.environ.get("BENCH_OUTPUT", "output"), key_serializer="str")
probe = from_env()
seen: dict[str, int] = {}  # the state's values as they are written, for the check


def tick(*_: Any) -> None:
    if probe.tick():
        if WORKLOAD == "count":
            probe.done(counts=seen)
        elif WORKLOAD == "window":
            probe.done(windows=seen)
        else:
            probe.done()


def count(value: Any, key: str, timestamp: int, headers: Any, state: Any) -> None:
    n = state.get("count", 0) + 1
    state.set("count", n)
    seen[key] = n


def note_window(value: Any, key: str, timestamp: int, headers: Any) -> None:
    seen[window_key(key, value["start"] / 1000)] = value["value"]


sdf = app.dataframe(source)
if WORKLOAD == "stateless":
    sdf = sdf.update(tick)
    sdf = sdf.filter(lambda value: value["amount"] % 2 == 0)
    sdf.to_topic(output)
elif WORKLOAD == "count":
    sdf = sdf.update(count, stateful=True, metadata=True)
    sdf = sdf.update(tick)
elif WORKLOAD == "window":
    sdf = sdf.tumbling_window(duration_ms=WINDOW_MS).count().current()
    sdf = sdf.update(note_window, metadata=True)
    sdf = sdf.update(tick)

if __name__ == "__main__":
    app.run()
