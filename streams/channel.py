"""Channels: the bounded queue of event batches between a fetcher and a stream.

A channel also answers "which offsets are not processed yet": the worker
commits, per partition, the lowest offset still queued or in flight in any
channel, so an offset is committed only once every event before it was
fully handled (at least once).

Invariants:
- every batch holds events of one topic partition, in offset order;
- `position` is the index, in `batch`, of the first event not yet processed;
  the stream that reads the channel moves it forward;
- while `paused`, the reader hands out no event: `wait_idle()` returns once it
  is between events (every event it was given is wholly processed), which is
  where an exactly_once commit cuts.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Sequence

from runtime.stats import LatencyStats
from runtime.types import TopicPartition
from streams.event import Event
from streams.event_batch import EventBatch


class Channel:
    def __init__(self, maxsize_batches: int = 4) -> None:
        if maxsize_batches < 1:
            raise ValueError("maxsize_batches must be >= 1")
        self._queue: deque[Sequence[Event]] = deque()
        self._maxsize = maxsize_batches
        self._not_empty = asyncio.Event()
        self._not_full = asyncio.Event()
        self._not_full.set()
        # Set while the reader waits on an empty queue: all it was given is processed.
        self.drained = asyncio.Event()
        self.drained.set()  # nothing given yet: nothing unprocessed
        self._closed = False
        self._dropped: dict[TopicPartition, int] = {}
        self._held: dict[TopicPartition, int] = {}
        self._advanced = asyncio.Event()  # set each time the reader takes a batch
        self.batch: Sequence[Event] = []
        self.position = 0
        self.partition = 0  # of every event in `batch`
        # Set by the worker: how long the reader takes over each batch it gets.
        self.stats: LatencyStats | None = None
        self._taken_at = 0.0
        self.paused = False
        self.busy = False  # the reader is processing an event it was given
        self._resumed = asyncio.Event()
        self._resumed.set()
        self._idle = asyncio.Event()
        self.rewinds = 0  # how many times discard_all() forgot what was given out
        # Moves on every pause() and discard_all(): a reader handing out a batch
        # looks at pauses and rewinds only when it moved (see Stream.events).
        self.interrupts = 0
        # `rewinds` when `batch` was taken: a reader (or take() holding an event
        # the reader handed it) whose batch was taken before the last rewind goes
        # no further with it, whether or not the channel is still paused.
        self.batch_rewinds = 0
        # Revoked partitions (drop) until a batch of theirs comes again, and how
        # many times each was revoked: take() forgets what it buffered of them.
        self.revoked: set[TopicPartition] = set()
        self.revocations: dict[TopicPartition, int] = {}
        self.holding: set[TopicPartition] = set()  # in a list take() handed out

    # --- pausing between events (exactly_once commits) ---------------------------

    def pause(self) -> None:
        self.paused = True
        self.interrupts += 1
        self._resumed.clear()

    def resume(self) -> None:
        self.paused = False
        self._resumed.set()

    @property
    def in_hand(self) -> bool:
        """The reader is processing an event, or a list take() handed out (whose
        reader may meanwhile skip filtered events, and clear `busy`)."""
        return self.busy or bool(self.holding)

    async def wait_idle(self) -> None:
        """Wait until the reader is between events (call pause() first)."""
        while self.in_hand and not self._closed:
            self._idle.clear()
            await self._idle.wait()

    def note_idle(self) -> None:
        """The reader finished its event while paused."""
        self.busy = False
        self._idle.set()

    async def wait_unpaused(self) -> None:
        await self._resumed.wait()

    @property
    def rewound(self) -> bool:
        """Whether the batch the reader took was rewound since (discard_all):
        its events, those handed out too, are fetched again."""
        return self.batch_rewinds != self.rewinds

    def discard_all(self) -> None:
        """Forget every queued batch and the rest of the one in hand (an aborted
        transaction: the fetchers read them again from the last commit)."""
        self.rewinds += 1
        self.interrupts += 1
        self._queue.clear()
        self._dropped.clear()
        self._held.clear()
        self._not_full.set()
        self._not_empty.clear()
        self.batch, self.position = [], 0

    # --- the current event, for streams that hand out values (EventCursor) ------

    def current(self) -> Event | None:
        batch, position = self.batch, self.position
        return batch[position] if position < len(batch) else None

    def current_partition(self) -> int | None:
        return self.partition if self.position < len(self.batch) else None

    @property
    def closed(self) -> bool:
        return self._closed

    async def put(self, batch: Sequence[Event]) -> bool:
        """Queue a batch, waiting for room. False when the channel is closed."""
        if not await self.wait_room():
            return False
        self.put_nowait(batch)
        return True

    async def wait_room(self) -> bool:
        """Wait until a batch can be queued. False when the channel is closed.

        Lets a producer of batches build one only once it fits: until then it
        holds the fetched bytes, not decoded events."""
        while len(self._queue) >= self._maxsize and not self._closed:
            self._not_full.clear()
            await self._not_full.wait()
        return not self._closed

    @property
    def has_room(self) -> bool:
        return len(self._queue) < self._maxsize and not self._closed

    def put_nowait(self, batch: Sequence[Event]) -> None:
        """Queue a batch now; the caller made sure there is room (wait_room)."""
        if self._closed:
            raise RuntimeError("channel is closed")
        if len(self._queue) >= self._maxsize:
            raise RuntimeError(f"channel is full ({self._maxsize} batches)")
        self._queue.append(batch)
        if self.revoked:
            tp = _tp_of(batch)
            if tp in self.revoked:  # assigned again: a fresh fetch from the commit
                self.revoked.discard(tp)
                self._held.pop(tp, None)
        self.drained.clear()
        self._not_empty.set()

    async def get(self) -> Sequence[Event] | None:
        """The next batch; None once closed. Marks the previous batch processed."""
        stats = self.stats
        if stats is not None and self._taken_at:
            stats.observe(time.perf_counter() - self._taken_at, len(self.batch))
            self._taken_at = 0.0
        self.position = len(self.batch)
        self._advanced.set()
        self._advanced = asyncio.Event()
        while not self._queue:
            if self._closed:
                return None
            self._not_empty.clear()
            self.drained.set()
            await self._not_empty.wait()
        if self._closed:
            return None
        batch = self._queue.popleft()
        self._not_full.set()
        self.batch = batch
        self.position = 0
        self.batch_rewinds = self.rewinds
        self.partition = (
            batch.partition if type(batch) is EventBatch else batch[0].message.partition
        )
        if self.stats is not None:
            self._taken_at = time.perf_counter()
        return batch

    def close(self) -> None:
        """Stop delivering: the reader ends after the event it is processing."""
        self._closed = True
        # Dropped batches stay uncommitted: remember where each partition stopped.
        for queued in self._queue:
            first = queued[0].message
            tp = TopicPartition(first.topic, first.partition)
            self._dropped.setdefault(tp, first.offset)
        self._queue.clear()
        self._not_empty.set()
        self._not_full.set()
        self._advanced.set()
        self._idle.set()
        self._resumed.set()

    def drop(self, tps: set[TopicPartition]) -> dict[TopicPartition, int]:
        """Forget queued batches of `tps` (revoked: their new owner reads them).

        Returns, per partition, the lowest offset forgotten (queued, dropped
        at close or held): nothing from there on was processed, so the fetch
        position must not be committed past it."""
        lowest: dict[TopicPartition, int] = {}
        for tp in tps:
            self.revoked.add(tp)
            self.revocations[tp] = self.revocations.get(tp, 0) + 1
            # Held in a list take() handed out: processed before the revoke ends.
            held = (self._dropped,) if tp in self.holding else (self._dropped, self._held)
            for offsets in held:
                offset = offsets.pop(tp, None)
                if offset is not None and offset < lowest.get(tp, offset + 1):
                    lowest[tp] = offset
        kept: deque[Sequence[Event]] = deque()
        for batch in self._queue:
            tp = _tp_of(batch)
            if tp not in tps:
                kept.append(batch)
            elif batch[0].offset < lowest.get(tp, batch[0].offset + 1):
                lowest[tp] = batch[0].offset
        if len(kept) != len(self._queue):
            self._queue = kept
            self._not_full.set()
            if not kept:
                self._not_empty.clear()
        return lowest

    async def wait_finished(self, tps: set[TopicPartition]) -> None:
        """Wait until the batch being processed holds no unprocessed event of
        `tps`, and no list take() handed out holds one."""
        while not self._closed and (
            (self.position < len(self.batch) and _tp_of(self.batch) in tps)
            or not self.holding.isdisjoint(tps)
        ):
            await self._advanced.wait()

    def hold(self, event: Event) -> None:
        """Keep `event` uncommitted past the reader moving on (take() buffers)."""
        tp = TopicPartition(event.message.topic, event.message.partition)
        self._held.setdefault(tp, event.offset)

    def release(self) -> None:
        """The list take() handed out is processed. Offsets held of revoked
        partitions stay held: their events were skipped, not processed."""
        if self.revoked:
            held, holding = self._held, self.holding
            self._held = {tp: o for tp, o in held.items() if tp in self.revoked - holding}
        else:
            self._held.clear()
        if self.holding:
            self.holding = set()
            self._advanced.set()
            self._advanced = asyncio.Event()

    def pending_offsets(self) -> dict[TopicPartition, int]:
        """Per partition, the lowest offset queued or being processed here."""
        pending = dict(self._dropped)
        for tp, offset in self._held.items():
            if tp not in pending or offset < pending[tp]:
                pending[tp] = offset
        batch, position = self.batch, self.position
        if position < len(batch):
            event = batch[position]
            tp = TopicPartition(event.message.topic, event.message.partition)
            if tp not in pending or event.offset < pending[tp]:
                pending[tp] = event.offset
        for queued in self._queue:
            first = queued[0].message
            tp = TopicPartition(first.topic, first.partition)
            if tp not in pending or first.offset < pending[tp]:
                pending[tp] = first.offset
        return pending


def _tp_of(batch: Sequence[Event]) -> TopicPartition:
    first = batch[0].message
    return TopicPartition(first.topic, first.partition)
