"""TablePartition: reads while a flush is writing."""

from __future__ import annotations

import asyncio

from waiting import wait_until_async

from runtime.types import TopicPartition
from stores.memory import MemoryStore
from streams.table import TablePartition


class _SlowChangelog:
    """A transport whose appends wait until released (a slow broker)."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.appends = 0

    async def append(self, tp: TopicPartition, batch: bytes) -> int:
        self.appends += 1
        await self.release.wait()
        return 0


def _partition() -> TablePartition:
    return TablePartition(
        MemoryStore(),
        TopicPartition("t-changelog", 0),
        lambda k: k.encode(),
        lambda b: b.decode(),
        lambda v: str(v).encode(),
        lambda b: int(b),
    )


def test_items_during_a_flush_still_show_the_entries_being_written():
    async def main():
        part = _partition()
        part.set("a", 1)
        part.set("b", 2)
        transport = _SlowChangelog()
        flush = asyncio.create_task(part.flush(transport, 1 << 20))  # type: ignore[arg-type]
        await wait_until_async(lambda: transport.appends == 1, timeout_s=5, what="the append")
        part.set("b", 3)  # written again while the flush is under way
        assert dict(part.items()) == {"a": 1, "b": 3}
        transport.release.set()
        assert await flush == 2
        assert dict(part.items()) == {"a": 1, "b": 3}
        assert part.flushing == {}

    asyncio.run(main())


def test_a_full_cache_emptied_after_a_flush_keeps_the_writes_made_during_it(monkeypatch):
    monkeypatch.setattr("streams.table.CACHE_ENTRIES_MAX", 2)

    async def main():
        part = _partition()
        for i, key in enumerate("abc"):
            part.set(key, i)
        transport = _SlowChangelog()
        flush = asyncio.create_task(part.flush(transport, 1 << 20))  # type: ignore[arg-type]
        await wait_until_async(lambda: transport.appends == 1, timeout_s=5, what="the append")
        part.set("a", part.get("a") + 10)  # an update while the flush is under way
        transport.release.set()
        assert await flush == 3
        assert len(part.cache) <= 2
        assert part.get("a") == 10  # not the store's 0
        assert part.get("b") == 1  # read back from the store

    asyncio.run(main())
