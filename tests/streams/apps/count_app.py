"""A keyed count app for the worker reliability tests (run as a real process)."""

import asyncio
import os

import streams

app = streams.App(
    "counter",
    data_dir=os.environ.get("COUNT_APP_DATA", "./streams-data"),
    commit_interval_s=0.2,
)
events = app.topic("events", key_type=str, value_type=int, partitions=8)
counts = app.Table("counts", default=int, partitions=8)
processed = 0


@app.agent(events)
async def count(stream):
    global processed
    async for event in stream.events():
        counts[event.key] += 1
        processed += 1
        if processed % 50 == 0:
            await asyncio.sleep(0.002)  # slow enough to be killed mid-stream


@app.timer(0.05)
async def report():
    # Events not yet processed, from the worker's own bookkeeping.
    transport, conductor = app.wiring.transport, app.wiring.conductor
    pending = 0
    for tp, offset in conductor.commit_offsets().items():
        _, end = await transport.offsets(tp)
        pending += end - offset
    committed = sum((await transport.committed(app.id, [*events.tps()])).values())
    print(f"processed {processed} pending {pending} committed {committed}", flush=True)
