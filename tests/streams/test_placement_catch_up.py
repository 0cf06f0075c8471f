"""A partition a worker kept across a rebalance, written meanwhile by another owner."""

from __future__ import annotations

import asyncio

import pytest
from waiting import wait_until_async

from runtime.assignor import WorkerState
from runtime.log.records import encode_batch
from runtime.types import TopicPartition
from streams.worker import Worker


@pytest.mark.parametrize("broker_url", ["memory"], indirect=True)
def test_windows_another_owner_wrote_meanwhile_are_known_after_the_catch_up(make_app):
    """The store replays the other owner's window; the windowed table must know it
    too, or that window is never closed and its final result never emitted."""
    app = make_app("catchup")
    topic = app.topic("cu-in", key_type=str, partitions=1)
    finals: list[tuple[str, float, int]] = []
    counts = app.Table("counts", key_type=str, value_type=int, default=int, partitions=1)
    windows = counts.tumbling(
        10,
        grace=0,
        emit="final",
        on_final=lambda r: finals.append((r.key, r.start, r.value)),
    )

    @app.agent(topic)
    async def count(stream):
        async for key in stream:
            windows[key] += 1

    async def main() -> None:
        async with Worker(app) as worker:
            part = counts.partitions[0]
            tp = TopicPartition(counts.changelog.name, 0)
            # The other owner counted "k" twice in the window [0, 10).
            record = (part.dump_key(("k", 0.0)), part.dump_value(2), 1_000, ())
            await worker.transport.append(tp, encode_batch([record]))
            await worker.placement.place(counts, WorkerState(active={0}))
            windows.advance_stream_time(0, 25.0)
            await wait_until_async(lambda: finals, timeout_s=10, what="the final result")
            assert finals == [("k", 0.0, 2)]

    asyncio.run(main())
