"""Sliding windows (Kafka Streams' SlidingWindows, KIP-450): one window per distinct
record time, each aggregating the records of the last `size` seconds.

    recent = app.Table("recent", default=int).sliding(10, grace=5)
    recent[user] += 1                    # every window holding the event's time
    recent[user].current()               # the aggregate over [t - 10, t], t the event's time
    recent.windows(user)                 # [(start, end, value), ...]

A window is `[start, end]`, both ends inclusive, `end - start == size`, at the
millisecond resolution of record timestamps. A record at `t` makes its *left*
window `[t - size, t]`, and the *right* window `[t + 1ms, t + 1ms + size]` of each
record at `p` exists once a record falls in it. So the windows are exactly the
distinct sets of records `size` apart; a window is created when its first record
arrives, with the aggregate of the buffered records it holds, and updated by each
later record it holds. Aggregates fold the records in arrival order from
`default()`, with the operator the agent applied (`+=`, `-=`, `*=`, `/=`, `|=`,
`&=`, or `=`).

Stream time is kept per partition. A window is closed once `end + grace < stream
time`; a closed window is not updated nor created. A record no open window can
hold (`t + size + grace < stream time`) is late: dropped, counted in
`late_dropped`, logged at DEBUG. With `emit="final"` each window's value goes once
to `on_final` when it closes (`FinalResult.end` is the inclusive end).

The records are buffered in the table's store (so a window created after a
restart sees the records before it) until no open window can hold them. Windows
are deleted `expires` seconds after their end (default `size + grace`). Stored
window keys are `(key, start)`; the buffered records and the stream time are kept
out of `items()`.

`del recent[user]` forgets the key: its windows and buffered records (tombstones;
pending finals are not emitted), so later records start from `default()` (a
window is the fold of the records it holds, so deleting only some windows would
leave the others and the next ones inconsistent). `relative_to_now()` and
`relative_to_field(f)` are views sharing the data whose records are at the wall
clock or at a field's time, stream time and lateness included.
"""

from __future__ import annotations

import bisect
import logging
import operator
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from streams import stream_time
from streams.errors import ConfigurationError
from streams.sessions import _store_keys_as_json
from streams.table_time import TimeViews
from streams.window_close import (
    EmitMode,
    FinalResult,
    FinalSink,
    check_emit,
    check_grace,
    final_sink,
)

if TYPE_CHECKING:
    from runtime.transport import Transport
    from streams.table import Append, Table, TablePartition
    from streams.topic import Topic

__all__ = ["SlidingSet", "SlidingTable", "SlidingWindow"]

logger = logging.getLogger(__name__)

OPS: dict[str, Callable[[Any, Any], Any]] = {
    "add": operator.add,
    "sub": operator.sub,
    "mul": operator.mul,
    "truediv": operator.truediv,
    "or": operator.or_,
    "and": operator.and_,
    "set": lambda _, new: new,
}
Record = tuple[int, int, str, Any]  # (time ms, arrival seq, op, operand)


def _ms(seconds: float) -> int:
    return round(float(seconds) * 1000)


@dataclass(frozen=True, slots=True)
class SlidingWindow:
    size_s: float
    grace_s: float = 0.0
    expires_s: float | None = None

    def __post_init__(self) -> None:
        size = float(self.size_s)
        if not (size >= 0.001 and size != float("inf")):
            raise ValueError(f"size must be a finite number of seconds >= 0.001, got {size!r}")
        grace = check_grace(self.grace_s) or 0.0
        expires = size + grace if self.expires_s is None else float(self.expires_s)
        if not expires >= grace:
            raise ValueError(
                f"expires ({self.expires_s}) must be >= grace ({grace}): a window must not "
                "be deleted before it closes"
            )
        object.__setattr__(self, "size_s", size)
        object.__setattr__(self, "grace_s", grace)
        object.__setattr__(self, "expires_s", expires)

    @property
    def size_ms(self) -> int:
        return _ms(self.size_s)

    @property
    def grace_ms(self) -> int:
        return _ms(self.grace_s)


