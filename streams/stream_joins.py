"""Windowed stream-stream joins: events of two topics with the same key whose
timestamps are close enough.

    views_clicks = app.JoinWindows("views-clicks", within=60, grace=5)

    @app.agent(views)
    async def attribute(stream):
        async for view, click in stream.join(clicks, windows=views_clicks, how="left"):
            ...                                    # click is None: no click within 60 s

A left event at `tl` and a right event at `tr` with the same key (the same key
bytes: the two topics must be co-partitioned) join when
`tl - before <= tr <= tl + after` (`within` sets both). Both sides are buffered in
the JoinWindows table, whose changelog `<app>-<name>-changelog` makes them survive
a crash, keyed by side, timestamp and offset, so a replayed event finds its own
entry again instead of adding one.

Each side has a stream time per partition, the newest timestamp it has seen
there (kept in the changelog too):

- an event more than `grace` behind its own side's stream time is late:
  dropped, counted in `late_dropped` (and the worker's
  `streams_join_late_dropped_total{join=}`), logged at DEBUG;
- an event's window closes once the *other* side's stream time passes its end
  plus `grace` (`tl + after + grace` for a left event, `tr + before + grace` for
  a right one): no event still to come from the other side can join it. It
  leaves the buffer then (a tombstone in the changelog), and with how="left"
  (left events) or "outer" (both sides), if it never matched, it is emitted
  once with None for the other side. An event emitted with None is never
  matched later: what could match it would be late. An event that arrives with
  its window closed already (the other side is ahead) joins what is buffered,
  then closes at once.

So which pairs and unmatched events come out depends only on the order of each
topic partition, not on how the two topics' events interleave (one topic read
far ahead of the other, a replay after a crash): a side that runs ahead waits in
the buffer for the other. A side that stops sending also holds back the other
side's unmatched results, until it moves on.

Inner pairs are emitted as soon as the second of the two arrives. Results carry
the joined timestamp (the later of the two; an unmatched event's own). Processing
an event emits first the other side's events its stream time closed (oldest
first), then its pairs (the other side's events by timestamp, then offset), then
itself if it closed at once unmatched.
"""

from __future__ import annotations

import asyncio
import bisect
import heapq
import logging
import math
import struct
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from streams.errors import ConfigurationError
from streams.event import Event, set_current_event
from streams.table import _DELETED, Table

if TYPE_CHECKING:
    from streams.stream import Stream
    from streams.table import TablePartition
    from streams.topic import Topic
    from streams.wiring import Wiring

__all__ = ["JoinResult", "JoinWindows", "StreamJoin", "StreamJoinHow"]

logger = logging.getLogger(__name__)

StreamJoinHow = Literal["inner", "left", "outer"]
LEFT, RIGHT = b"L", b"R"
_TIME_KEY = b"T"  # + side: its stream time in the partition, so lateness survives a restart
_ENTRY = struct.Struct(">dq")  # timestamp, offset
_MATCHED, _UNMATCHED = b"\x01", b"\x00"


@dataclass(frozen=True, slots=True)
class JoinResult:
    """One result of a stream-stream join; `left` or `right` is None when unmatched."""

    key: Any
    left: Any
    right: Any
    timestamp: float


@dataclass(slots=True)
class _Buffered:
    """What one partition of a JoinWindows holds, indexed for matching and closing."""

    stream_time: dict[bytes, float] = field(
        default_factory=lambda: {LEFT: -math.inf, RIGHT: -math.inf}
    )
    # (side, key bytes) -> sorted [(timestamp, offset)]: a match is a bisected slice
    entries: dict[tuple[bytes, bytes], list[tuple[float, int]]] = field(default_factory=dict)
    # side -> heap of (close time, timestamp, offset, key bytes): the next to close first
    closing: dict[bytes, list[tuple[float, float, int, bytes]]] = field(
        default_factory=lambda: {LEFT: [], RIGHT: []}
    )


def _check_seconds(name: str, value: float) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = math.nan
    if not (seconds >= 0 and math.isfinite(seconds)):
        raise ValueError(
            f"JoinWindows: {name} must be a finite number of seconds >= 0, got {value!r}"
        )
    return seconds


