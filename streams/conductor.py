"""The conductor: fetches the partitions a worker owns and hands each batch of
events to the channels subscribed to its topic.

One fetch loop per partition. A fetch is decoded a chunk of record batches at
a time (at most `batch_events_max` events), once every subscriber's channel has
room for it, and the same events go to every subscriber group (an agent with N
instances is one group of N channels: partition p goes to channel p % N).

Invariant for commits: `positions[tp]` moves past a batch only after every
subscriber has queued it, so `commit_offsets()` (the lowest offset queued or
in flight in any channel, else the position) never passes an event that was
not processed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from runtime.log.record_columns import RecordColumns, decode_batch_columns
from runtime.log.records import BatchHeader, iter_batches
from runtime.transport import Transport
from runtime.types import TopicPartition
from streams.channel import Channel
from streams.partition_check import PartitionMismatchError, check_internal_topic
from streams.topic import Topic

logger = logging.getLogger(__name__)

REVOKE_WAIT_S = 30.0


@dataclass
class _Group:
    """The channels of one subscriber (an agent's instances) for one topic."""

    channels: list[Channel | None]
    complete: asyncio.Event = field(default_factory=asyncio.Event)

    def add(self, index: int, channel: Channel) -> None:
        if self.channels[index] is not None:
            raise RuntimeError(f"instance {index} subscribed twice")
        self.channels[index] = channel
        if all(c is not None for c in self.channels):
            self.complete.set()


class Conductor:
    def __init__(
        self,
        transport: Transport,
        group_id: str,
        *,
        fetch_bytes: int = 1 << 20,
        fetch_wait_s: float = 0.5,
        batch_events_max: int = 1000,
        numbers: Iterable[int] | None = None,
    ) -> None:
        self._transport = transport
        self._group_id = group_id
        self._fetch_bytes = fetch_bytes
        self._fetch_wait_s = fetch_wait_s
        self._batch_events_max = batch_events_max
        # The partition numbers this worker owns (None: all of every topic).
        self._numbers = None if numbers is None else set(numbers)
        self._topics: dict[str, Topic] = {}
        self._groups: dict[tuple[str, str], _Group] = {}
        self._fetchers: dict[TopicPartition, asyncio.Task[None]] = {}
        self.positions: dict[TopicPartition, int] = {}
        self.events_in: dict[TopicPartition, int] = {}  # delivered to channels, ever
        self._committed: dict[TopicPartition, int] = {}
        self._started = False
        self._stopping = False
        self.failure: asyncio.Future[BaseException] = asyncio.get_running_loop().create_future()

    # --- subscriptions ---------------------------------------------------------

    async def subscribe(
        self, topic: Topic, index: int, count: int, owner: str | None = None
    ) -> Channel:
        """A channel receiving partitions p of `topic` with p % count == index."""
        if self._stopping:
            raise RuntimeError("the worker is stopping")
        if not 0 <= index < count:
            raise ValueError(f"instance index {index} out of range for {count}")
        await declare_topic(self._transport, topic)
        key = (topic.name, owner or f"{topic.name}#{count}")
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = _Group([None] * count)
        elif len(group.channels) != count:
            raise ValueError(f"subscriber {key} registered with {len(group.channels)} instances")
        channel = Channel()
        group.add(index, channel)
        self._topics[topic.name] = topic
        if self._started:
            await self._start_topic(topic)
        return channel

    async def start(self) -> None:
        """Start fetching every subscribed topic (later subscriptions start at once)."""
        self._started = True
        for topic in list(self._topics.values()):
            await self._start_topic(topic)

    async def _start_topic(self, topic: Topic) -> None:
        numbers = self._numbers
        tps = [tp for tp in topic.tps() if numbers is None or tp.partition in numbers]
        new = [tp for tp in tps if tp not in self._fetchers]
        if not new:
            return
        committed = await self._transport.committed(self._group_id, new)
        for tp in new:
            start, end = await self._transport.offsets(tp)
            position = committed.get(tp, start)
            if not start <= position <= end:
                logger.warning(
                    "committed offset %d of %s is outside [%d, %d]: starting at %d",
                    position,
                    tp,
                    start,
                    end,
                    start,
                )
                position = start
            self.positions[tp] = position
            self._committed[tp] = position
            self._fetchers[tp] = asyncio.get_running_loop().create_task(
                self._fetch_loop(tp, topic), name=f"fetch {tp}"
            )

    # --- fetching --------------------------------------------------------------

    async def _fetch_loop(self, tp: TopicPartition, topic: Topic) -> None:
        try:
            await self._fetch_forever(tp, topic)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            logger.error("fetching %s failed: %s", tp, exc)
            if not self.failure.done():
                self.failure.set_result(exc)

    async def _fetch_forever(self, tp: TopicPartition, topic: Topic) -> None:
        transport = self._transport
        for group in self._groups_of(tp.topic):
            await group.complete.wait()
        while not self._stopping:
            position = self.positions[tp]
            data = await transport.fetch(
                tp, position, max_bytes=self._fetch_bytes, max_wait_s=self._fetch_wait_s
            )
            if not data:
                continue
            batches = [(pos, h) for pos, h in iter_batches(data) if h.next_offset > position]
            if not batches:
                self.positions[tp] = _past(data, position)
                continue
            if not await self._deliver(tp, topic, data, batches):
                return  # a channel closed: the worker is stopping

    async def _deliver(
        self,
        tp: TopicPartition,
        topic: Topic,
        data: bytes,
        batches: list[tuple[int, BatchHeader]],
    ) -> bool:
        """Decode `batches` of `data` into event batches of whole record batches,
        at most `batch_events_max` events unless one record batch holds more,
        and queue each in every subscriber's channel.

        A chunk is decoded only once every channel has room for it: until then
        only the fetched bytes are held. Small chunks die young, which keeps the
        cyclic garbage collector's full collections rare and short."""
        partition = tp.partition
        chunk_max = self._batch_events_max
        i = 0
        while i < len(batches):
            channels = self._channels_for(tp)
            while not all(c.has_room for c in channels):
                for channel in channels:
                    if not await channel.wait_room():
                        return False
            position = self.positions[tp]
            columns = RecordColumns()
            while i < len(batches):
                pos, header = batches[i]
                if columns and len(columns) + header.record_count > chunk_max:
                    break
                decode_batch_columns(data, pos, header, columns, position)
                i += 1
            events = topic.decode_batch(columns, partition)
            if events:
                for channel in channels:
                    channel.put_nowait(events)
                self.events_in[tp] = self.events_in.get(tp, 0) + len(events)
            self.positions[tp] = batches[i - 1][1].next_offset
            # Let other partitions' fetchers take a turn at the channel's free
            # slots, so one partition's backlog does not starve the others.
            await asyncio.sleep(0)
        return True

    def _groups_of(self, topic: str) -> list[_Group]:
        return [g for (name, _), g in self._groups.items() if name == topic]

    def _channels_for(self, tp: TopicPartition) -> list[Channel]:
        channels = []
        for group in self._groups_of(tp.topic):
            channel = group.channels[tp.partition % len(group.channels)]
            assert channel is not None
            channels.append(channel)
        return channels

    # --- commits and shutdown --------------------------------------------------

    def commit_offsets(self) -> dict[TopicPartition, int]:
        """Per owned partition: the offset up to which every event is processed."""
        offsets = dict(self.positions)
        for group in self._groups.values():
            for channel in group.channels:
                if channel is None:
                    continue
                for tp, offset in channel.pending_offsets().items():
                    if tp in offsets and offset < offsets[tp]:
                        offsets[tp] = offset
        return offsets

    def changed_offsets(self) -> dict[TopicPartition, int]:
        offsets = self.commit_offsets()
        return {tp: o for tp, o in offsets.items() if self._committed.get(tp) != o}

    def mark_committed(self, offsets: dict[TopicPartition, int]) -> None:
        self._committed.update(offsets)

    async def stop_fetching(self) -> None:
        """Stop fetchers and close channels: readers end after their current event."""
        self._stopping = True
        for task in self._fetchers.values():
            task.cancel()
        if self._fetchers:
            await asyncio.gather(*self._fetchers.values(), return_exceptions=True)
        for group in self._groups.values():
            for channel in group.channels:
                if channel is not None:
                    channel.close()

    # --- assignment changes (group membership) ---------------------------------

    async def assign(self, numbers: Iterable[int]) -> None:
        """Own these partition numbers too: fetch them in every subscribed topic."""
        if self._numbers is None:
            raise RuntimeError("this conductor owns every partition: nothing to assign")
        self._numbers |= set(numbers)
        if self._started:
            for topic in list(self._topics.values()):
                await self._start_topic(topic)

    async def revoke(self, numbers: Iterable[int]) -> None:
        """Stop fetching these partition numbers, drop what is queued of them, and
        wait until no agent is in the middle of a batch of them. Their positions
        stay until forget(), so a commit can record how far they were processed."""
        gone = set(numbers)
        tps = {tp for tp in self._fetchers if tp.partition in gone}
        tasks = [self._fetchers.pop(tp) for tp in tps]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        for channel in self.channels():
            # The position moved past queued batches: back to the first one
            # dropped, or the commit after this revoke would skip them.
            for tp, offset in channel.drop(tps).items():
                if offset < self.positions.get(tp, offset + 1):
                    self.positions[tp] = offset
        try:
            async with asyncio.timeout(REVOKE_WAIT_S):
                for channel in self.channels():
                    await channel.wait_finished(tps)
        except TimeoutError:
            logger.warning(
                "an agent did not finish its batch of %s within %.0fs of a revoke",
                sorted(tps),
                REVOKE_WAIT_S,
            )
        if self._numbers is not None:
            self._numbers -= gone

    async def rewind(self) -> None:
        """Back to the last committed offsets (an aborted transaction): stop the
        fetchers, forget what the channels hold, fetch again from the commit.
        Only while the channels are paused and idle, so no reader is mid-event."""
        fetching = list(self._fetchers.items())
        for _, task in fetching:
            task.cancel()
        if fetching:
            await asyncio.gather(*(task for _, task in fetching), return_exceptions=True)
        self._fetchers.clear()
        for channel in self.channels():
            channel.discard_all()
        loop = asyncio.get_running_loop()
        for tp, _ in fetching:
            self.positions[tp] = self._committed.get(tp, self.positions[tp])
            self._fetchers[tp] = loop.create_task(
                self._fetch_loop(tp, self._topics[tp.topic]), name=f"fetch {tp}"
            )
        logger.info("rewound to the last commit partitions=%d", len(fetching))

    def forget(self, numbers: Iterable[int]) -> None:
        gone = set(numbers)
        for tp in [tp for tp in self.positions if tp.partition in gone]:
            del self.positions[tp]
            self._committed.pop(tp, None)

    def channels(self) -> list[Channel]:
        return [c for g in self._groups.values() for c in g.channels if c is not None]


async def declare_topic(transport: Transport, topic: Topic) -> None:
    """Create the topic if missing; adopt the partition count of an existing one,
    except for an internal topic with a count of its own (a repartition topic),
    whose keys would land elsewhere: PartitionMismatchError."""
    info = await transport.ensure_topic(topic.name, topic.partitions, topic.config)
    if topic.internal and topic._declared_partitions is not None:
        mismatch = check_internal_topic(topic, info.partitions)
        if mismatch is not None:
            raise PartitionMismatchError([mismatch], transport.url)
    if info.partitions != topic.partitions:
        if topic._declared_partitions is not None:
            logger.warning(
                "topic %s exists with %d partitions, not the %d declared: using %d",
                topic.name,
                info.partitions,
                topic.partitions,
                info.partitions,
            )
        topic.partitions = info.partitions


def _past(data: bytes, position: int) -> int:
    """The offset after the last batch in `data` (all its records were before
    `position`, or it held only control records)."""
    last = position
    for _, header in iter_batches(data):
        last = max(last, header.next_offset)
    return last
