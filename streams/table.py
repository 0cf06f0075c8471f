"""Tables: dicts partitioned like the stream that writes them, kept in stores
and backed by a compacted changelog topic `<app>-<table>-changelog`.

A write goes to the partition of the event being processed (so a table fed
by `group_by(key)` holds each key in exactly one partition); outside an event,
to the partition Kafka's partitioner picks for the key.

Writes are buffered per partition (`dirty`) and flushed by the worker before
it commits: one changelog batch per partition, then one atomic store write
that also records the changelog offset, so a restart replays only the tail.
"""

from __future__ import annotations

import logging
import operator
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from runtime.log.records import encode_batch
from runtime.partitioner import partition_for_key
from runtime.types import TopicPartition
from stores.base import Store
from streams.codec import Codec, get_codec
from streams.event import current_event
from streams.sessions import SessionTable, SessionWindow
from streams.topic import Topic, codec_for_type, loader_for
from streams.window import HoppingWindow, TumblingWindow, Window, WindowRange
from streams.window_close import EmitMode, FinalSink, WindowCloser, make_closer

if TYPE_CHECKING:
    from runtime.transport import Transport
    from streams.wiring import Wiring

logger = logging.getLogger(__name__)

_MISSING = object()
_DELETED = object()
CACHE_ENTRIES_MAX = 200_000


