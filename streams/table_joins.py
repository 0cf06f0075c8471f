"""Table-table joins: a derived, changelogged table of two tables joined by key.

    fares = app.Table("fares", key_type=str, value_type=Fare)
    zones = app.Table("zones", key_type=str, value_type=Zone)
    priced = fares.join(zones, how="left", sink=priced_topic)
    priced["a"]                     # (Fare(...), Zone(...)), or (Fare(...), None)

The semantics are Kafka Streams' KTable-KTable join. A write or delete of key k
on either side recomputes row k of the derived table from both sides' current
values, in the partition of the event that wrote it:

| how   | row k exists when        | value                          |
|-------|--------------------------|--------------------------------|
| inner | both sides hold k        | (left, right)                  |
| left  | the left side holds k    | (left, right or None)          |
| outer | either side holds k      | (left or None, right or None)  |

A side's delete (tombstone) deletes the row, or recomputes it with None where
the other side still keeps it. `joiner(left, right)` replaces the pair. Each
recomputed row (None for a deleted one) also goes to `sink`: a topic (a
tombstone for a deletion) or a function of (key, value), the update stream of
the join.

Each row carries the joined timestamp (Kafka Streams': the later of the two
sides' update times, the causing event's time counting for a delete):
`joined.timestamp_of(k)`, and the time of the record sent to a `sink` topic.
Each side's last update time per key lives in a companion table
`<name>-times` (changelogged, so recovery keeps it).

The derived table is a Table like any other: read it, join it again, recover it
from its own changelog `<app>-<name>-changelog` (it is flushed with the sides, and
an event replayed after a crash recomputes its rows again). The three tables must
be co-partitioned (the same partition count and key codec, checked when the
worker starts), since row k is computed where both sides hold k.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from streams.errors import ConfigurationError
from streams.event import current_event
from streams.table import Table

if TYPE_CHECKING:
    from stores.base import Store
    from streams.table import TablePartition
    from streams.topic import Topic

__all__ = ["JoinedTable", "PairCodec", "TableJoinHow", "join_tables"]

TableJoinHow = Literal["inner", "left", "outer"]
_Emit = Callable[[Any, Any, "float | None"], None]
_ABSENT = object()
_NONE_LENGTH = 0xFFFFFFFF


class PairCodec:
    """(left, right) pairs, each side in its own table's value codec: a 4-byte
    big-endian length (0xFFFFFFFF for None) and the bytes, twice."""

    def __init__(self, left: Table, right: Table) -> None:
        self._sides = ((left._dump_value, left._load_value), (right._dump_value, right._load_value))

    def dumps(self, pair: Any) -> bytes:
        out = bytearray()
        for (dump, _), value in zip(self._sides, pair, strict=True):
            if value is None:
                out += struct.pack(">I", _NONE_LENGTH)
            else:
                data = dump(value)
                out += struct.pack(">I", len(data)) + data
        return bytes(out)

    def loads(self, data: bytes) -> tuple[Any, Any]:
        values = []
        pos = 0
        for _, load in self._sides:
            (length,) = struct.unpack_from(">I", data, pos)
            pos += 4
            if length == _NONE_LENGTH:
                values.append(None)
            else:
                values.append(load(data[pos : pos + length]))
                pos += length
        if pos != len(data):
            raise ValueError(f"a joined pair of {len(data)} bytes has {len(data) - pos} left over")
        return values[0], values[1]


class JoinedTable(Table):
    """The derived table of a table-table join (made by `Table.join`)."""

    def __init__(
        self,
        left: Table,
        right: Table,
        *,
        how: TableJoinHow,
        name: str,
        joiner: Callable[[Any, Any], Any] | None,
        value_type: Any,
        sink: Topic | Callable[[Any, Any], Any] | None,
    ) -> None:
        super().__init__(
            left._wiring,
            name,
            key_type=left.key_type,
            value_type=value_type,
            key_serializer=getattr(left._dump_key, "__self__", None),
            value_serializer=PairCodec(left, right) if joiner is None else None,
            partitions=left.changelog._declared_partitions,
        )
        self.left, self.right, self.how = left, right, how
        self._joiner = joiner or _pair
        self._sink = _sink(sink)
        self._checked = False
        # [left time, right time, row time] per key; a side's time is None while
        # that side does not hold the key. Kept apart from the rows, since an inner
        # or left join has no row to keep an unmatched side's time in.
        self.times = Table(
            left._wiring,
            f"{name}-times",
            key_type=left.key_type,
            key_serializer=getattr(left._dump_key, "__self__", None),
            partitions=left.changelog._declared_partitions,
        )
        left.on_change.append(lambda key: self._side_changed(0, key))
        right.on_change.append(lambda key: self._side_changed(1, key))

    def __repr__(self) -> str:
        return f"<JoinedTable {self.name}: {self.left.name} {self.how} join {self.right.name}>"

    def attach(self, partition: int, store: Store) -> TablePartition:
        if not self._checked:  # at start: the partition counts are settled by now
            check_tables_copartitioned(self.left, self.right, self)
            self._checked = True
        return super().attach(partition, store)

    def timestamp_of(self, key: Any) -> float | None:
        """The joined timestamp of row `key`'s last update (its deletion included):
        the later of its sides' update times; None once neither side holds it."""
        times = self.times.get(key)
        return None if times is None else times[2]

    def _side_changed(self, side: int, key: Any) -> None:
        source = (self.left, self.right)[side]
        cause = None
        if isinstance(source, JoinedTable):  # a joined side brings its own row's time
            cause = source.timestamp_of(key)
        if cause is None:
            cause = _event_time()
        times = list(self.times.get(key) or (None, None, None))
        other = times[1 - side]
        known = [t for t in (cause, other) if t is not None]
        times[side] = cause if key in source else None
        times[2] = max(known) if known else None
        # Kept before the row changes: a join of this join reads it then.
        if times[0] is None and times[1] is None:
            self.times.pop(key, None)
        else:
            self.times[key] = times
        self._recompute(key, times[2])

    def _recompute(self, key: Any, timestamp: float | None) -> None:
        left = self.left.get(key, _ABSENT)
        right = self.right.get(key, _ABSENT)
        how = self.how
        if how == "inner":
            keep = left is not _ABSENT and right is not _ABSENT
        elif how == "left":
            keep = left is not _ABSENT
        else:
            keep = left is not _ABSENT or right is not _ABSENT
        if keep:
            value = self._joiner(
                None if left is _ABSENT else left, None if right is _ABSENT else right
            )
            self[key] = value
            self._emit(key, value, timestamp)
        elif key in self:
            del self[key]
            self._emit(key, None, timestamp)

    def _emit(self, key: Any, value: Any, timestamp: float | None) -> None:
        if self._sink is not None:
            self._sink(key, value, timestamp)


