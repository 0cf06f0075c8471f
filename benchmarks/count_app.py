"""The keyed count that benchmarks.workers runs as real worker processes.

    python -m streams -A benchmarks.count_app worker --broker kafka://HOST:PORT --data DIR

An agent does `counts[event.key] += 1` into a RocksDB-backed table with its
changelog. Event keys are str, values are ints (JSON).

Environment:
  BENCH_APP_ID             the app id, and so the consumer group (default bench-count)
  BENCH_TOPIC              the source topic (default events)
  BENCH_PARTITIONS         its partitions, and the table's (default 8)
  BENCH_COMMIT_INTERVAL_S  the worker's commit interval (default 0.2)
  BENCH_GUARANTEE          the processing_guarantee (default at_least_once)
  BENCH_OUTPUT_TOPIC       if set, each event's value is also sent on, keyed by the
                           event's key, to this topic (for a reader of the results)
  BENCH_LATENCY_FILE       if set, each event's value is its send time (time.time_ns()
                           at the producer); the agent keeps (value, time.time_ns()) as
                           it counts the event, and at exit writes the pairs to this
                           file as native int64s (array('q').tofile). At most
                           LATENCY_SAMPLES_MAX events are kept.
"""

from __future__ import annotations

import atexit
import os
import time
from array import array

import streams

LATENCY_SAMPLES_MAX = 2_000_000

app = streams.App(
    os.environ.get("BENCH_APP_ID", "bench-count"),
    store="rocksdb://",
    commit_interval_s=float(os.environ.get("BENCH_COMMIT_INTERVAL_S", "0.2")),
    processing_guarantee=os.environ.get("BENCH_GUARANTEE", "at_least_once"),
)
_partitions = int(os.environ.get("BENCH_PARTITIONS", "8"))
events = app.topic(
    os.environ.get("BENCH_TOPIC", "events"), key_type=str, value_type=int, partitions=_partitions
)
counts = app.Table("counts", default=int, key_type=str, partitions=_partitions)
_output_topic = os.environ.get("BENCH_OUTPUT_TOPIC")
output = (
    app.topic(_output_topic, key_type=str, value_type=int, partitions=_partitions)
    if _output_topic
    else None
)

_latency_file = os.environ.get("BENCH_LATENCY_FILE")
stamps_ns = array("q")  # send_ns, processed_ns, send_ns, processed_ns, ...


def _write_stamps() -> None:
    if _latency_file:
        with open(_latency_file, "wb") as f:
            stamps_ns.tofile(f)


atexit.register(_write_stamps)


@app.agent(events)
async def count(stream: streams.Stream) -> None:
    if _latency_file is None:
        async for event in stream.events():
            counts[event.key] += 1
        return
    keep = stamps_ns.extend
    async for event in stream.events():
        counts[event.key] += 1
        if len(stamps_ns) < 2 * LATENCY_SAMPLES_MAX:
            keep((event.value, time.time_ns()))
        if output is not None:
            output.send_soon(key=event.key, value=event.value)