class TablePartition:
    """One partition of a table: its store, a read cache, unflushed writes."""

    __slots__ = (
        "cache",
        "changelog",
        "dirty",
        "dump_key",
        "dump_value",
        "load_key",
        "load_value",
        "store",
    )

    def __init__(
        self,
        store: Store,
        changelog: TopicPartition,
        dump_key: Callable[[Any], bytes],
        load_key: Callable[[bytes], Any],
        dump_value: Callable[[Any], bytes],
        load_value: Callable[[bytes], Any],
    ) -> None:
        self.store = store
        self.changelog = changelog
        self.cache: dict[Any, Any] = {}
        self.dirty: dict[Any, Any] = {}
        self.dump_key, self.load_key = dump_key, load_key
        self.dump_value, self.load_value = dump_value, load_value

    def get(self, key: Any) -> Any:
        value = self.cache.get(key, _MISSING)
        if value is _MISSING:
            raw = self.store.get(self.dump_key(key))
            value = _DELETED if raw is None else self.load_value(raw)
            self.cache[key] = value
        return value

    def set(self, key: Any, value: Any) -> None:
        self.cache[key] = value
        self.dirty[key] = value

    def delete(self, key: Any) -> None:
        self.cache[key] = _DELETED
        self.dirty[key] = _DELETED

    def items(self) -> Iterator[tuple[Any, Any]]:
        dirty = self.dirty
        load_key, load_value = self.load_key, self.load_value
        for raw_key, raw_value in self.store.items():
            key = load_key(raw_key)
            if key in dirty:
                continue
            yield key, load_value(raw_value)
        for key, value in list(dirty.items()):
            if value is not _DELETED:
                yield key, value

    async def flush(self, transport: Transport, batch_bytes_max: int) -> int:
        """Write the dirty entries to the changelog, then to the store."""
        if not self.dirty:
            return 0
        dirty, self.dirty = self.dirty, {}
        now_ms = int(time.time() * 1000)
        dump_key, dump_value = self.dump_key, self.dump_value
        records = [
            (dump_key(k), None if v is _DELETED else dump_value(v), now_ms, ())
            for k, v in dirty.items()
        ]
        start = 0
        while start < len(records):
            end, size = start, 0
            while end < len(records) and (end == start or size < batch_bytes_max // 2):
                key, value = records[end][0], records[end][1]
                size += len(key) + (len(value) if value else 0) + 32
                end += 1
            chunk = records[start:end]
            base = await transport.append(self.changelog, encode_batch(chunk))
            self.store.apply({k: v for k, v, _, _ in chunk}, base + len(chunk) - 1)
            start = end
        if len(self.cache) > CACHE_ENTRIES_MAX:
            self.cache.clear()
        return len(records)


class Table:
    """A partitioned dict with a changelog. Create with `app.Table(...)`."""

    def __init__(
        self,
        wiring: Wiring,
        name: str,
        *,
        default: Callable[[], Any] | None = None,
        key_type: Any = None,
        value_type: Any = None,
        key_serializer: str | Codec | None = None,
        value_serializer: str | Codec | None = None,
        partitions: int | None = None,
        store: str | None = None,
        help: str = "",
    ) -> None:
        self._wiring = wiring
        self.name = name
        self.default = default
        self.help = help
        self.store_url = store
        self.key_type, self.value_type = key_type, value_type
        # A table's keys are encoded like a topic's with the same key_type, so
        # that a key read outside an event hashes to the partition the topic
        # (and group_by, whose keys are JSON) put it in.
        key_codec = codec_for_type(key_type, key_serializer)
        value_codec = codec_for_type(value_type, value_serializer or "json")
        self._dump_key = key_codec.dumps
        self._load_key: Callable[[bytes], Any] = loader_for(key_type, key_codec)
        if key_codec is get_codec("json"):
            load_json_key = self._load_key
            self._load_key = lambda data: _hashable(load_json_key(data))
        # What the partitioner hashes when no event says which partition.
        self._route_key: Callable[[Any], bytes] = self._dump_key
        self._dump_value = value_codec.dumps
        self._load_value = loader_for(value_type, value_codec)
        self.changelog = Topic(
            wiring,
            f"{wiring.app_id}-{name}-changelog",
            partitions=partitions,
            config={"cleanup.policy": "compact"},
            internal=True,
        )
        self.partitions: dict[int, TablePartition] = {}
        self.recovered_records = 0
        self.route_by_key = False
        self.windowed: WindowedTable | SessionTable | None = None

    def __repr__(self) -> str:
        return f"<Table {self.name} partitions={sorted(self.partitions)}>"

    @property
    def partition_count(self) -> int:
        return self.changelog.partitions

    # --- lifecycle (driven by the worker) -------------------------------------

    def attach(self, partition: int, store: Store) -> TablePartition:
        part = TablePartition(
            store,
            TopicPartition(self.changelog.name, partition),
            self._dump_key,
            self._load_key,
            self._dump_value,
            self._load_value,
        )
        self.partitions[partition] = part
        return part

    def detach(self, partition: int) -> Store | None:
        """Stop serving `partition` here (its writes must be flushed); its store."""
        part = self.partitions.pop(partition, None)
        return None if part is None else part.store

    def on_recovered(self, partition: int) -> None:
        """Hook for subclasses: the partition's store is up to date."""

    async def flush(self, transport: Transport, batch_bytes_max: int = 1 << 20) -> int:
        written = 0
        for part in self.partitions.values():
            written += await part.flush(transport, batch_bytes_max)
        return written

    def close(self) -> None:
        for part in self.partitions.values():
            part.store.close()
        self.partitions.clear()

    # --- routing ------------------------------------------------------------

    def _partition(self, key: Any) -> TablePartition:
        event = None if self.route_by_key else current_event()
        if event is not None:
            number = event.message.partition
        else:
            number = partition_for_key(self._route_key(key), self.partition_count)
        part = self.partitions.get(number)
        if part is None:
            raise KeyError(
                f"table {self.name!r}: partition {number} is not assigned to this worker"
                + ("" if self.partitions else " (is the worker running?)")
            )
        return part

    # --- dict interface ------------------------------------------------------
    # __getitem__/__setitem__ inline _partition (for the event's partition) and
    # TablePartition.get/set (on a cache hit): `table[key] += 1` runs per event.

    def __getitem__(self, key: Any) -> Any:
        event = None if self.route_by_key else current_event()
        part = None if event is None else self.partitions.get(event.message.partition)
        if part is None:
            part = self._partition(key)
        value = part.cache.get(key, _MISSING)
        if value is _MISSING:
            value = part.get(key)
        if value is _DELETED:
            if self.default is None:
                raise KeyError(key)
            return self.default()
        return value

    def __setitem__(self, key: Any, value: Any) -> None:
        event = None if self.route_by_key else current_event()
        part = None if event is None else self.partitions.get(event.message.partition)
        if part is None:
            part = self._partition(key)
        part.cache[key] = value
        part.dirty[key] = value

    def __delitem__(self, key: Any) -> None:
        part = self._partition(key)
        if part.get(key) is _DELETED:
            raise KeyError(key)
        part.delete(key)

    def __contains__(self, key: object) -> bool:
        return self._partition(key).get(key) is not _DELETED

    def get(self, key: Any, default: Any = None) -> Any:
        value = self._partition(key).get(key)
        return default if value is _DELETED else value

    def pop(self, key: Any, *default: Any) -> Any:
        part = self._partition(key)
        value = part.get(key)
        if value is _DELETED:
            if default:
                return default[0]
            raise KeyError(key)
        part.delete(key)
        return value

    def items(self) -> Iterator[tuple[Any, Any]]:
        for number in sorted(self.partitions):
            yield from self.partitions[number].items()

    def keys(self) -> Iterator[Any]:
        for key, _ in self.items():
            yield key

    def values(self) -> Iterator[Any]:
        for _, value in self.items():
            yield value

    def __iter__(self) -> Iterator[Any]:
        return self.keys()

    def __len__(self) -> int:
        return sum(1 for _ in self.items())

    def as_dict(self) -> dict[Any, Any]:
        return dict(self.items())

    # --- windows ---------------------------------------------------------------

    def tumbling(
        self,
        size: float,
        *,
        expires: float | None = None,
        grace: float | None = None,
        emit: EmitMode = "update",
        on_final: Topic | FinalSink | None = None,
    ) -> WindowedTable:
        """Windows of `size` seconds; see streams.window_close for grace and emit."""
        window = TumblingWindow(float(size), _seconds(expires))
        return WindowedTable(self, window, closer=make_closer(grace, emit, on_final, expires))

    def hopping(
        self,
        size: float,
        step: float,
        *,
        expires: float | None = None,
        grace: float | None = None,
        emit: EmitMode = "update",
        on_final: Topic | FinalSink | None = None,
    ) -> WindowedTable:
        window = HoppingWindow(float(size), float(step), _seconds(expires))
        return WindowedTable(self, window, closer=make_closer(grace, emit, on_final, expires))

    def session(
        self,
        gap: float,
        *,
        grace: float = 0.0,
        expires: float | None = None,
        merge: Callable[[Any, Any], Any] = operator.add,
        emit: EmitMode = "update",
        on_final: Topic | FinalSink | None = None,
    ) -> SessionTable:
        """Session windows per key; see streams.sessions."""
        window = SessionWindow(gap, grace, expires)
        return SessionTable(self, window, merge=merge, emit=emit, on_final=on_final)


class GlobalTable(Table):
    """A table every worker holds whole: reads and writes route by key."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.route_by_key = True


def _seconds(value: float | None) -> float | None:
    return None if value is None else float(value)


# --- windowed tables -----------------------------------------------------------


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
        # Stored keys are JSON [key, start]; they route by the key alone, so a
        # window read outside an event finds the partition its writes went to.
        route_key = table._route_key
        json_codec = get_codec("json")
        table._route_key = lambda wkey: route_key(wkey[0])
        table._dump_key = json_codec.dumps
        table._load_key = lambda data: _hashable(json_codec.loads(data))
        for part in table.partitions.values():
            part.dump_key, part.load_key = table._dump_key, table._load_key
        self._windows: dict[float, set[tuple[int, Any]]] = {}
        self.latest_timestamp = 0.0
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
        return self._view(lambda value: _as_seconds(getter(value)))

    def _view(self, relative_to: str | Callable[[Any], float]) -> WindowedTable:
        view = WindowedTable.__new__(WindowedTable)
        view.__dict__.update(self.__dict__)
        view._relative_to = relative_to
        view._shared = self
        return view

    @property
    def _root(self) -> WindowedTable:
        return self.__dict__.get("_shared", self)

    def timestamp(self) -> float:
        """The time windows are chosen by: the event's, now, or a field's."""
        rel = self._relative_to
        event = current_event()
        if rel == "now" or event is None:
            return time.time()
        if rel == "stream":
            return event.message.timestamp
        return rel(event.value)  # type: ignore[operator]

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
        ranges = self.window.ranges(ts)
        closer = self.closer
        if closer is None:
            return ranges
        number = self.table._partition((key, 0.0)).changelog.partition
        kept = closer.admit(number, key, ts, ranges, self.name)
        for rng in kept:
            closer.opened(number, key, rng)
        return kept

    def _emit_closed(self, key: Any) -> None:
        closer = self.closer
        if closer is not None and closer.on_final is not None:
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
        found = []
        for wkey, _ in self.table.partitions[partition].items():
            start = wkey[1]
            root._windows.setdefault(start, set()).add((partition, wkey))
            root.latest_timestamp = max(root.latest_timestamp, start)
            found.append((wkey[0], WindowRange(start, start + self.window.size_s)))
        if self.closer is not None:
            self.closer.recovered(partition, found)

    def on_released(self, partition: int) -> None:
        """The partition moved to another worker: forget its windows here."""
        root = self._root
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

    async def flush(self, transport: Transport, batch_bytes_max: int = 1 << 20) -> int:
        return await self.table.flush(transport, batch_bytes_max)


def _hashable(key: Any) -> Any:
    """JSON gives lists back for tuple keys; dict keys must be hashable."""
    if isinstance(key, list):
        return tuple(_hashable(k) for k in key)
    return key


def _as_seconds(value: Any) -> float:
    if hasattr(value, "timestamp"):
        return float(value.timestamp())
    return float(value)


class WindowSet:
    """The windows of one key at the current time; `+=` updates all of them."""

    __slots__ = ("key", "table")

    def __init__(self, key: Any, table: WindowedTable) -> None:
        self.key = key
        self.table = table

    def _apply(self, op: Callable[[Any, Any], Any], operand: Any) -> WindowSet:
        table = self.table
        ts = table.timestamp()
        for rng in table._open_ranges(self.key, ts):
            table._set(self.key, rng.start, op(table._get(self.key, rng.start), operand), ts)
        table._emit_closed(self.key)
        return self

    def __iadd__(self, other: Any) -> WindowSet:
        return self._apply(lambda a, b: a + b, other)

    def __isub__(self, other: Any) -> WindowSet:
        return self._apply(lambda a, b: a - b, other)

    def __imul__(self, other: Any) -> WindowSet:
        return self._apply(lambda a, b: a * b, other)

    def __itruediv__(self, other: Any) -> WindowSet:
        return self._apply(lambda a, b: a / b, other)

    def __ior__(self, other: Any) -> WindowSet:
        return self._apply(lambda a, b: a | b, other)

    def __iand__(self, other: Any) -> WindowSet:
        return self._apply(lambda a, b: a & b, other)

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
