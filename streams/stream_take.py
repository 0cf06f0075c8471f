"""Stream.take(): lists of a stream's values, while the reader holds their events.

take() reads events one by one from a reader that marks itself idle between
every two (events_one_by_one), and holds each event it buffers: its offset
stays uncommitted until the list it is in has been handled, and a commit may
cut while take() waits to fill a list. A partition revoked, or a rewind by an
aborted transaction, drops what take() buffered of it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from runtime.types import TopicPartition
from streams.channel import Channel
from streams.event import Event, set_current_batch, set_current_event
from streams.stream import _passes

if TYPE_CHECKING:
    from streams.stream import Stream


async def events_one_by_one(stream: Stream) -> AsyncIterator[Event]:
    """Stream.events() marking the reader idle between every two events, for
    take(), which holds events the reader handed it (see channel.busy)."""
    if stream._ready is not None:
        await stream._ready.wait()
    channel = stream.channel
    predicates = stream._predicates
    try:
        while True:
            batch = await channel.get()
            if batch is None:
                return
            # Checked before each event, paused or not: a rewind while the
            # reader was parked at its yield (take() holding the event) too.
            rewinds = channel.rewinds
            for i, event in enumerate(batch):
                channel.position = i
                if channel.paused:
                    await channel.wait_unpaused()
                if channel.rewinds != rewinds:
                    break  # rewound by an aborted transaction: fetched again
                channel.busy = True
                if predicates and not await _passes(predicates, event.value):
                    channel.busy = False
                    if channel.paused:
                        channel.note_idle()
                    continue
                set_current_event(event)
                yield event
                channel.busy = False
                if channel.paused:
                    channel.note_idle()
            else:
                channel.position = len(batch)
    finally:
        channel.busy = False
        channel.note_idle()
        set_current_event(None)


async def take_lists(stream: Stream, max_: int, within: float) -> AsyncIterator[list[Any]]:
    """Stream.take(): lists of up to `max_` values of `stream`."""
    if max_ < 1:
        raise ValueError("take: max_ must be >= 1")
    if within <= 0:
        raise ValueError("take: within must be > 0 seconds")
    events = events_one_by_one(stream)
    channel = stream.channel
    buffer = TakeBuffer(channel)
    loop = asyncio.get_running_loop()
    deadline = 0.0
    pending: asyncio.Task[Event] | None = None
    try:
        while True:
            if pending is None:
                pending = loop.create_task(anext(events))  # type: ignore[arg-type]
            timeout = None if not buffer.events else max(0.0, deadline - loop.time())
            done, _ = await asyncio.wait({pending}, timeout=timeout)
            if done:
                try:
                    event = pending.result()
                except StopAsyncIteration:
                    pending = None
                    if buffer.valid():
                        yield buffer.values()
                    return
                pending = None
                if channel.rewound:
                    continue  # handed out before an aborted transaction: fetched again
                # Buffered and held now: for a commit the reader is between
                # events (it waits at its yield, asking nothing of this one).
                channel.busy = False
                if channel.paused:
                    channel.note_idle()
                if not buffer.valid():
                    deadline = loop.time() + within
                if not buffer.add(event):
                    continue  # of a revoked partition: skipped, held uncommitted
                if len(buffer.events) < max_:
                    continue
            if buffer.valid():
                # A list is processed like an event: not while a commit cuts.
                await channel.wait_unpaused()
                if not buffer.valid():
                    continue
                batch = buffer.values()
                channel.holding = buffer.partitions()
                set_current_batch(tuple(e for e, _, _ in buffer.events))
                buffer.events = []
                channel.busy = True
                yield batch
                set_current_batch(None)
                if pending is None:
                    # The reader waits at its yield of the list's last event,
                    # processed now: a commit may cut past it.
                    channel.position += 1
                channel.busy = False
                if channel.paused:
                    channel.note_idle()
                channel.release()
    finally:
        if pending is not None:
            pending.cancel()
        # A list left unhandled (the agent raised): its offsets stay held.
        channel.holding = set()
        await events.aclose()


class TakeBuffer:
    """take()'s events, each with how many times its partition had been revoked
    when it came: one revoked since is dropped (an aborted transaction's rewind
    drops them all: they come again)."""

    __slots__ = ("_channel", "_rewinds", "events")

    def __init__(self, channel: Channel) -> None:
        self._channel = channel
        self._rewinds = channel.rewinds
        self.events: list[tuple[Event, TopicPartition, int]] = []

    def add(self, event: Event) -> bool:
        """Buffer `event`, unless its partition is revoked (then it is only held)."""
        channel = self._channel
        channel.hold(event)
        tp = TopicPartition(event.message.topic, event.message.partition)
        if tp in channel.revoked:
            return False
        self.events.append((event, tp, channel.revocations.get(tp, 0)))
        return True

    def valid(self) -> bool:
        """Whether any event is left, once the stale ones are gone."""
        channel = self._channel
        if channel.rewinds != self._rewinds:
            self.events, self._rewinds = [], channel.rewinds
        elif channel.revoked and self.events:
            counts = channel.revocations
            self.events = [e for e in self.events if counts.get(e[1], 0) == e[2]]
        return bool(self.events)

    def values(self) -> list[Any]:
        return [event.value for event, _, _ in self.events]

    def partitions(self) -> set[TopicPartition]:
        return {tp for _, tp, _ in self.events}