def join_tables(
    left: Table,
    right: Table,
    *,
    how: TableJoinHow = "inner",
    name: str | None = None,
    joiner: Callable[[Any, Any], Any] | None = None,
    value_type: Any = None,
    sink: Topic | Callable[[Any, Any], Any] | None = None,
) -> JoinedTable:
    """Declare the derived table of `left` joined with `right` (see the module doc)."""
    if how not in ("inner", "left", "outer"):
        raise ValueError(f"join: how must be 'inner', 'left' or 'outer', got {how!r}")
    for side in (left, right):
        if not isinstance(side, Table) or side.windowed is not None or side.route_by_key:
            raise ConfigurationError(
                f"join: {side!r} is not an app.Table (windowed tables and GlobalTables "
                "cannot be joined with a table)"
            )
    if left is right:
        raise ConfigurationError(f"join: table {left.name!r} cannot be joined with itself")
    if joiner is not None and not callable(joiner):
        raise TypeError(f"join: joiner must be a function of (left, right), not {joiner!r}")
    add_table = left._wiring.add_table
    if add_table is None or right._wiring is not left._wiring:
        raise ConfigurationError("join: both tables must be declared by the same app.Table")
    table = JoinedTable(
        left,
        right,
        how=how,
        name=name or f"{left.name}-{right.name}-join",
        joiner=joiner,
        value_type=value_type,
        sink=sink,
    )
    add_table(table)
    add_table(table.times)
    return table


def check_tables_copartitioned(*tables: Table) -> None:
    """Raise ConfigurationError unless key k lands in one partition number in all."""
    first = tables[0]
    for other in tables[1:]:
        if other.partition_count != first.partition_count:
            raise ConfigurationError(
                f"join of table {first.name!r} with table {other.name!r}: not co-partitioned "
                f"({first.partition_count} partitions against {other.partition_count}); "
                "declare both with the same partitions="
            )
        if other._dump_key != first._dump_key:
            raise ConfigurationError(
                f"join of table {first.name!r} with table {other.name!r}: not co-partitioned "
                "(their keys are encoded by different codecs, so one key hashes to different "
                "partitions); give both the same key_type"
            )


def _pair(left: Any, right: Any) -> tuple[Any, Any]:
    return left, right


def _event_time() -> float | None:
    event = current_event()
    return None if event is None else event.message.timestamp


def _sink(sink: Topic | Callable[[Any, Any], Any] | None) -> _Emit | None:
    from streams.topic import Topic

    if sink is None:
        return None
    if isinstance(sink, Topic):
        topic = sink

        def send(key: Any, value: Any, timestamp: float | None) -> None:
            topic.send_soon(key, value, timestamp=timestamp)

        return send
    if not callable(sink):
        raise TypeError(f"join: sink must be a topic or a function of (key, value), not {sink!r}")
    function = sink

    def call(key: Any, value: Any, timestamp: float | None) -> None:
        function(key, value)

    return call
