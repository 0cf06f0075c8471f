"""A keyed count app for the multi-worker tests (run as real worker processes).

Every processed event appends "pid partition offset monotonic_ns" to this
process's trace file (line-buffered, so a SIGKILL loses at most the line being
written): the tests rebuild from the traces who processed which partition when.

Environment: TALLY_TRACE (directory for trace files; none: no trace),
TALLY_STANDBY (num_standby_replicas), TALLY_SLEEP_S (a pause after each
event: a slow agent, so that a backlog builds up), TALLY_GUARANTEE (the
processing_guarantee, default at_least_once), TALLY_OUTPUT (if set, each event's
running count is also sent, keyed by the event's key, to the topic `tally-out`).
The same module runs on log:// and kafka:// (`--broker`); session_timeout_s and
standbys matter on kafka:// only.
"""

import asyncio
import os
import time
from pathlib import Path

import streams

app = streams.App(
    "tally",
    commit_interval_s=0.2,
    session_timeout_s=2.0,
    num_standby_replicas=int(os.environ.get("TALLY_STANDBY", "0")),
    processing_guarantee=os.environ.get("TALLY_GUARANTEE", "at_least_once"),
)
events = app.topic("events", key_type=str, value_type=int, partitions=8)
counts = app.Table("counts", default=int, key_type=str, partitions=8)
output = app.topic("tally-out", key_type=str, value_type=int, partitions=8)
OUTPUT = bool(os.environ.get("TALLY_OUTPUT"))

SLEEP_S = float(os.environ.get("TALLY_SLEEP_S", "0"))
TRACE_DIR = os.environ.get("TALLY_TRACE")


@app.agent(events)
async def tally(stream):
    pid = os.getpid()
    path = Path(TRACE_DIR) / f"{pid}.trace" if TRACE_DIR else os.devnull
    with open(path, "a", buffering=1) as trace:
        async for event in stream.events():
            counts[event.key] += 1
            if OUTPUT:
                await output.send(key=event.key, value=counts[event.key])
            trace.write(f"{pid} {event.partition} {event.offset} {time.monotonic_ns()}\n")
            if SLEEP_S:
                await asyncio.sleep(SLEEP_S)