@dataclass(slots=True)
class _Partition:
    """One partition's windows, buffered records and stream time (milliseconds)."""

    stream_time: int | None = None
    records: dict[Any, list[Record]] = field(default_factory=dict)  # sorted by (t, seq)
    windows: dict[Any, list[int]] = field(default_factory=dict)  # sorted window starts
    pending: dict[tuple[int, int], dict[Any, None]] = field(default_factory=dict)
    seq: int = 0

    def advance(self, t: int) -> int:
        if self.stream_time is None or t > self.stream_time:
            self.stream_time = t
        return self.stream_time


def _hidden(key: Any) -> bool:
    return not (isinstance(key, tuple) and len(key) == 2)


class SlidingTable(TimeViews):
    """A table of sliding windows; create with `app.Table(..., default=).sliding(size)`."""

    def __init__(
        self,
        table: Table,
        window: SlidingWindow,
        *,
        emit: EmitMode = "update",
        on_final: Topic | FinalSink | None = None,
    ) -> None:
        if table.default is None:
            raise ConfigurationError(
                f"sliding table {table.name!r} needs default= (the value a window starts at)"
            )
        check_emit(emit, on_final)
        self.table = table
        self.window = window
        self.name = table.name
        self.on_final = None if on_final is None else final_sink(on_final)
        self.late_dropped = 0
        self.emitted = 0
        self._parts: dict[int, _Partition] = {}
        _store_keys_as_json(table)
        stream_time.install(table, _hidden)
        table.windowed = self

    def __repr__(self) -> str:
        return f"<SlidingTable {self.name} {self.window}>"

    @property
    def changelog(self) -> Topic:
        return self.table.changelog

    # --- reads ------------------------------------------------------------------

    def __getitem__(self, key: Any) -> SlidingSet:
        return SlidingSet(key, self)

    def windows(self, key: Any) -> list[tuple[float, float, Any]]:
        """The windows of `key` held here, oldest first: (start, end, value)."""
        _, part = self._state(key)
        size = self.window.size_ms
        return [
            (s / 1000, (s + size) / 1000, self.table[(key, s / 1000)])
            for s in part.windows.get(key, [])
        ]

    def aggregate_at(self, key: Any, t: float) -> Any:
        """The aggregate over `[t - size, t]`: the stored window ending at `t` if
        there is one, else the fold of the buffered records in that span."""
        _, part = self._state(key)
        end = _ms(t)
        start = end - self.window.size_ms
        starts = part.windows.get(key, [])
        i = bisect.bisect_left(starts, start)
        if i < len(starts) and starts[i] == start:
            return self.table[(key, start / 1000)]
        return self._fold(part.records.get(key, []), start, end)

    def items(self) -> Iterator[tuple[tuple[Any, float], Any]]:
        return self.table.items()

    def __len__(self) -> int:
        return len(self.table)

    def __bool__(self) -> bool:
        return True  # an empty table is still a table (`table.windowed or table`)

    def partition_stream_time(self, partition: int) -> float | None:
        t = self._parts[partition].stream_time if partition in self._parts else None
        return None if t is None else t / 1000

    # --- writes -------------------------------------------------------------------

    def __setitem__(self, key: Any, value: Any) -> None:
        if isinstance(value, SlidingSet):
            return  # `table[k] += x` already wrote through the SlidingSet
        self._update(key, "set", value)

    def __delitem__(self, key: Any) -> None:
        """Forget `key` here: its windows and its buffered records (tombstones)."""
        store, part = self._state(key)
        for start in part.windows.pop(key, []):  # a final pending for one is skipped
            store.delete((key, start / 1000))
        for t, seq, op, _ in part.records.pop(key, []):
            store.delete((key, t / 1000, seq, op))

    def _update(self, key: Any, op: str, operand: Any) -> None:
        from streams.table import _DELETED

        t = _ms(self.timestamp())
        store, part = self._state(key)
        now = part.advance(t)
        stream_time.write(store, now / 1000)
        size, close = self.window.size_ms, now - self.window.grace_ms
        if t + size < close:
            self._root.late_dropped += 1
            logger.debug(
                "late event dropped table=%s partition=%d key=%r timestamp=%s stream_time=%s",
                self.name,
                store.changelog.partition,
                key,
                t / 1000,
                now / 1000,
            )
            self._emit_closed(part, store)
            return
        records = part.records.setdefault(key, [])
        starts = part.windows.setdefault(key, [])
        fn = OPS[op]
        for start in self._windows_holding(records, starts, t):
            if start + size < close:
                continue  # closed: not updated, nor created
            wkey = (key, start / 1000)
            i = bisect.bisect_left(starts, start)
            if i < len(starts) and starts[i] == start:
                value = store.get(wkey)  # the partition's own: no routing per window
                if value is _DELETED:
                    value = self.table.default()  # type: ignore[misc]
            else:
                starts.insert(i, start)
                value = self._fold(records, start, start + size)
                self._pend(part, key, start)
            store.set(wkey, fn(value, operand))
        right = t + 1
        if (
            not _holds(starts, right)
            and right + size >= close
            and self._fold_count(records, right, right + size)  # records after t, in size
        ):
            bisect.insort(starts, right)
            store.set((key, right / 1000), self._fold(records, right, right + size))
            self._pend(part, key, right)
        seq = part.seq
        part.seq += 1
        bisect.insort(records, (t, seq, op, operand), key=lambda r: (r[0], r[1]))
        store.set((key, t / 1000, seq, op), operand)
        self._emit_closed(part, store)

    def _windows_holding(self, records: list[Record], starts: list[int], t: int) -> list[int]:
        """The starts of every window that holds `t` once a record at `t` is in:
        the existing ones, its own left window, and the right windows of the
        records in `[t - size - 1ms, t)`."""
        size = self.window.size_ms
        found = set(starts[bisect.bisect_left(starts, t - size) : bisect.bisect_right(starts, t)])
        found.add(t - size)
        lo = bisect.bisect_left(records, t - size - 1, key=lambda r: r[0])
        hi = bisect.bisect_left(records, t, key=lambda r: r[0])
        found.update(r[0] + 1 for r in records[lo:hi])
        return sorted(found)

    def _fold(self, records: list[Record], start: int, end: int) -> Any:
        lo = bisect.bisect_left(records, start, key=lambda r: r[0])
        hi = bisect.bisect_right(records, end, key=lambda r: r[0])
        value = self.table.default()  # type: ignore[misc]
        for _, _, op, operand in sorted(records[lo:hi], key=lambda r: r[1]):
            value = OPS[op](value, operand)
        return value

    @staticmethod
    def _fold_count(records: list[Record], start: int, end: int) -> int:
        lo = bisect.bisect_left(records, start, key=lambda r: r[0])
        return bisect.bisect_right(records, end, key=lambda r: r[0]) - lo

    def _pend(self, part: _Partition, key: Any, start: int) -> None:
        if self.on_final is not None:
            end = start + self.window.size_ms
            part.pending.setdefault((end, start), {})[key] = None

    def _emit_closed(self, part: _Partition, store: TablePartition) -> int:
        """Hand each window closed by stream time to on_final, closing first first."""
        from streams.table import _DELETED

        if self.on_final is None or part.stream_time is None or not part.pending:
            return 0
        close, size = part.stream_time - self.window.grace_ms, self.window.size_ms
        emitted = 0
        for end, start in sorted(part.pending):
            if end >= close:
                break
            for key in part.pending.pop((end, start)):
                if not _holds(part.windows.get(key, []), start):
                    continue
                value = store.get((key, start / 1000))
                if value is _DELETED:
                    continue
                self.on_final(FinalResult(key, start / 1000, (start + size) / 1000, value))
                emitted += 1
        self._root.emitted += emitted
        return emitted

    # --- lifecycle (driven by the worker and the test driver) ------------------------

    def advance_stream_time(self, partition: int, to: float) -> int:
        """Move `partition`'s stream time to `to` (never back), as a record would,
        emitting the windows that closes; returns how many were emitted."""
        store = self.table.partitions.get(partition)
        if store is None:
            return 0
        part = self._parts.setdefault(partition, _Partition())
        now = part.advance(_ms(to))
        stream_time.write(store, now / 1000)
        return self._emit_closed(part, store)

    def on_recovered(self, partition: int) -> None:
        store = self.table.partitions[partition]
        part = self._parts[partition] = _Partition()
        latest: int | None = None
        for skey, value in store.items():
            if isinstance(value, stream_time.StreamTime):
                continue
            if len(skey) == 2:
                part.windows.setdefault(skey[0], []).append(_ms(skey[1]))
            else:
                key, t, seq, op = skey
                part.records.setdefault(key, []).append((_ms(t), seq, op, value))
                part.seq = max(part.seq, seq + 1)
                latest = _ms(t) if latest is None else max(latest, _ms(t))
        recorded = stream_time.read(store)
        part.stream_time = _ms(recorded) if recorded is not None else latest
        for records in part.records.values():
            records.sort(key=lambda r: (r[0], r[1]))
        close = (part.stream_time or 0) - self.window.grace_ms
        for key, starts in part.windows.items():
            starts.sort()
            for start in starts:
                if part.stream_time is None or start + self.window.size_ms >= close:
                    self._pend(part, key, start)

    def on_released(self, partition: int) -> None:
        self._parts.pop(partition, None)

    def expire(self, now: float | None = None) -> int:
        """Delete the windows `expires` past their end and the records no open
        window can hold any more; returns the keys deleted."""
        removed = 0
        for number, part in self._parts.items():
            store = self.table.partitions.get(number)
            latest = part.stream_time if now is None else max(_ms(now), part.stream_time or 0)
            if store is None or latest is None:
                continue
            removed += self._expire_partition(store, part, latest)
        return removed

    def _expire_partition(self, store: TablePartition, part: _Partition, latest: int) -> int:
        size, grace = self.window.size_ms, self.window.grace_ms
        expires = _ms(self.window.expires_s or 0.0)
        removed = 0
        for key, starts in list(part.windows.items()):
            gone = [s for s in starts if s + size + expires < latest]
            for s in gone:
                if (s + size, s) in part.pending and key in part.pending[(s + size, s)]:
                    continue  # not emitted yet (closes only by this partition's time)
                store.delete((key, s / 1000))
                starts.remove(s)
                removed += 1
            if not starts:
                del part.windows[key]
        for key, records in list(part.records.items()):
            keep = [r for r in records if r[0] + size + grace >= latest]
            for t, seq, op, _ in records[: len(records) - len(keep)]:
                store.delete((key, t / 1000, seq, op))
                removed += 1
            if keep:
                part.records[key] = keep
            else:
                del part.records[key]
        return removed

    async def flush(
        self, transport: Transport, batch_bytes_max: int = 1 << 20, append: Append | None = None
    ) -> int:
        return await self.table.flush(transport, batch_bytes_max, append)

    def _state(self, key: Any) -> tuple[TablePartition, _Partition]:
        store = self.table._partition((key, 0.0))
        number = store.changelog.partition
        return store, self._parts.setdefault(number, _Partition())