class JoinWindows(Table):
    """The two buffers of a windowed stream-stream join. Create with `app.JoinWindows`.

    A table of raw bytes: key side + timestamp + offset + the event's key bytes,
    value a matched flag + the event's value bytes."""

    def __init__(
        self,
        wiring: Wiring,
        name: str,
        *,
        within: float | None = None,
        before: float | None = None,
        after: float | None = None,
        grace: float = 0.0,
        partitions: int | None = None,
        store: str | None = None,
    ) -> None:
        if within is None and (before is None or after is None):
            raise ValueError("JoinWindows: give within=, or both before= and after=")
        self.before_s = _check_seconds("before", before if before is not None else within)  # type: ignore[arg-type]
        self.after_s = _check_seconds("after", after if after is not None else within)  # type: ignore[arg-type]
        self.grace_s = _check_seconds("grace", grace)
        super().__init__(
            wiring,
            name,
            key_serializer="raw",
            value_serializer="raw",
            partitions=partitions,
            store=store,
        )
        self.late_dropped = 0
        self.buffered: dict[int, _Buffered] = {}
        self.bound_to: str | None = None
        self.topics: dict[bytes, Topic] = {}  # by side, once a join uses this buffer

    def __repr__(self) -> str:
        return (
            f"<JoinWindows {self.name} before={self.before_s} after={self.after_s} "
            f"grace={self.grace_s}>"
        )

    def close_time(self, side: bytes, timestamp: float) -> float:
        """The other side's stream time past which an event's window is closed."""
        return timestamp + (self.after_s if side == LEFT else self.before_s) + self.grace_s

    # --- lifecycle (driven by the worker) -----------------------------------

    def on_recovered(self, partition: int) -> None:
        state = self.buffered[partition] = _Buffered()
        for raw_key, raw_value in self.partitions[partition].items():
            if raw_key[:1] == _TIME_KEY:
                (state.stream_time[raw_key[1:]],) = struct.unpack(">d", raw_value)
                continue
            side, ts, offset, key = _split(raw_key)
            state.entries.setdefault((side, key), []).append((ts, offset))
            state.closing[side].append((self.close_time(side, ts), ts, offset, key))
        for bucket in state.entries.values():
            bucket.sort()
        for heap in state.closing.values():
            heapq.heapify(heap)

    def detach(self, partition: int) -> Any:
        self.buffered.pop(partition, None)
        return super().detach(partition)

    def discard_uncommitted(self) -> None:
        """An aborted transaction: back to the buffers (and stream times) it started
        from, or the events it rewinds would find themselves late."""
        super().discard_uncommitted()
        for partition in self.partitions:
            self.on_recovered(partition)

    # --- reading (the web views, tests) -----------------------------------------

    def items(self) -> Iterator[tuple[tuple[str, Any, float, int], dict[str, Any]]]:
        """The buffered events: ((side, key, timestamp, offset), {"matched", "value"}),
        decoded by their topics once a join uses this buffer."""
        for number in sorted(self.partitions):
            for raw_key, raw_value in self.partitions[number].items():
                if raw_key[:1] == _TIME_KEY:
                    continue
                side, ts, offset, key = _split(raw_key)
                topic = self.topics.get(side)
                shown_key = _text(key) if topic is None else topic._load_key(key)
                value = _text(raw_value[1:]) if topic is None else topic._load_value(raw_value[1:])
                name = "left" if side == LEFT else "right"
                matched = raw_value[:1] == _MATCHED
                yield (name, shown_key, ts, offset), {"matched": matched, "value": value}


def _entry_key(side: bytes, ts: float, offset: int, key: bytes) -> bytes:
    return side + _ENTRY.pack(ts, offset) + key


def _other(side: bytes) -> bytes:
    return RIGHT if side == LEFT else LEFT


def _text(data: bytes) -> str:
    return data.decode("utf-8", "replace")


def _split(raw_key: bytes) -> tuple[bytes, float, int, bytes]:
    ts, offset = _ENTRY.unpack_from(raw_key, 1)
    return raw_key[:1], ts, offset, raw_key[1 + _ENTRY.size :]


