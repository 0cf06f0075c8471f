"""Tables: dicts partitioned like the stream that writes them, kept in stores
and backed by a compacted changelog topic `<app>-<table>-changelog`.

A write goes to the partition of the event being processed (so a table fed
by `group_by(key)` holds each key in exactly one partition); outside an event,
to the partition Kafka's partitioner picks for the key.

Writes are buffered per partition (`dirty`) and flushed by the worker before
it commits: one changelog batch per partition, then one atomic store write
that also records the changelog offset, so a restart replays only the tail.

Under exactly_once the changelog batches go through the worker's transaction
(`append`), and the store writes wait (`pending`) until it commits: a store
never holds, nor records the offset of, a write of a transaction that may
still abort. After an abort `discard_uncommitted()` drops them, the unflushed
writes and the read cache, which leaves the store as the last commit left it.
"""

from __future__ import annotations

import logging
import operator
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any

from runtime.log.records import OutRecord, encode_batch
from runtime.partitioner import partition_for_key
from runtime.types import TopicPartition
from stores.base import Store
from streams.codec import Codec, get_codec
from streams.event import Event, current_event_or_cursor, current_partition
from streams.sessions import SessionTable, SessionWindow
from streams.topic import Topic, codec_for_type, loader_for
from streams.window import HoppingWindow, TumblingWindow
from streams.window_close import EmitMode, FinalSink, make_closer

if TYPE_CHECKING:
    from runtime.transport import Transport
    from streams.sliding import SlidingTable
    from streams.table_joins import JoinedTable, TableJoinHow
    from streams.windowed import WindowedTable
    from streams.wiring import Wiring

logger = logging.getLogger(__name__)

_MISSING = object()
_DELETED = object()
_NOT_HERE: tuple[object, Any] = (object(), None)  # matches no event's batch
_current_event = current_event_or_cursor
CACHE_ENTRIES_MAX = 200_000

Append = Callable[[TopicPartition, list[OutRecord]], Awaitable[int]]


