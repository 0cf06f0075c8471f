"""Stream-table joins: each event enriched with a table's current value.

    async for ride, zone in rides_stream.join(zones):            # inner
    async for ride, zone in rides_stream.join(zones, how="left") # zone None if absent
    async for ride, zone in rides_stream.join(zone_globals, key=lambda r: r.zone)
    async for ride, zone in rides_stream.join(zones, key=lambda r: r.zone, repartition=True)

A join with an `app.Table` looks the event's own key up in the event's own
partition, so the stream and the table must be co-partitioned: the same
partition count and keys encoded the same way (the same key codec hashes a key
to the same partition). That is checked when the join is made, before any event,
and a mismatch raises ConfigurationError naming both sides; `group_by` the stream
on the table's key to fix it, or ask the join to: `repartition=True` sends the
stream through `<app>-<agent>-<table>-repartition`, keyed by the event's key (or
`key(value)`) and partitioned like the table, and joins what comes out. A join
with a GlobalTable reads the whole table held by this worker, so it takes any key
(`key=` extracts it from the value) and needs no co-partitioning.

The lookup happens as the event is read: the result is the table's value at that
point in the stream (Kafka Streams' KStream-KTable semantics), not a later one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, Literal

from streams.errors import ConfigurationError
from streams.event import Event

if TYPE_CHECKING:
    from streams.stream import Stream
    from streams.table import Table

__all__ = ["JoinedStream", "check_copartitioned"]

JoinHow = Literal["inner", "left"]
_ABSENT = object()


def check_copartitioned(stream: Stream, table: Table) -> None:
    """Raise ConfigurationError unless events of `stream` with key k land in the
    partition of `table` that holds k."""
    source = stream.source
    if source is None:
        raise ConfigurationError(f"join with table {table.name!r}: the stream has no source topic")
    if source.partitions != table.partition_count:
        raise ConfigurationError(
            f"join of topic {source.name!r} with table {table.name!r}: not co-partitioned "
            f"(the topic has {source.partitions} partitions, the table "
            f"{table.partition_count}); declare them with the same count, join with "
            "repartition=True (through a repartition topic partitioned like the table), "
            "or use a GlobalTable"
        )
    if source.key_codec.dumps != table._dump_key:
        raise ConfigurationError(
            f"join of topic {source.name!r} with table {table.name!r}: not co-partitioned "
            f"(the topic's keys are encoded by {_codec_name(source.key_codec.dumps)}, the "
            f"table's by {_codec_name(table._dump_key)}, so one key hashes to different "
            "partitions); give both the same key_type, or join with repartition=True"
        )


def _codec_name(dumps: Callable[[Any], bytes]) -> str:
    owner = getattr(dumps, "__self__", None)
    return type(owner).__name__ if owner is not None else getattr(dumps, "__qualname__", "?")


class JoinedStream:
    """The events of a stream paired with a table's value: `(value, table_value)`."""

    def __init__(
        self,
        stream: Stream,
        table: Table,
        *,
        how: JoinHow = "inner",
        key: Callable[[Any], Any] | None = None,
    ) -> None:
        if how not in ("inner", "left"):
            raise ValueError(f"join: how must be 'inner' or 'left', got {how!r}")
        if getattr(table, "windowed", None) is not None or not hasattr(table, "route_by_key"):
            raise ConfigurationError(
                f"join: {table!r} is not a Table or GlobalTable (windowed tables cannot be joined)"
            )
        if table.route_by_key:
            self._lookup_key: Callable[[Event], Any] = (
                (lambda event: event.key) if key is None else (lambda event: key(event.value))
            )
        else:
            if key is not None:
                raise ConfigurationError(
                    f"join with table {table.name!r}: key= needs a GlobalTable; a Table is "
                    "looked up by the event's key (group_by the stream to re-key it)"
                )
            check_copartitioned(stream, table)
            self._lookup_key = lambda event: event.key
        self.stream = stream
        self.table = table
        self.how = how

    def __repr__(self) -> str:
        return f"<JoinedStream {self.stream!r} {self.how} join {self.table.name}>"

    def _lookup(self, event: Event) -> Any:
        value = self.table.get(self._lookup_key(event), _ABSENT)
        return None if value is _ABSENT and self.how == "left" else value

    async def events(self) -> AsyncIterator[tuple[Event, Any]]:
        """(event, table_value) for each event kept by the join."""
        if not self.table.route_by_key:
            async for pair in self._copartitioned_events():
                yield pair
            return
        async for event in self.stream.events():
            table_value = self._lookup(event)
            if table_value is _ABSENT:
                continue  # inner join: no table value for this key yet
            yield event, table_value

    async def _copartitioned_events(self) -> AsyncIterator[tuple[Event, Any]]:
        """events() with a Table: the key is in the table partition numbered like
        the event's (co-partitioned, checked when the join was made), so the
        lookup neither hashes the key nor asks for the current event."""
        from streams.table import _DELETED

        partitions, absent = self.table.partitions, None if self.how == "left" else _ABSENT
        async for event in self.stream.events():
            batch = event._batch  # the partition without building the event's Message
            part = partitions.get(event.message.partition if batch is None else batch.partition)
            if part is None:
                table_value = self._lookup(event)  # raises, naming the unassigned partition
            else:
                table_value = part.get(event.key)
                if table_value is _DELETED:
                    table_value = absent
            if table_value is _ABSENT:
                continue  # inner join: no table value for this key yet
            yield event, table_value

    def __aiter__(self) -> AsyncIterator[tuple[Any, Any]]:
        return self._pairs()

    async def _pairs(self) -> AsyncIterator[tuple[Any, Any]]:
        async for event, table_value in self.events():
            yield event.value, table_value

    async def items(self) -> AsyncIterator[tuple[Any, tuple[Any, Any]]]:
        """(key, (value, table_value)), the event's key as read."""
        async for event, table_value in self.events():
            yield event.key, (event.value, table_value)
