"""Streams: async iteration over a topic's events, with operators.

    async for value in stream            values
    stream.events() / items() / enumerate()
    stream.filter(fn)                    keep values where fn(value) is true
    stream.take(n, within=s)             lists of up to n values, at least every s
    stream.group_by(Model.field)         re-key through a repartition topic
    stream.through(topic)                forward through another topic
    stream.join(table, how=, key=)       (value, table_value) pairs (see joins.py)
    stream.join(topic, windows=, how=)   windowed stream-stream join (stream_joins.py)

An event counts as processed when the agent asks for the next one; the worker
commits offsets only past processed events (see channel.py).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, overload

from streams.channel import Channel
from streams.errors import ConfigurationError
from streams.event import Event, set_current_event
from streams.event_batch import EventBatch
from streams.model import FieldDescriptor

_new = object.__new__

if TYPE_CHECKING:
    from streams.joins import JoinedStream, JoinHow
    from streams.stream_joins import JoinWindows, StreamJoin, StreamJoinHow
    from streams.table import Table
    from streams.topic import Topic
    from streams.wiring import Wiring


@dataclass(frozen=True, slots=True)
class StreamContext:
    """Who is reading: the agent name and which of its instances."""

    wiring: Wiring
    agent_name: str
    index: int = 0
    count: int = 1
    watch: Callable[[asyncio.Task[None]], None] | None = None


class Stream:
    def __init__(
        self,
        channel: Channel,
        context: StreamContext,
        *,
        source: Topic | None = None,
        predicates: tuple[Callable[[Any], Any], ...] = (),
        tasks: list[asyncio.Task[None]] | None = None,
    ) -> None:
        self.channel = channel
        self.context = context
        self.source = source
        self._predicates = predicates
        # Forwarders feeding derived streams; owned by the root stream's agent.
        self._tasks: list[asyncio.Task[None]] = tasks if tasks is not None else []
        # Set for streams fed by a forwarder: their channel exists once subscribed.
        self._ready: asyncio.Event | None = None

    def __repr__(self) -> str:
        name = self.source.name if self.source else "?"
        return f"<Stream {name} agent={self.context.agent_name}#{self.context.index}>"

    # --- iteration -----------------------------------------------------------

    async def events(self) -> AsyncIterator[Event]:
        # Per event: build it, note where the reader is, hand it out. The rest
        # of the bookkeeping (a commit's pause, a rewind) is looked at once per
        # batch and, per event, only when `channel.interrupts` moved.
        if self._ready is not None:
            await self._ready.wait()
        channel = self.channel
        predicates = self._predicates
        try:
            while True:
                batch = await channel.get()
                if batch is None:
                    return
                if not await _begin_batch(channel):
                    continue  # rewound by an aborted transaction: fetched again
                seen = channel.interrupts
                columns = type(batch) is EventBatch  # else a list of built events
                if columns:
                    keys, values = batch.keys, batch.values
                for i in range(len(batch)):
                    channel.position = i
                    if channel.interrupts != seen:
                        if not await _between_events(channel):
                            break
                        seen = channel.interrupts
                    if columns:
                        event = _new(Event)  # EventBatch.__getitem__ inlined
                        event.key = keys[i]
                        event.value = values[i]
                        event._message = None
                        event._batch = batch
                        event._index = i
                    else:
                        event = batch[i]
                    if predicates and not await _passes(predicates, event.value):
                        continue
                    set_current_event(event)
                    yield event
                else:
                    _end_batch(channel)
        finally:
            channel.busy = False
            channel.note_idle()
            set_current_event(None)

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._without_events(_values_of, keyed=False)

    async def _without_events(
        self, pick: Callable[[Sequence[Event]], Sequence[Any]], *, keyed: bool
    ) -> AsyncIterator[Any]:
        # events() without an Event per record: `pick` takes a batch's values
        # (or key, value pairs) at once and the channel stands for the current
        # event (current_event() builds one only when asked).
        if self._ready is not None:
            await self._ready.wait()
        channel = self.channel
        predicates = self._predicates
        try:
            while True:
                batch = await channel.get()
                if batch is None:
                    return
                if not await _begin_batch(channel):
                    continue  # rewound by an aborted transaction: fetched again
                items = pick(batch)
                seen = channel.interrupts
                set_current_event(channel)
                for i, item in enumerate(items):
                    channel.position = i
                    if channel.interrupts != seen:
                        if not await _between_events(channel):
                            break
                        seen = channel.interrupts
                    if predicates and not await _passes(predicates, item[1] if keyed else item):
                        continue
                    yield item
                else:
                    _end_batch(channel)
        finally:
            channel.busy = False
            channel.note_idle()
            set_current_event(None)

    def items(self) -> AsyncIterator[tuple[Any, Any]]:
        return self._without_events(_items_of, keyed=True)

    async def enumerate(self, start: int = 0) -> AsyncIterator[tuple[int, Any]]:
        i = start
        async for event in self.events():
            yield i, event.value
            i += 1

    # --- operators -----------------------------------------------------------

    def filter(self, fn: Callable[[Any], Any]) -> Stream:
        """A stream of the values for which fn (sync or async) is true."""
        return Stream(
            self.channel,
            self.context,
            source=self.source,
            predicates=(*self._predicates, fn),
            tasks=self._tasks,
        )

    def take(self, max_: int, within: float) -> AsyncIterator[list[Any]]:
        """Lists of up to `max_` values, yielded when full or `within` seconds
        after the list's first value. Offsets of buffered values stay
        uncommitted until the list has been handled. Buffered values of a
        partition revoked meanwhile are dropped, not handled late: the
        partition's new owner reads them again from the commit, which stays
        before them. See streams.stream_take."""
        from streams.stream_take import take_lists

        return take_lists(self, max_, within)

    @overload
    def join(
        self,
        other: Table,
        *,
        how: JoinHow = "inner",
        key: Callable[[Any], Any] | None = None,
        repartition: bool = False,
    ) -> JoinedStream: ...

    @overload
    def join(
        self,
        other: Topic,
        *,
        how: StreamJoinHow = "inner",
        key: Callable[[Any], Any] | None = None,
        repartition: bool = False,
        windows: JoinWindows,
    ) -> StreamJoin: ...

    def join(
        self,
        other: Table | Topic,
        *,
        how: Any = "inner",
        key: Callable[[Any], Any] | None = None,
        repartition: bool = False,
        windows: JoinWindows | None = None,
    ) -> JoinedStream | StreamJoin:
        """With a table: pair each value with the table's current value for its
        key (inner drops events without one, left pairs them with None). A Table
        must be co-partitioned with the stream (checked here), or the stream goes
        through a repartition topic first with `repartition=True` (keyed by
        `key(value)` when given); a GlobalTable takes a `key` function of the value.

        With a topic and `windows=app.JoinWindows(...)`: a windowed stream-stream
        join (see stream_joins.py); `repartition=True` (and `key=`) sends this
        stream through a repartition topic partitioned like that topic first."""
        from streams.joins import JoinedStream
        from streams.topic import Topic

        if isinstance(other, Topic):
            from streams.stream_joins import StreamJoin

            if windows is None:
                raise ConfigurationError(
                    f"join with topic {other.name!r}: a stream-stream join buffers both sides "
                    "in windows=app.JoinWindows(name, within=seconds)"
                )
            if key is not None and not repartition:
                raise ConfigurationError(
                    f"join with topic {other.name!r}: key= re-keys the stream through a "
                    "repartition topic: pass repartition=True too"
                )
            left = self
            if repartition:
                left = self._repartition(
                    other.name, other.key_type, other.key_codec.dumps, other.partitions, key
                )
            return StreamJoin(left, other, windows, how=how)
        if isinstance(other, Stream):
            raise ConfigurationError(
                "join: a stream joins a table, or a topic with windows=app.JoinWindows(...); "
                "for another stream, join its topic"
            )
        if windows is not None:
            raise ConfigurationError("join: windows= is for a join with a topic, not a table")
        if repartition:
            return JoinedStream(self._repartition_for(other, key), other, how=how)
        return JoinedStream(self, other, how=how, key=key)

    def _repartition_for(self, table: Table, key: Callable[[Any], Any] | None) -> Stream:
        if table.route_by_key or getattr(table, "windowed", None) is not None:
            raise ConfigurationError(
                f"join: repartition=True is for an app.Table, not {table!r} (a GlobalTable "
                "needs no co-partitioning)"
            )
        return self._repartition(
            table.name, table.key_type, table._dump_key, table.partition_count, key
        )

    def _repartition(
        self,
        name: str,
        key_type: Any,
        dump_key: Callable[[Any], bytes],
        partitions: int,
        key: Callable[[Any], Any] | None,
    ) -> Stream:
        """This stream through `<app>-<agent>-<name>-repartition`, keyed (by the
        event's key, or `key(value)`) with `dump_key`'s codec, in `partitions`."""
        from streams.topic import Topic

        source = self.source
        ctx = self.context
        topic = Topic(
            ctx.wiring,
            f"{ctx.wiring.app_id}-{ctx.agent_name}-{name}-repartition",
            key_type=key_type,
            key_serializer=getattr(dump_key, "__self__", None),
            value_type=source.value_type if source else None,
            value_serializer=source.value_codec if source else None,
            partitions=partitions,
            internal=True,
        )
        return self._forward_to(topic, key)

    def group_by(
        self,
        key: FieldDescriptor | Callable[[Any], Any],
        *,
        name: str | None = None,
        partitions: int | None = None,
    ) -> Stream:
        """Re-key the stream: each value goes through the repartition topic
        `<app>-<agent>-<name>-repartition`, keyed by `key(value)`, so that all
        values with one key land in one partition."""
        if isinstance(key, FieldDescriptor):
            key_name = name or key.name
            get_key = key.getter
        elif callable(key):
            if name is None:
                raise ValueError("group_by with a function needs name= for its topic")
            key_name, get_key = name, key
        else:
            raise TypeError(f"group_by key must be a model field or a function, not {key!r}")
        ctx = self.context
        topic_name = f"{ctx.wiring.app_id}-{ctx.agent_name}-{key_name}-repartition"
        return self._forward(topic_name, get_key, partitions)

    def through(self, topic: Topic | str) -> Stream:
        """Forward every event to `topic` and read on from there."""
        if isinstance(topic, str):
            return self._forward(topic, None, None)
        return self._forward_to(topic, None)

    def _forward(
        self, topic_name: str, get_key: Callable[[Any], Any] | None, partitions: int | None
    ) -> Stream:
        from streams.topic import Topic

        source = self.source
        topic = Topic(
            self.context.wiring,
            topic_name,
            key_type=None,
            value_type=source.value_type if source else None,
            value_serializer=source.value_codec if source else None,
            partitions=partitions or (source.partitions if source else None),
            internal=True,
        )
        return self._forward_to(topic, get_key)

    def _forward_to(self, topic: Topic, get_key: Callable[[Any], Any] | None) -> Stream:
        ctx = self.context
        derived = Stream(Channel(), ctx, source=topic, tasks=self._tasks)

        async def forward() -> None:
            subscribed = await ctx.wiring.require_conductor().subscribe(topic, ctx.index, ctx.count)
            # The agent's own work is in the derived stream: time that one.
            subscribed.stats, self.channel.stats = self.channel.stats, None
            derived.channel = subscribed
            ready.set()
            async for event in self.events():
                key = event.key if get_key is None else get_key(event.value)
                msg = event.message
                topic.send_nowait(key, event.value, timestamp=msg.timestamp, headers=msg.headers)

        ready = asyncio.Event()
        task = asyncio.get_running_loop().create_task(forward(), name=f"forward->{topic.name}")
        self._tasks.append(task)
        if ctx.watch is not None:
            task.add_done_callback(ctx.watch)
        derived._ready = ready
        return derived


def _values_of(batch: Sequence[Event]) -> Sequence[Any]:
    return batch.values if type(batch) is EventBatch else [e.value for e in batch]


def _items_of(batch: Sequence[Event]) -> Sequence[tuple[Any, Any]]:
    if type(batch) is EventBatch:
        return list(zip(batch.keys, batch.values, strict=True))
    return [(e.key, e.value) for e in batch]


async def _begin_batch(channel: Channel) -> bool:
    """Before the first event of the batch the reader took: wait out a commit's
    pause; False if the batch was rewound meanwhile. The reader is busy from here
    to the batch's end, but for the pauses it waits out between events."""
    if channel.paused:
        await channel.wait_unpaused()
        if channel.rewound:
            return False
    channel.busy = True
    return True


async def _between_events(channel: Channel) -> bool:
    """The reader is before its next event (`position`) and a commit paused or
    rewound the channel since it last looked: idle while paused; False if rewound."""
    if channel.paused:
        channel.busy = False
        channel.note_idle()
        await channel.wait_unpaused()
    if channel.rewound:
        channel.busy = False  # what it held is forgotten: it waits for a fresh batch
        return False
    channel.busy = True
    return True


def _end_batch(channel: Channel) -> None:
    channel.position = len(channel.batch)
    channel.busy = False
    if channel.paused:
        channel.note_idle()


async def _passes(predicates: tuple[Callable[[Any], Any], ...], value: Any) -> bool:
    for fn in predicates:
        result = fn(value)
        if inspect.isawaitable(result):
            result = await result
        if not result:
            return False
    return True
