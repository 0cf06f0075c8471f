"""Windowed tables: `app.Table(...).tumbling(size)` / `.hopping(size, step)`.

A windowed table is a Table whose keys are `(key, window_start)`; it routes by
the key alone, so a window read outside an event finds the partition its
writes went to. Windows past `expires` are deleted, from the store and, by
tombstones, from the changelog.
"""

from __future__ import annotations

import operator
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import orjson

from streams import stream_time
from streams.codec import get_codec
from streams.event import Event, current_event, current_event_or_cursor
from streams.table import _DELETED, _MISSING, Append, Table, TablePartition, _hashable
from streams.topic import Topic
from streams.window import Window, WindowRange
from streams.window_close import WindowCloser

if TYPE_CHECKING:
    from runtime.transport import Transport


class WindowedTable:
    """A table of windows: `table[key] += 1` updates every window the event
    falls into; `table[key].current()` reads one.

    Stored keys are `(key, window_start)`. Windows whose end is more than
    `expires` seconds behind the newest event time are deleted from the
    store and, by tombstones, from the changelog.
    """

    def __init__(
        self,
        table: Table,
        window: Window,
        relative_to: str | Callable[[Any], float] = "stream",
        *,
        closer: WindowCloser | None = None,
    ) -> None:
        self.table = table
        self.window = window
        self.closer = closer
        self.name = table.name
        self._relative_to = relative_to
        self._root_table = self  # the table views share their windows with
        self._field_getter: Callable[[Any], Any] | None = None  # relative_to_field's
        # Stored keys are JSON [key, start]; they route by the key alone, so a
        # window read outside an event finds the partition its writes went to.
        route_key = table._route_key
        table._route_key = lambda wkey: route_key(wkey[0])
        table._dump_key = _dump_window_key
        table._load_key = _load_window_key
        for part in table.partitions.values():
            part.dump_key, part.load_key = table._dump_key, table._load_key
        self._windows: dict[float, set[tuple[int, Any]]] = {}
        # Partitions whose stored windows are all in _windows (on_recovered
        # scanned them): a window missing there is not in the store either.
        self._tracked: set[int] = set()
        # (lo, hi, ranges): the windows of any timestamp in [lo, hi).
        self._memo: tuple[float, float, tuple[WindowRange, ...]] = (0.0, 0.0, ())
        self.latest_timestamp = 0.0
        if closer is not None:
            stream_time.install(table)
        table.windowed = self

    def __repr__(self) -> str:
        return f"<WindowedTable {self.name} {self.window}>"

    @property
    def changelog(self) -> Topic:
        return self.table.changelog

    @property
    def default(self) -> Callable[[], Any] | None:
        return self.table.default

    # relative_to_*: return a view sharing the data, like Faust.
    def relative_to_stream(self) -> WindowedTable:
        return self._view("stream")

    def relative_to_now(self) -> WindowedTable:
        return self._view("now")

    def relative_to_field(self, field: Any) -> WindowedTable:
        getter = getattr(field, "getter", None)
        if getter is None:
            raise TypeError(f"relative_to_field needs a model field, not {field!r}")
        view = self._view(lambda value: _as_seconds(getter(value)))
        view._field_getter = getter
        return view

    def _view(self, relative_to: str | Callable[[Any], float]) -> WindowedTable:
        view = WindowedTable.__new__(WindowedTable)
        view.__dict__.update(self.__dict__)
        view._relative_to = relative_to
        view._field_getter = None
        return view

    @property
    def _root(self) -> WindowedTable:
        return self._root_table

    def timestamp(self) -> float:
        """The time windows are chosen by: the event's, now, or a field's."""
        rel = self._relative_to
        event = current_event_or_cursor()
        if event.__class__ is not Event:
            event = current_event()
        if rel == "now" or event is None:
            return time.time()
        if rel == "stream":
            return event.message.timestamp
        return rel(event.value)  # type: ignore[operator, union-attr]

    # --- dict-ish interface ---------------------------------------------------

    def __getitem__(self, key: Any) -> WindowSet:
        return WindowSet(key, self)

    def __setitem__(self, key: Any, value: Any) -> None:
        if isinstance(value, WindowSet):
            return  # `table[k] += x` already wrote through the WindowSet
        ts = self.timestamp()
        for rng in self._open_ranges(key, ts):
            self._set(key, rng.start, value, ts)
        self._emit_closed(key)

    def _open_ranges(self, key: Any, ts: float) -> list[WindowRange]:
        """The windows an update at `ts` goes to: all of them, or with a grace
        period those not yet closed by the partition's stream time."""
        if self.closer is None:
            return self.window.ranges(ts)
        return self._admit(self.table._partition((key, 0.0)), key, ts)

    def _admit(self, part: TablePartition, key: Any, ts: float) -> list[WindowRange]:
        """The windows of `ts` the closer keeps open, stream time moved and recorded."""
        closer = self.closer
        assert closer is not None
        number = part.changelog.partition
        kept = closer.admit(number, key, ts, self._ranges(ts), self.name)
        stream_time.write(part, closer.stream_time[number])
        if closer.on_final is not None:
            for rng in kept:
                closer.opened(number, key, rng)
        return kept

    def _emit_closed(self, key: Any, part: TablePartition | None = None) -> None:
        closer = self.closer
        if closer is not None and closer.on_final is not None:
            if part is None:
                part = self.table._partition((key, 0.0))
            closer.emit_closed(part.changelog.partition, self._read_final(part))

    def _read_final(self, part: TablePartition) -> Callable[[Any, float], Any]:
        def read(key: Any, start: float) -> Any:
            value = part.get((key, start))
            if value is _DELETED:
                raise KeyError(key)
            return value

        return read

    @property
    def late_dropped(self) -> int:
        """Window updates dropped because the window had closed (grace passed)."""
        return 0 if self.closer is None else self.closer.late_dropped

    def __delitem__(self, key: Any) -> None:
        ts = self.timestamp()
        for rng in self.window.ranges(ts):
            wkey = (key, rng.start)
            if wkey in self.table:
                del self.table[wkey]

    def _ranges(self, ts: float) -> tuple[WindowRange, ...]:
        """The windows holding `ts`, oldest first, remembered while events
        stay where the window says the same windows hold them."""
        lo, hi, ranges = self._memo
        if lo <= ts < hi:
            return ranges
        ranges = tuple(self.window.ranges(ts))
        steady = self.window.steady(ts)
        if steady is not None:
            self._memo = (steady[0], steady[1], ranges)
        return ranges

    def _update(self, key: Any, op: Callable[[Any, Any], Any], operand: Any) -> None:
        """`table[key] op= operand` in every window of the current time: the
        per-event path, straight into the partition's cache and dirty writes."""
        table = self.table
        if table.on_change or table.route_by_key:
            return self._update_each(key, op, operand)
        event, getter = current_event_or_cursor(), self._field_getter
        if getter is not None and event.__class__ is Event:
            ts = getter(event.value)  # type: ignore[union-attr]
            if ts.__class__ is not float:
                ts = _as_seconds(ts)
        else:
            ts = self.timestamp()
        here = table._here
        if event.__class__ is Event and event._batch is here[0]:  # type: ignore[union-attr]
            part = here[1]
        else:
            part = table._part_here((key, 0.0))  # windows route by their key alone
        closer = self.closer
        # With a grace period, only the windows the stream time has not closed.
        ranges = self._ranges(ts) if closer is None else self._admit(part, key, ts)
        root = self._root_table
        number = part.changelog.partition
        tracked = number in root._tracked
        cache, dirty, default = part.cache, part.dirty, table.default
        for rng in ranges:
            wkey = (key, rng.start)
            value = cache.get(wkey, _MISSING)
            if value is _MISSING or value is _DELETED or not tracked:
                value = root._first_read(part, number, wkey, tracked)
            if value is _DELETED:
                if default is None:
                    raise KeyError(wkey)
                value = default()
            cache[wkey] = dirty[wkey] = op(value, operand)
        if ranges and ts > root.latest_timestamp:
            root.latest_timestamp = ts
        if closer is not None:
            self._emit_closed(key, part)

    def _first_read(self, part: TablePartition, number: int, wkey: Any, tracked: bool) -> Any:
        """A window's value not in the cache, noting the window for expiry; in
        a tracked partition a window never noted is new: no store read."""
        keys = self._windows.get(wkey[1])
        if keys is None:
            keys = self._windows[wkey[1]] = set()
        member = (number, wkey)
        if member in keys:
            return part.get(wkey)
        keys.add(member)
        return _DELETED if tracked else part.get(wkey)

    def _update_each(self, key: Any, op: Callable[[Any, Any], Any], operand: Any) -> None:
        ts = self.timestamp()
        for rng in self._open_ranges(key, ts):
            self._set(key, rng.start, op(self._get(key, rng.start), operand), ts)
        self._emit_closed(key)

    def _get(self, key: Any, start: float) -> Any:
        return self.table[(key, start)]

    def _set(self, key: Any, start: float, value: Any, ts: float) -> None:
        wkey = (key, start)
        self.table[wkey] = value
        root = self._root
        part = self.table._partition(wkey)
        number = part.changelog.partition
        keys = root._windows.get(start)
        if keys is None:
            keys = root._windows[start] = set()
        keys.add((number, wkey))
        if ts > root.latest_timestamp:
            root.latest_timestamp = ts

    def items(self) -> Iterator[tuple[tuple[Any, float], Any]]:
        return self.table.items()

    def keys(self) -> Iterator[Any]:
        return self.table.keys()

    def __len__(self) -> int:
        return len(self.table)

    def __bool__(self) -> bool:
        return True  # an empty table is still a table (`table.windowed or table`)

    # --- lifecycle ---------------------------------------------------------------

    def on_recovered(self, partition: int) -> None:
        root = self._root
        root._tracked.add(partition)
        found = []
        store = self.table.partitions[partition]
        for wkey, _ in store.items():
            if not isinstance(wkey, tuple):
                continue  # the stream time
            start = wkey[1]
            root._windows.setdefault(start, set()).add((partition, wkey))
            root.latest_timestamp = max(root.latest_timestamp, start)
            found.append((wkey[0], WindowRange(start, start + self.window.size_s)))
        if self.closer is not None:
            self.closer.recovered(partition, found, stream_time.read(store))

    def partition_stream_time(self, partition: int) -> float | None:
        if self.closer is None:
            return self._root.latest_timestamp if partition in self.table.partitions else None
        return self.closer.stream_time.get(partition)

    def advance_stream_time(self, partition: int, to: float) -> int:
        """Move `partition`'s stream time to `to` (never back), as an event would,
        emitting the windows that closes; returns how many were emitted."""
        part = self.table.partitions.get(partition)
        if part is None:
            return 0
        root = self._root
        root.latest_timestamp = max(root.latest_timestamp, to)
        closer = self.closer
        if closer is None:
            return 0
        stream_time.write(part, closer.advance(partition, to))
        return closer.emit_closed(partition, self._read_final(part))

    def on_released(self, partition: int) -> None:
        """The partition moved to another worker: forget its windows here."""
        root = self._root
        root._tracked.discard(partition)
        if self.closer is not None:
            self.closer.released(partition)
        for start in list(root._windows):
            keys = {k for k in root._windows[start] if k[0] != partition}
            if keys:
                root._windows[start] = keys
            else:
                del root._windows[start]

    def expire(self, now: float | None = None) -> int:
        """Delete windows that are done; returns keys deleted."""
        root = self._root
        window = self.window
        latest = root.latest_timestamp if now is None else max(now, root.latest_timestamp)
        removed = 0
        closer = self.closer
        for start in sorted(root._windows):
            end = start + window.size_s
            if not window.expired(WindowRange(start, end), latest):
                break
            for number, wkey in root._windows.pop(start):
                if closer is not None and closer.awaits(number, start):
                    # its partition's stream time has not closed it: emit it first
                    root._windows.setdefault(start, set()).add((number, wkey))
                    continue
                part = self.table.partitions.get(number)
                if part is not None and part.get(wkey) is not _DELETED:
                    part.delete(wkey)
                    removed += 1
        return removed

    async def flush(
        self, transport: Transport, batch_bytes_max: int = 1 << 20, append: Append | None = None
    ) -> int:
        return await self.table.flush(transport, batch_bytes_max, append)


