"""A stream hands out a batch's events with the pause and rewind checks done
once per batch (and per event only when `channel.interrupts` moved): a commit
still cuts between two events, a rewind still drops the rest of the batch, and
tables still write each event's key to its batch's partition."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from waiting import wait_until_async

import streams
from runtime.types import TopicPartition
from stores.memory import MemoryStore
from streams.channel import Channel
from streams.event import set_current_event
from streams.event_batch import EventBatch
from streams.stream import Stream, StreamContext
from streams.wiring import Wiring

TIMEOUT_S = 5.0


def _batch(partition: int, first: int, keys: list[str]) -> EventBatch:
    n = len(keys)
    offsets = list(range(first, first + n))
    return EventBatch("events", partition, offsets, [0] * n, keys, list(offsets), [()] * n)


def _stream(channel: Channel) -> Stream:
    return Stream(channel, StreamContext(Wiring("app"), "agent"))


def _readers(stream: Stream) -> dict[str, Any]:
    return {
        "events": lambda: stream.events(),
        "values": lambda: stream.__aiter__(),
        "items": lambda: stream.items(),
    }


@pytest.mark.parametrize("reader", ["events", "values", "items"])
def test_a_pause_mid_batch_cuts_after_the_event_in_hand(reader: str) -> None:
    async def main() -> None:
        channel = Channel()
        channel.put_nowait(_batch(0, 10, ["a", "b", "c", "d"]))
        iterator: AsyncIterator[Any] = _readers(_stream(channel))[reader]()
        first = await anext(iterator)
        assert channel.in_hand and channel.pending_offsets() == {TopicPartition("events", 0): 10}
        channel.pause()
        idle = asyncio.ensure_future(channel.wait_idle())
        await asyncio.sleep(0)
        assert not idle.done()  # the agent holds offset 10: no cut yet
        second = asyncio.ensure_future(anext(iterator))  # done with 10, asks for 11
        async with asyncio.timeout(TIMEOUT_S):
            await idle
        # Cut between 10 and 11: 10 is processed, 11 not handed out while paused.
        assert channel.pending_offsets() == {TopicPartition("events", 0): 11}
        assert not second.done() and not channel.in_hand
        channel.resume()
        async with asyncio.timeout(TIMEOUT_S):
            got = await second
        assert [_offset(first), _offset(got)] == [10, 11]
        assert channel.in_hand
        await iterator.aclose()  # type: ignore[attr-defined]

    asyncio.run(main())


def test_a_rewind_while_paused_drops_the_rest_of_the_batch() -> None:
    async def main() -> None:
        channel = Channel()
        channel.put_nowait(_batch(0, 10, ["a", "b", "c"]))
        events = _stream(channel).events()
        assert (await anext(events)).offset == 10
        channel.pause()
        following = asyncio.ensure_future(anext(events))
        async with asyncio.timeout(TIMEOUT_S):
            await channel.wait_idle()
        channel.discard_all()  # an aborted transaction: fetched again from the commit
        channel.put_nowait(_batch(0, 10, ["a", "b", "c"]))
        channel.resume()
        async with asyncio.timeout(TIMEOUT_S):
            again = await following
        # 11 and 12 of the discarded batch never come: the fresh batch starts at 10.
        assert (again.offset, again.key) == (10, "a")
        assert [(await anext(events)).offset for _ in range(2)] == [11, 12]
        await events.aclose()

    asyncio.run(main())


def test_a_batch_taken_during_a_pause_waits_and_is_dropped_if_rewound() -> None:
    async def main() -> None:
        channel = Channel()
        channel.put_nowait(_batch(0, 10, ["a"]))
        channel.put_nowait(_batch(0, 11, ["b"]))
        events = _stream(channel).events()
        assert (await anext(events)).offset == 10
        channel.pause()
        following = asyncio.ensure_future(anext(events))
        async with asyncio.timeout(TIMEOUT_S):
            await channel.wait_idle()
        await asyncio.sleep(0)
        assert not following.done()  # offset 11's batch is taken, not handed out
        channel.discard_all()
        channel.put_nowait(_batch(0, 11, ["b-again"]))
        channel.resume()
        async with asyncio.timeout(TIMEOUT_S):
            assert (await following).key == "b-again"
        await events.aclose()

    asyncio.run(main())


def test_filtered_events_also_let_a_commit_cut_between_them() -> None:
    async def main() -> None:
        channel = Channel()
        channel.put_nowait(_batch(0, 10, ["a", "b", "c", "d"]))
        gate = asyncio.Event()

        async def slow_odd(value: int) -> bool:
            if value == 11:
                await gate.wait()  # a commit pauses while this predicate runs
            return value % 2 == 0

        events = _stream(channel).filter(slow_odd).events()
        assert (await anext(events)).offset == 10
        following = asyncio.ensure_future(anext(events))
        await wait_until_async(lambda: channel.position == 1, timeout_s=TIMEOUT_S, what="at 11")
        channel.pause()
        gate.set()
        async with asyncio.timeout(TIMEOUT_S):
            await channel.wait_idle()
        # 11 was filtered out (processed); 12 is not handed out while paused.
        assert channel.pending_offsets() == {TopicPartition("events", 0): 12}
        assert not following.done()
        channel.resume()
        async with asyncio.timeout(TIMEOUT_S):
            assert (await following).offset == 12
        await events.aclose()

    asyncio.run(main())


def test_table_writes_follow_each_batchs_partition_and_a_reassignment() -> None:
    app = streams.App("batches", broker="memory://")
    counts = app.Table("counts", default=int, partitions=4)
    for p in range(4):
        counts.attach(p, MemoryStore())
    moved_away = counts.partitions[1]

    async def main() -> None:
        channel = Channel()
        channel.put_nowait(_batch(1, 0, ["k", "k", "k"]))
        channel.put_nowait(_batch(2, 0, ["k"]))
        seen = 0
        async for event in _stream(channel).events():
            counts[event.key] += 1
            seen += 1
            if seen == 1:
                # Mid-batch, partition 1 moves away and back (a rebalance): a new store.
                counts.detach(1)
                counts.attach(1, MemoryStore())
            if seen == 4:
                break

    asyncio.run(main())
    assert moved_away.dirty == {"k": 1}
    assert counts.partitions[1].dirty == {"k": 2}  # the batch's other two events
    assert counts.partitions[2].dirty == {"k": 1}
    counts.detach(3)
    token = set_current_event(_batch(3, 0, ["x"])[0])
    with pytest.raises(KeyError, match="partition 3 is not assigned"):
        counts["x"] = 1
    set_current_event(None)
    del token


def _offset(item: Any) -> int:
    if hasattr(item, "offset"):
        return int(item.offset)
    value = item[1] if isinstance(item, tuple) else item
    return int(value)