class TablePartition:
    """One partition of a table: its store, a read cache, unflushed writes."""

    __slots__ = (
        "cache",
        "changelog",
        "dirty",
        "dump_key",
        "dump_value",
        "flushing",
        "load_key",
        "load_value",
        "pending",
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
        # Taken from dirty by a flush that is writing them; until the store has
        # them, items() reads them from here (the changelog append may be slow).
        self.flushing: dict[Any, Any] = {}
        # Flushed in a transaction not committed yet: (store writes, last changelog offset).
        self.pending: list[tuple[dict[bytes, bytes | None], int]] = []
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
        dirty = {**self.flushing, **self.dirty} if self.flushing else self.dirty
        load_key, load_value = self.load_key, self.load_value
        pending: dict[bytes, bytes | None] = {}  # flushed, the store takes them at commit
        for writes, _ in self.pending:
            pending.update(writes)
        for raw_key, raw_value in self.store.items():
            if raw_key in pending:
                continue
            key = load_key(raw_key)
            if key in dirty:
                continue
            yield key, load_value(raw_value)
        for raw_key, raw_value in pending.items():
            key = load_key(raw_key)
            if raw_value is not None and key not in dirty:
                yield key, load_value(raw_value)
        for key, value in list(dirty.items()):
            if value is not _DELETED:
                yield key, value

    async def flush(
        self, transport: Transport, batch_bytes_max: int, append: Append | None = None
    ) -> int:
        """Write the dirty entries to the changelog, then to the store (with
        `append`, a transaction's: to `pending`, for apply_pending())."""
        if not self.dirty:
            return 0
        dirty, self.dirty = self.dirty, {}
        self.flushing = dirty
        try:
            return await self._write(dirty, transport, batch_bytes_max, append)
        finally:
            self.flushing = {}

    async def _write(
        self,
        dirty: dict[Any, Any],
        transport: Transport,
        batch_bytes_max: int,
        append: Append | None,
    ) -> int:
        records = self.changelog_records(dirty)
        for chunk in _chunks(records, batch_bytes_max // 2):
            writes = {k: v for k, v, _, _ in chunk}
            base = await self.append_chunk(chunk, transport, append)
            if append is None:
                self.store.apply(writes, base + len(chunk) - 1)
            else:
                self.pending.append((writes, base + len(chunk) - 1))
        if append is None and len(self.cache) > CACHE_ENTRIES_MAX:
            self.cache = dict(self.dirty)  # what this flush wrote is in the store now
        return len(records)

    def changelog_records(self, dirty: dict[Any, Any]) -> list[OutRecord]:
        now_ms = int(time.time() * 1000)
        dump_key, dump_value = self.dump_key, self.dump_value
        return [
            (dump_key(k), None if v is _DELETED else dump_value(v), now_ms, ())
            for k, v in dirty.items()
        ]

    async def append_chunk(
        self, chunk: list[OutRecord], transport: Transport, append: Append | None
    ) -> int:
        """Append to the changelog (in the transaction's `append` if any); the base offset."""
        if append is None:
            return await transport.append(self.changelog, encode_batch(chunk))
        return await append(self.changelog, chunk)

    def apply_pending(self) -> None:
        """The transaction of the pending writes committed: into the store."""
        for writes, offset in self.pending:
            self.store.apply(writes, offset)
        self.pending = []
        if len(self.cache) > CACHE_ENTRIES_MAX:
            # Writes not in the store yet are only in the cache, `dirty` and
            # `flushing`: a cache emptied of them would read the store's older value.
            self.cache = {**self.flushing, **self.dirty}

    def discard_uncommitted(self) -> None:
        """The transaction aborted: forget what it and the unflushed writes held."""
        self.pending = []
        self.dirty = {}
        self.cache = {}


def _chunks(records: list[OutRecord], bytes_max: int) -> list[list[OutRecord]]:
    """Consecutive runs of about `bytes_max` bytes (at least one record each)."""
    chunks: list[list[OutRecord]] = []
    start = 0
    while start < len(records):
        end, size = start, 0
        while end < len(records) and (end == start or size < bytes_max):
            key, value = records[end][0], records[end][1]
            size += len(key or b"") + (len(value) if value else 0) + 32
            end += 1
        chunks.append(records[start:end])
        start = end
    return chunks


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
        # The batch of events whose table partition was looked up last, and that
        # partition: (_NO_BATCH, None) when nothing is noted (see _part_here).
        self._here: tuple[object, Any] = _NOT_HERE
        self.recovered_records = 0
        self.route_by_key = False
        self.windowed: WindowedTable | SessionTable | SlidingTable | None = None
        # Keys a windowed table keeps for itself (stream time, buffered records).
        self.hidden_key: Callable[[Any], bool] | None = None
        # Called with a key after each write or delete of it (table joins).
        self.on_change: list[Callable[[Any], None]] = []

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
        self._here = _NOT_HERE
        return part

    def detach(self, partition: int) -> Store | None:
        """Stop serving `partition` here (its writes must be flushed); its store."""
        self._here = _NOT_HERE
        part = self.partitions.pop(partition, None)
        return None if part is None else part.store

    def on_recovered(self, partition: int) -> None:
        """Hook for subclasses: the partition's store is up to date."""

    async def flush(
        self, transport: Transport, batch_bytes_max: int = 1 << 20, append: Append | None = None
    ) -> int:
        written = 0
        for part in self.partitions.values():
            written += await part.flush(transport, batch_bytes_max, append)
        return written

    def apply_pending(self) -> None:
        for part in self.partitions.values():
            part.apply_pending()

    def discard_uncommitted(self) -> None:
        for part in self.partitions.values():
            part.discard_uncommitted()
        if self.windowed is not None:  # what windows know in memory: back to the store's
            for p in list(self.partitions):
                self.windowed.on_released(p)
                self.windowed.on_recovered(p)

    def close(self) -> None:
        for part in self.partitions.values():
            part.store.close()
        self.partitions.clear()
        self._here = _NOT_HERE

    # --- routing ------------------------------------------------------------

    def _partition(self, key: Any) -> TablePartition:
        number = None if self.route_by_key else current_partition()
        if number is None:
            number = partition_for_key(self._route_key(key), self.partition_count)
        part = self.partitions.get(number)
        if part is None:
            raise KeyError(
                f"table {self.name!r}: partition {number} is not assigned to this worker"
                + ("" if self.partitions else " (is the worker running?)")
            )
        return part

    def partition_for(self, key: Any) -> int:
        """The partition `key` is in when no event says (a read outside an event)."""
        route = (key, 0.0) if self.windowed is not None else key  # windows route by key
        return partition_for_key(self._route_key(route), self.partition_count)

    def _part_here(self, key: Any) -> TablePartition:
        """The partition of the event being processed (else the key's), noted
        for the next reads and writes of events of the same batch."""
        if self.route_by_key:
            return self._partition(key)
        event = _current_event()
        if event.__class__ is Event and event._batch is not None:  # type: ignore[union-attr]
            batch = event._batch  # type: ignore[union-attr]
            part = self.partitions.get(batch.partition)
            if part is not None:
                self._here = (batch, part)
                return part
        else:
            number = current_partition()
            part = None if number is None else self.partitions.get(number)
            if part is not None:
                return part
        return self._partition(key)

    # --- dict interface ------------------------------------------------------
    # __getitem__/__setitem__ inline _part_here's memo (the partition of the
    # current event's batch) and TablePartition.get/set (on a cache hit):
    # `table[key] += 1` runs per event.

    def __getitem__(self, key: Any) -> Any:
        event = _current_event()
        here = self._here
        if event.__class__ is Event and event._batch is here[0]:  # type: ignore[union-attr]
            part = here[1]
        else:
            part = self._part_here(key)
        value = part.cache.get(key, _MISSING)
        if value is _MISSING:
            value = part.get(key)
        if value is _DELETED:
            if self.default is None:
                raise KeyError(key)
            return self.default()
        return value

    def __setitem__(self, key: Any, value: Any) -> None:
        event = _current_event()
        here = self._here
        if event.__class__ is Event and event._batch is here[0]:  # type: ignore[union-attr]
            part = here[1]
        else:
            part = self._part_here(key)
        part.cache[key] = value
        part.dirty[key] = value
        if self.on_change:
            self._changed(key)

    def _changed(self, key: Any) -> None:
        for fn in self.on_change:
            fn(key)

    def __delitem__(self, key: Any) -> None:
        part = self._partition(key)
        if part.get(key) is _DELETED:
            raise KeyError(key)
        part.delete(key)
        if self.on_change:
            self._changed(key)

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
        if self.on_change:
            self._changed(key)
        return value

    def items(self) -> Iterator[tuple[Any, Any]]:
        hidden = self.hidden_key
        for number in sorted(self.partitions):
            for item in self.partitions[number].items():
                if hidden is None or not hidden(item[0]):
                    yield item

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

    # --- joins ------------------------------------------------------------------

    def join(
        self,
        other: Table,
        *,
        how: TableJoinHow = "inner",
        name: str | None = None,
        joiner: Callable[[Any, Any], Any] | None = None,
        value_type: Any = None,
        sink: Topic | Callable[[Any, Any], Any] | None = None,
    ) -> JoinedTable:
        """A derived table of this one joined with `other` by key; see streams.table_joins."""
        from streams.table_joins import join_tables

        return join_tables(
            self, other, how=how, name=name, joiner=joiner, value_type=value_type, sink=sink
        )

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
        from streams.windowed import WindowedTable

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
        from streams.windowed import WindowedTable

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

    def sliding(
        self,
        size: float,
        *,
        grace: float = 0.0,
        expires: float | None = None,
        emit: EmitMode = "update",
        on_final: Topic | FinalSink | None = None,
    ) -> SlidingTable:
        """Sliding windows of `size` seconds (Kafka Streams'); see streams.sliding."""
        from streams.sliding import SlidingTable, SlidingWindow

        window = SlidingWindow(size, grace, expires)
        return SlidingTable(self, window, emit=emit, on_final=on_final)


class GlobalTable(Table):
    """A table every worker holds whole: reads and writes route by key."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.route_by_key = True

    def attach(self, partition: int, store: Store) -> TablePartition:
        """A partition followed on every worker (see streams.global_table)."""
        from streams.global_table import GlobalPartition

        part = GlobalPartition(
            store,
            TopicPartition(self.changelog.name, partition),
            self._dump_key,
            self._load_key,
            self._dump_value,
            self._load_value,
        )
        self.partitions[partition] = part
        self._here = _NOT_HERE
        return part


def _seconds(value: float | None) -> float | None:
    return None if value is None else float(value)


def _hashable(key: Any) -> Any:
    """JSON gives lists back for tuple keys; dict keys must be hashable."""
    if isinstance(key, list):
        return tuple(_hashable(k) for k in key)
    return key