def _holds(starts: list[int], start: int) -> bool:
    i = bisect.bisect_left(starts, start)
    return i < len(starts) and starts[i] == start


class SlidingSet:
    """The sliding windows of one key; `+=` (and the other in-place operators)
    update every window holding the event's time."""

    __slots__ = ("key", "table")

    def __init__(self, key: Any, table: SlidingTable) -> None:
        self.key = key
        self.table = table

    def _apply(self, op: str, operand: Any) -> SlidingSet:
        self.table._update(self.key, op, operand)
        return self

    def __iadd__(self, other: Any) -> SlidingSet:
        return self._apply("add", other)

    def __isub__(self, other: Any) -> SlidingSet:
        return self._apply("sub", other)

    def __imul__(self, other: Any) -> SlidingSet:
        return self._apply("mul", other)

    def __itruediv__(self, other: Any) -> SlidingSet:
        return self._apply("truediv", other)

    def __ior__(self, other: Any) -> SlidingSet:
        return self._apply("or", other)

    def __iand__(self, other: Any) -> SlidingSet:
        return self._apply("and", other)

    def _time(self) -> float:
        return self.table.timestamp()

    def current(self) -> Any:
        """The aggregate over the `size` up to the current event's time."""
        return self.table.aggregate_at(self.key, self._time())

    def value(self) -> Any:
        return self.current()

    def now(self) -> Any:
        """The aggregate over the `size` up to the wall clock's time."""
        return self.table.aggregate_at(self.key, time.time())

    def delta(self, seconds: float) -> Any:
        """The aggregate over the `size` up to `seconds` before the event's time."""
        return self.table.aggregate_at(self.key, self._time() - seconds)

    def __repr__(self) -> str:
        return f"<SlidingSet key={self.key!r} table={self.table.name}>"
