"""Commits: a cancelled commit still finishes the table flush it started."""

from __future__ import annotations

import asyncio

import pytest
from waiting import wait_until_async

import streams
from runtime.transport import EmbeddedTransport
from runtime.types import TopicPartition
from streams.worker import Worker


class GatedTransport(EmbeddedTransport):
    """memory://, where changelog appends wait for `gate` once it is set up."""

    def __init__(self) -> None:
        super().__init__("memory://", None)
        self.gate: asyncio.Event | None = None
        self.held = asyncio.Event()

    async def append(self, tp: TopicPartition, batch: bytes | bytearray) -> int:
        if self.gate is not None and tp.topic.endswith("-changelog"):
            self.held.set()
            await self.gate.wait()
        return await super().append(tp, batch)


def test_a_cancelled_commit_finishes_its_changelog_flush(tmp_path):
    """Stopping a worker cancels its commit loop: cut between taking a table's
    dirty entries and appending them, a flush would lose those writes."""

    async def main() -> None:
        app = streams.App("cut", data_dir=str(tmp_path), commit_interval_s=3600)
        clicks = app.topic("clicks", key_type=str, value_type=int, partitions=1)
        counts = app.Table("counts", default=int, partitions=1)

        @app.agent(clicks)
        async def count(stream):
            async for event in stream.events():
                counts[event.key] += 1

        transport = GatedTransport()
        async with Worker(app, transport=transport) as worker:
            await clicks.send(key="a", value=1)
            await wait_until_async(
                lambda: counts.partitions[0].dirty, timeout_s=10.0, what="the event counted"
            )
            transport.gate = asyncio.Event()
            commit = asyncio.create_task(worker.commit())
            await asyncio.wait_for(transport.held.wait(), 5)
            commit.cancel()
            await asyncio.sleep(0.01)
            transport.gate.set()
            with pytest.raises(asyncio.CancelledError):
                await commit
            _, end = await transport.offsets(TopicPartition("cut-counts-changelog", 0))
            assert end == 1  # the write reached the changelog

    asyncio.run(main())
