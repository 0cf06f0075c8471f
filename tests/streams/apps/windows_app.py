"""Every window kind (tumbling with grace, hopping, session, sliding) counting the
same clicks, each emitting its final results to one topic; run as a real worker
process by tests/streams/test_window_recovery_process.py, and through the test
driver by tests/streams/test_window_recovery.py (`define`).

Environment: WINS_TRACE (a file: each processed event appends "pid partition
offset ns", line-buffered, so a SIGKILL loses at most the line being written),
WINS_SLEEP_S (a pause after each event, so that a kill lands mid-run).
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from typing import Any

import streams

KINDS = ("tumbling", "hopping", "session", "sliding")
KEYS = "adf"  # on partitions 0, 1, 1 of two
FINALS = "window-finals"


def define(app: streams.App) -> tuple[streams.Topic, streams.Topic]:
    """The clicks topic, the finals topic; the tables are app.tables[kind]."""
    clicks = app.topic("clicks", key_type=str, value_type=int, partitions=2)
    finals = app.topic(FINALS, key_type=str, partitions=1)
    tables = {
        "tumbling": app.Table("tumbling", default=int, partitions=2).tumbling(
            10, grace=5, emit="final", on_final=finals
        ),
        "hopping": app.Table("hopping", default=int, partitions=2).hopping(
            10, 5, grace=3, emit="final", on_final=finals
        ),
        "session": app.Table("session", default=int, partitions=2).session(
            4, grace=2, emit="final", on_final=finals
        ),
        # kept long enough to compare stores (else a commit deletes what is 10 s past)
        "sliding": app.Table("sliding", default=int, partitions=2).sliding(
            6, grace=4, expires=1000, emit="final", on_final=finals
        ),
    }
    trace_path = os.environ.get("WINS_TRACE")
    sleep_s = float(os.environ.get("WINS_SLEEP_S", "0"))

    @app.agent(clicks)
    async def count(stream: Any) -> None:
        with open(trace_path or os.devnull, "a", buffering=1) as trace:
            async for event in stream.events():
                for table in tables.values():
                    table[event.key] += event.value
                trace.write(
                    f"{os.getpid()} {event.partition} {event.offset} {time.monotonic_ns()}\n"
                )
                if sleep_s:
                    await asyncio.sleep(sleep_s)

    return clicks, finals


def events(seed: int, count: int = 40, base: float = 0.0) -> list[tuple[float, str, int]]:
    """(timestamp, key, n): mostly in order, some out of order within grace, some
    late; timestamps are multiples of 0.5 s after `base` (exact as floats)."""
    rng = random.Random(seed)
    out = []
    for i in range(count):
        t = i * 1.5 + rng.choice([0.0, 0.0, 0.0, -rng.randrange(1, 10)])
        out.append((base + max(t, 0.0), rng.choice(KEYS), rng.randrange(1, 4)))
    return out


# kafka://: a restarted worker takes over from the killed one after a short session
app = streams.App(
    "wins", commit_interval_s=0.2, session_timeout_s=2.0, processing_guarantee="exactly_once"
)
define(app)