_json = get_codec("json")


def _dump_window_key(key: Any) -> bytes:
    """The JSON codec's bytes for a window key: orjson as it is when it can (its
    `default=` costs as much as the encoding), copied to their exact size as the
    codec does; the codec itself for what orjson alone cannot encode."""
    try:
        return memoryview(orjson.dumps(key)).tobytes()
    except TypeError:
        return _json.dumps(key)


def _load_window_key(data: bytes) -> Any:
    """A stored key, `[key, start]` in JSON, as the tuple it was written from."""
    key = orjson.loads(data)
    if (
        key.__class__ is list
        and len(key) == 2
        and key[0].__class__ is not list
        and key[1].__class__ is not list
    ):
        return (key[0], key[1])
    return _hashable(key)


def _as_seconds(value: Any) -> float:
    if value.__class__ is float:
        return value  # type: ignore[no-any-return]
    if hasattr(value, "timestamp"):
        return float(value.timestamp())
    return float(value)


class WindowSet:
    """The windows of one key at the current time; `+=` updates all of them."""

    __slots__ = ("key", "table")

    def __init__(self, key: Any, table: WindowedTable) -> None:
        self.key = key
        self.table = table

    def __iadd__(self, other: Any) -> WindowSet:
        self.table._update(self.key, operator.add, other)
        return self

    def __isub__(self, other: Any) -> WindowSet:
        self.table._update(self.key, operator.sub, other)
        return self

    def __imul__(self, other: Any) -> WindowSet:
        self.table._update(self.key, operator.mul, other)
        return self

    def __itruediv__(self, other: Any) -> WindowSet:
        self.table._update(self.key, operator.truediv, other)
        return self

    def __ior__(self, other: Any) -> WindowSet:
        self.table._update(self.key, operator.or_, other)
        return self

    def __iand__(self, other: Any) -> WindowSet:
        self.table._update(self.key, operator.and_, other)
        return self

    def _at(self, timestamp: float) -> Any:
        return self.table._get(self.key, self.table.window.current(timestamp).start)

    def current(self) -> Any:
        """The value in the newest window containing the table's time."""
        return self._at(self.table.timestamp())

    def now(self) -> Any:
        """The value in the newest window containing the wall clock time."""
        return self._at(time.time())

    def value(self) -> Any:
        return self.current()

    def delta(self, seconds: float) -> Any:
        """The value in the window `seconds` before the current one."""
        ts = self.table.timestamp()
        return self.table._get(self.key, self.table.window.delta(ts, seconds).start)

    def __repr__(self) -> str:
        return f"<WindowSet key={self.key!r} table={self.table.name}>"