class StreamJoin:
    """`stream.join(topic, windows=...)`: iterate for (left, right) pairs,
    `results()` for JoinResult (with key and timestamp), `items()` for
    (key, (left, right))."""

    def __init__(
        self, stream: Stream, other: Topic, windows: JoinWindows, *, how: StreamJoinHow = "inner"
    ) -> None:
        if how not in ("inner", "left", "outer"):
            raise ValueError(f"join: how must be 'inner', 'left' or 'outer', got {how!r}")
        if not isinstance(windows, JoinWindows):
            raise ConfigurationError(f"join: windows= takes an app.JoinWindows, not {windows!r}")
        source = stream.source
        if source is None:
            raise ConfigurationError(f"join with topic {other.name!r}: the stream has no source")
        check_streams_copartitioned(source, other, windows)
        if windows.bound_to not in (None, stream.context.agent_name):
            raise ConfigurationError(
                f"JoinWindows {windows.name!r} already buffers the join of agent "
                f"{windows.bound_to!r}: declare one JoinWindows per join"
            )
        windows.bound_to = stream.context.agent_name
        self.stream, self.other, self.windows, self.how = stream, other, windows, how
        self._topics = windows.topics = {LEFT: source, RIGHT: other}

    def __repr__(self) -> str:
        return f"<StreamJoin {self._topics[LEFT].name} {self.how} join {self.other.name}>"

    def __aiter__(self) -> AsyncIterator[tuple[Any, Any]]:
        return self._pairs()

    async def _pairs(self) -> AsyncIterator[tuple[Any, Any]]:
        async for result in self.results():
            yield result.left, result.right

    async def items(self) -> AsyncIterator[tuple[Any, tuple[Any, Any]]]:
        async for result in self.results():
            yield result.key, (result.left, result.right)

    async def results(self) -> AsyncIterator[JoinResult]:
        """Each result, while the event that caused it is the current one."""
        from streams.stream import Stream

        ctx = self.stream.context
        conductor = ctx.wiring.require_conductor()
        channel = await conductor.subscribe(  # type: ignore[call-arg]
            self.other, ctx.index, ctx.count, owner=f"join:{ctx.agent_name}:{self.windows.name}"
        )
        sides = {
            LEFT: self.stream.events(),
            RIGHT: Stream(channel, ctx, source=self.other).events(),
        }
        loop = asyncio.get_running_loop()
        pending = {loop.create_task(anext(gen)): side for side, gen in sides.items()}  # type: ignore[arg-type]
        try:
            while pending:
                done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for side, event in _in_time_order(done, pending):
                    set_current_event(event)
                    for result in self._process(side, event):
                        yield result
                    pending[loop.create_task(anext(sides[side]))] = side  # type: ignore[arg-type]
        finally:
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            for gen in sides.values():
                await gen.aclose()

    # --- one event ------------------------------------------------------------

    def _process(self, side: bytes, event: Event) -> Iterator[JoinResult]:
        windows = self.windows
        topic = self._topics[side]
        if event.key is None or event.value is None:
            logger.debug("join %s: event without key or value skipped", windows.name)
            return
        number = event.message.partition
        part = windows.partitions.get(number)
        state = windows.buffered.get(number)
        if part is None or state is None:
            raise ConfigurationError(
                f"JoinWindows {windows.name!r}: partition {number} is not held by this worker"
            )
        ts = event.message.timestamp
        own_time = state.stream_time[side]
        if ts < own_time - windows.grace_s:
            windows.late_dropped += 1
            logger.debug(
                "late event dropped join=%s partition=%d side=%s timestamp=%s stream_time=%s",
                windows.name,
                number,
                side.decode(),
                ts,
                own_time,
            )
            return
        if ts > own_time:
            state.stream_time[side] = ts
            part.set(_TIME_KEY + side, struct.pack(">d", ts))
            yield from self._close(part, state, _other(side))
        key = topic.encode_key(event.key)
        assert key is not None
        yield from self._match(part, state, side, event, key)
        # The other side may be past this event's window already: it closes at once.
        yield from self._close(part, state, side)

    def _close(self, part: TablePartition, state: _Buffered, side: bytes) -> Iterator[JoinResult]:
        """`side`'s events whose windows the other side's stream time closed."""
        closing = state.closing[side]
        now = state.stream_time[_other(side)]
        emits = self.how == "outer" or (self.how == "left" and side == LEFT)
        while closing and closing[0][0] < now:
            _, ts, offset, key = heapq.heappop(closing)
            raw_key = _entry_key(side, ts, offset, key)
            stored = part.get(raw_key)
            bucket = state.entries.get((side, key))
            if bucket is not None:
                i = bisect.bisect_left(bucket, (ts, offset))
                if i < len(bucket) and bucket[i] == (ts, offset):
                    del bucket[i]
                if not bucket:
                    del state.entries[(side, key)]
            if stored is _DELETED:
                continue
            part.delete(raw_key)
            if emits and stored[:1] == _UNMATCHED:
                value = self._load(side, stored)
                left, right = (value, None) if side == LEFT else (None, value)
                yield JoinResult(self._load_key(key), left, right, ts)

    def _match(
        self, part: TablePartition, state: _Buffered, side: bytes, event: Event, key: bytes
    ) -> Iterator[JoinResult]:
        windows = self.windows
        ts, offset = event.message.timestamp, event.message.offset
        other = _other(side)
        if side == LEFT:
            low, high = ts - windows.before_s, ts + windows.after_s
        else:
            low, high = ts - windows.after_s, ts + windows.before_s
        raw_key = _entry_key(side, ts, offset, key)
        if part.get(raw_key) is _DELETED:  # not a replay of an event buffered already
            bisect.insort(state.entries.setdefault((side, key), []), (ts, offset))
            heapq.heappush(state.closing[side], (windows.close_time(side, ts), ts, offset, key))
        bucket = state.entries.get((other, key), [])
        lo = bisect.bisect_left(bucket, (low, -1))
        hi = bisect.bisect_right(bucket, (high, math.inf))
        candidates = bucket[lo:hi]
        matched = False
        for other_ts, other_offset in candidates:
            other_key = _entry_key(other, other_ts, other_offset, key)
            stored = part.get(other_key)
            if stored is _DELETED:
                continue
            matched = True
            if stored[:1] == _UNMATCHED:
                part.set(other_key, _MATCHED + stored[1:])
            value = self._load(other, stored)
            left, right = (event.value, value) if side == LEFT else (value, event.value)
            yield JoinResult(event.key, left, right, max(ts, other_ts))
        flag = _MATCHED if matched else _UNMATCHED
        previous = part.get(raw_key)
        if previous is _DELETED or (matched and previous[:1] == _UNMATCHED):
            encoded = self._topics[side].encode_value(event.value)
            part.set(raw_key, flag + (encoded or b""))

    def _load(self, side: bytes, stored: bytes) -> Any:
        return self._topics[side]._load_value(stored[1:])

    def _load_key(self, key: bytes) -> Any:
        return self._topics[LEFT]._load_key(key)


