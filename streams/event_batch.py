"""Event batches: the decoded records of one topic partition, kept as columns.

A fetcher decodes a chunk of records into one `EventBatch`: a list of keys, a
list of values and the offsets, timestamps and headers beside them. An `Event`
(with its `Message`) is built only when something asks for one, by index:
`async for value in stream` reads the values column and never builds any.

Invariants:
- every column has one entry per record, in offset order;
- `offsets` ascend; `topic` and `partition` are those of every record.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, overload

from runtime.log.records import Header
from streams.event import Event, Message

_new = object.__new__


class EventBatch(Sequence[Event]):
    """A read-only sequence of events of one partition, built on demand."""

    __slots__ = ("headers", "keys", "offsets", "partition", "timestamps", "topic", "values")

    def __init__(
        self,
        topic: str,
        partition: int,
        offsets: Sequence[int],
        timestamps: Sequence[int],
        keys: Sequence[Any],
        values: Sequence[Any],
        headers: Sequence[tuple[Header, ...]],
    ) -> None:
        count = len(offsets)
        if not len(timestamps) == len(keys) == len(values) == len(headers) == count:
            raise ValueError("an event batch needs a key, value, timestamp and headers per offset")
        self.topic = topic
        self.partition = partition
        self.offsets = offsets
        self.timestamps = timestamps
        self.keys = keys
        self.values = values
        self.headers = headers

    def __len__(self) -> int:
        return len(self.offsets)

    @overload
    def __getitem__(self, index: int) -> Event: ...

    @overload
    def __getitem__(self, index: slice) -> list[Event]: ...

    def __getitem__(self, index: int | slice) -> Event | list[Event]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        event = _new(Event)
        event.key = self.keys[index]
        event.value = self.values[index]
        event._message = None
        event._batch = self
        event._index = index
        return event

    def message(self, index: int) -> Message:
        """Where the record at `index` was read."""
        return Message(
            self.topic,
            self.partition,
            self.offsets[index],
            self.timestamps[index],
            self.headers[index],
        )

    def __iter__(self) -> Iterator[Event]:
        keys, values = self.keys, self.values
        for i in range(len(keys)):
            event = _new(Event)  # __getitem__ inlined: this runs per event
            event.key = keys[i]
            event.value = values[i]
            event._message = None
            event._batch = self
            event._index = i
            yield event

    def __repr__(self) -> str:
        first = self.offsets[0] if self.offsets else None
        return f"<EventBatch {self.topic}[{self.partition}] from={first} count={len(self)}>"
