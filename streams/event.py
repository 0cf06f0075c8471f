"""Events: a decoded record with the coordinates it came from."""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Protocol

from runtime.log.records import Header


@dataclass(frozen=True, slots=True)
class Message:
    """Where a record was read: topic, partition, offset, timestamp (ms)."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    headers: tuple[Header, ...] = ()

    @property
    def timestamp(self) -> float:
        """Event time in seconds since the epoch."""
        return self.timestamp_ms / 1000.0


class Event:
    """A decoded record: key, value and the Message saying where it was read.

    Events of an EventBatch build their Message only when it is read: most
    agents never look at it, and a frozen dataclass costs more to build than
    the rest of the event."""

    __slots__ = ("_batch", "_index", "_message", "key", "value")
    __match_args__ = ("key", "value", "message")  # as the dataclass it replaces

    def __init__(self, key: Any, value: Any, message: Message) -> None:
        self.key = key
        self.value = value
        self._message: Message | None = message
        self._batch: Any = None
        self._index = 0

    @property
    def message(self) -> Message:
        message = self._message
        if message is None:
            message = self._message = self._batch.message(self._index)
        return message

    @property
    def partition(self) -> int:
        batch = self._batch  # the partition without building the Message
        return self.message.partition if batch is None else batch.partition

    @property
    def offset(self) -> int:
        return self.message.offset

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Event):
            return NotImplemented
        return (self.key, self.value, self.message) == (other.key, other.value, other.message)

    __hash__ = None  # type: ignore[assignment]  # mutable, like the dataclass it replaces

    def __repr__(self) -> str:
        return f"Event(key={self.key!r}, value={self.value!r}, message={self.message!r})"


class EventCursor(Protocol):
    """Where a stream reading a batch is: set as the current event once, so that
    `async for value in stream` builds an Event only when one is asked for."""

    def current(self) -> Event | None: ...

    def current_partition(self) -> int | None: ...


_current_event: ContextVar[Event | EventCursor | None] = ContextVar(
    "streams_current_event", default=None
)


def current_event() -> Event | None:
    """The event the running agent is processing, if any."""
    event = _current_event.get()
    if event is None or type(event) is Event:
        return event
    return event.current()  # type: ignore[union-attr]


def current_partition() -> int | None:
    """The partition of the event being processed, without building the event."""
    event = _current_event.get()
    if event is None:
        return None
    if type(event) is Event:
        batch = event._batch  # the partition without building the Message
        return event.message.partition if batch is None else batch.partition
    return event.current_partition()  # type: ignore[union-attr]


# ContextVar.set itself (no Python frame): streams call it per event.
set_current_event: Callable[[Event | EventCursor | None], object] = _current_event.set

# ContextVar.get itself: what a stream set (an Event, a cursor or None), for
# tables that look it up per event.
current_event_or_cursor: Callable[[], Event | EventCursor | None] = _current_event.get


# The events of the list `stream.take()` yields, while the agent handles it: an
# ask among them is answered by what the agent yields for the list.
_current_batch: ContextVar[tuple[Event, ...] | None] = ContextVar(
    "streams_current_batch", default=None
)


def current_batch() -> tuple[Event, ...] | None:
    """The events of the list from `stream.take()` the running agent handles, if any."""
    return _current_batch.get()


def set_current_batch(events: tuple[Event, ...] | None) -> None:
    _current_batch.set(events)
