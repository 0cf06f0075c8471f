"""Events: a decoded record with the coordinates it came from."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

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


@dataclass(slots=True)
class Event:
    key: Any
    value: Any
    message: Message

    @property
    def partition(self) -> int:
        return self.message.partition

    @property
    def offset(self) -> int:
        return self.message.offset


_current_event: ContextVar[Event | None] = ContextVar("streams_current_event", default=None)


def current_event() -> Event | None:
    """The event the running agent is processing, if any."""
    return _current_event.get()


def set_current_event(event: Event | None) -> None:
    _current_event.set(event)


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
