"""The conductor decodes a fetch in event batches of whole record batches, at
most batch_events_max events, once the channel has room, and its commit offsets never
pass an event still queued or being processed."""

from __future__ import annotations

import asyncio

import pytest

from runtime.log.records import encode_batch
from runtime.transport import EmbeddedTransport
from runtime.types import TopicPartition
from streams.channel import Channel
from streams.conductor import Conductor
from streams.event import Event, Message
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
            while channel.has_room:  # the fetcher queues more behind it
                await asyncio.sleep(0.01)
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
