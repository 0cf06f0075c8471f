"""The conductor decodes a fetch in event batches of whole record batches, at
most batch_events_max events, once the channel has room, and its commit offsets never
pass an event still queued or being processed."""

from __future__ import annotations

import asyncio

import pytest
from waiting import wait_until_async

from runtime.log.records import encode_batch
from runtime.transport import EmbeddedTransport
from runtime.types import TopicPartition
from streams.channel import Channel
from streams.conductor import Conductor
from streams.event import Event, Message
from streams.stream import Stream, StreamContext
from streams.topic import Topic
from streams.wiring import Wiring

TP = TopicPartition("events", 0)


async def _fill(transport: EmbeddedTransport, batches: int, per_batch: int) -> None:
    await transport.create_topic(TP.topic, 1)
    for b in range(batches):
        records = [(None, b"%d" % (b * per_batch + i), 1, ()) for i in range(per_batch)]
        await transport.append(TP, encode_batch(records))


def test_events_come_in_bounded_batches_and_commits_trail_them():
    async def main() -> None:
        async with EmbeddedTransport("memory://", None) as transport:
            await _fill(transport, batches=25, per_batch=100)  # 3 per event batch
            conductor = Conductor(transport, "g", batch_events_max=300, fetch_wait_s=0.01)
            topic = Topic(Wiring("app"), TP.topic, value_type=int, partitions=1)
            channel = await conductor.subscribe(topic, 0, 1)
            await conductor.start()
            seen: list[int] = []
            while len(seen) < 2500:
                batch = await channel.get()
                assert batch is not None
                assert len(batch) == 300 or (len(seen), len(batch)) == (2400, 100)
                # Everything from this batch on is unprocessed.
                assert conductor.commit_offsets()[TP] == batch[0].offset
                seen += [e.value for e in batch]
            assert seen == list(range(2500))
            await conductor.stop_fetching()
            assert conductor.commit_offsets()[TP] == 2400  # the last batch is in hand
            assert await channel.get() is None  # ... and now processed
            assert conductor.commit_offsets()[TP] == 2500

    asyncio.run(main())


def test_channel_put_nowait_needs_room():
    async def main() -> None:
        channel = Channel(maxsize_batches=1)
        batch = [Event(None, 1, Message(TP.topic, TP.partition, 0, 1))]
        assert await channel.wait_room()
        channel.put_nowait(batch)
        assert not channel.has_room
        with pytest.raises(RuntimeError, match="full"):
            channel.put_nowait(batch)
        channel.close()
        assert not await channel.wait_room()
        with pytest.raises(RuntimeError, match="closed"):
            channel.put_nowait(batch)

    asyncio.run(main())


def test_revoke_commits_no_further_than_the_batch_in_hand():
    """Batches queued when a partition is revoked are dropped unprocessed: the
    offsets committed after the revoke must not pass them (the next owner
    starts there)."""

    async def main() -> None:
        async with EmbeddedTransport("memory://", None) as transport:
            await _fill(transport, batches=10, per_batch=100)
            conductor = Conductor(transport, "g", batch_events_max=100, numbers={0})
            topic = Topic(Wiring("app"), TP.topic, value_type=int, partitions=1)
            channel = await conductor.subscribe(topic, 0, 1)
            await conductor.start()
            batch = await channel.get()  # in hand: offsets 0..99
            assert batch is not None and batch[0].offset == 0
            await wait_until_async(  # the fetcher queues more behind it
                lambda: not channel.has_room, timeout_s=10, what="a full channel"
            )
            assert conductor.positions[TP] > 100
            revoke = asyncio.create_task(conductor.revoke({0}))
            await asyncio.sleep(0.05)
            assert not revoke.done()  # waits for the batch in hand
            reader = asyncio.create_task(channel.get())  # the batch in hand is processed
            await asyncio.wait_for(revoke, 5)
            assert conductor.commit_offsets() == {TP: 100}
            reader.cancel()
            await conductor.stop_fetching()

    asyncio.run(main())


def test_take_drops_buffered_events_of_a_revoked_partition():
    """take() buffers events of two partitions; one is revoked mid-buffer: the
    list it yields holds only the other's, and the commit of the revoked one
    stays before its buffered events (its next owner reads them again)."""

    async def main() -> None:
        tps = [TopicPartition("events", p) for p in (0, 1)]
        async with EmbeddedTransport("memory://", None) as transport:
            await transport.create_topic("events", 2)
            for tp in tps:
                records = [(None, b"%d" % (tp.partition * 100 + i), 1, ()) for i in range(5)]
                await transport.append(tp, encode_batch(records))
            conductor = Conductor(transport, "g", fetch_wait_s=0.01, numbers={0, 1})
            topic = Topic(Wiring("app"), "events", value_type=int, partitions=2)
            channel = await conductor.subscribe(topic, 0, 1)
            stream = Stream(channel, StreamContext(Wiring("app"), "a"), source=topic)
            await conductor.start()
            lists = stream.take(100, within=0.3)
            first = asyncio.create_task(anext(lists))
            await wait_until_async(
                lambda: (
                    conductor.positions.get(tps[0]) == 5 == conductor.positions.get(tps[1])
                    and conductor.commit_offsets() == {tps[0]: 0, tps[1]: 0}
                ),
                timeout_s=5,
                what="both partitions buffered, uncommitted",
            )
            await asyncio.wait_for(conductor.revoke({1}), 5)
            assert conductor.commit_offsets()[tps[1]] == 0  # the revoke's commit
            assert await asyncio.wait_for(first, 5) == [0, 1, 2, 3, 4]
            conductor.forget({1})
            second = asyncio.create_task(anext(lists))  # the first list is handled
            await wait_until_async(
                lambda: conductor.commit_offsets() == {tps[0]: 5},
                timeout_s=5,
                what="partition 0 committed past its list",
            )
            second.cancel()
            await asyncio.gather(second, return_exceptions=True)
            await lists.aclose()
            await conductor.stop_fetching()

    asyncio.run(main())


def test_a_revoke_waits_for_the_list_take_handed_out():
    """A list in the agent's hands when its partition is revoked is processed
    first, and its events are committed (not read again by the next owner)."""

    async def main() -> None:
        tps = [TopicPartition("events", p) for p in (0, 1)]
        async with EmbeddedTransport("memory://", None) as transport:
            await transport.create_topic("events", 2)
            for tp in tps:
                records = [(None, b"%d" % (tp.partition * 100 + i), 1, ()) for i in range(5)]
                await transport.append(tp, encode_batch(records))
            conductor = Conductor(transport, "g", fetch_wait_s=0.01, numbers={0, 1})
            topic = Topic(Wiring("app"), "events", value_type=int, partitions=2)
            channel = await conductor.subscribe(topic, 0, 1)
            stream = Stream(channel, StreamContext(Wiring("app"), "a"), source=topic)
            await conductor.start()
            lists = stream.take(10, within=30)
            handed = await asyncio.wait_for(anext(lists), 5)  # full: both partitions
            assert sorted(handed) == [0, 1, 2, 3, 4, 100, 101, 102, 103, 104]
            revoke = asyncio.create_task(conductor.revoke({1}))
            done, _ = await asyncio.wait({revoke}, timeout=0.2)
            assert not done  # the list is still being handled
            following = asyncio.create_task(anext(lists))  # handled: ask for the next
            await asyncio.wait_for(revoke, 5)
            assert conductor.commit_offsets() == {tps[0]: 5, tps[1]: 5}
            following.cancel()
            await asyncio.gather(following, return_exceptions=True)
            await lists.aclose()
            await conductor.stop_fetching()

    asyncio.run(main())
