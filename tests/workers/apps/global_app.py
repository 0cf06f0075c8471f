"""A GlobalTable app for the multi-worker tests (run as real worker processes).

An event keyed `set:NAME` with value N sets `settings[NAME] = N` (whichever
worker owns its partition); every other event appends "pid partition value"
to this process's trace file, the value being `settings["x"]` as this worker
reads it locally. Environment: GLOBAL_TRACE (directory for trace files).
"""

import os
from pathlib import Path

import streams

app = streams.App("glob", commit_interval_s=0.1, session_timeout_s=2.0)
events = app.topic("events", key_type=str, value_type=int, partitions=8)
settings = app.GlobalTable("settings", key_type=str, value_type=int, partitions=2)


@app.agent(events)
async def watch(stream):
    pid = os.getpid()
    with open(Path(os.environ["GLOBAL_TRACE"]) / f"{pid}.trace", "a", buffering=1) as trace:
        async for event in stream.events():
            if event.key.startswith("set:"):
                settings[event.key.removeprefix("set:")] = event.value
            else:
                trace.write(f"{pid} {event.partition} {settings.get('x')}\n")
