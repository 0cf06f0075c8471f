"""The time a windowed table's update or read is at: the event's timestamp
(`relative_to_stream()`, the default), the wall clock (`relative_to_now()`), or
a field of the event's value (`relative_to_field(Model.field)`); the wall clock
outside an event. Views made by `relative_to_*` share their table's data."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from typing import Any, Self

from streams.event import current_event

RelativeTo = str | Callable[[Any], float]

__all__ = ["RelativeTo", "TimeViews", "field_time", "table_time"]


def table_time(relative_to: RelativeTo) -> float:
    """Seconds, for the current event."""
    event = current_event()
    if relative_to == "now" or event is None:
        return time.time()
    if relative_to == "stream":
        return event.message.timestamp
    return relative_to(event.value)  # type: ignore[operator]


def field_time(field: Any) -> Callable[[Any], float]:
    """The time of a model field (seconds, or a datetime) of an event's value."""
    getter = getattr(field, "getter", None)
    if getter is None:
        raise TypeError(f"relative_to_field needs a model field, not {field!r}")

    def read(value: Any) -> float:
        found = getter(value)
        return float(found.timestamp() if hasattr(found, "timestamp") else found)

    return read


class TimeViews:
    """relative_to_* for a windowed table: a shallow copy, sharing its data, whose
    updates and reads are at another time. Counters go to the table (`_root`)."""

    _relative_to: RelativeTo = "stream"

    def relative_to_stream(self) -> Self:
        return self._view("stream")

    def relative_to_now(self) -> Self:
        return self._view("now")

    def relative_to_field(self, field: Any) -> Self:
        return self._view(field_time(field))

    def _view(self, relative_to: RelativeTo) -> Self:
        view = copy.copy(self)
        view._relative_to = relative_to
        view.__dict__["_shared"] = self._root
        return view

    @property
    def _root(self) -> Self:
        return self.__dict__.get("_shared", self)

    def timestamp(self) -> float:
        """The time the current event is at for this table (or view)."""
        return table_time(self._relative_to)