def _in_time_order(
    done: set[asyncio.Task[Event]], pending: dict[asyncio.Task[Event], bytes]
) -> list[tuple[bytes, Event]]:
    """The events both sides had ready, the older first (left first on a tie), as
    Kafka Streams picks among its inputs; a side that ended leaves `pending`."""
    ready = []
    for task in done:
        side = pending.pop(task)
        try:
            ready.append((side, task.result()))
        except StopAsyncIteration:
            continue
    ready.sort(key=lambda item: (item[1].message.timestamp, item[0]))
    return ready


def check_streams_copartitioned(left: Topic, right: Topic, windows: JoinWindows) -> None:
    """Raise ConfigurationError unless key k lands in one partition number of both
    topics and the JoinWindows."""
    counts = {
        f"topic {left.name!r}": left.partitions,
        f"topic {right.name!r}": right.partitions,
        f"JoinWindows {windows.name!r}": windows.partition_count,
    }
    if len(set(counts.values())) != 1:
        listed = ", ".join(f"{name} has {n}" for name, n in counts.items())
        raise ConfigurationError(
            f"join of topic {left.name!r} with topic {right.name!r}: not co-partitioned "
            f"({listed} partitions); declare them with the same partitions=, or join "
            "with repartition=True (the stream through a repartition topic partitioned "
            "like the other, the JoinWindows declared with its partitions=)"
        )
    if left.key_codec.dumps != right.key_codec.dumps:
        raise ConfigurationError(
            f"join of topic {left.name!r} with topic {right.name!r}: not co-partitioned "
            "(their keys are encoded by different codecs, so one key hashes to different "
            "partitions); give both the same key_type, or join with repartition=True"
        )
