"""Stream time kept in a windowed table's own changelog.

A windowed table with a grace period records each partition's stream time under
one reserved key of that partition's store (`STREAM_TIME_KEY`, never a window's
key: those are lists). It is written with the table's other changes, so it is
flushed and committed with them: in the same transaction as the final results
under exactly_once. After a crash the partition resumes from the stream time of
its last commit, so the windows that commit had closed (and emitted) stay closed,
and late events are judged as they were before the crash.

The value is not encoded by the table's value codec (a model, say, could not hold
a float): it is stored behind a prefix no codec of this project writes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from streams.table import Table, TablePartition

__all__ = ["STREAM_TIME_KEY", "StreamTime", "install", "is_hidden", "read", "write"]

STREAM_TIME_KEY = "~stream-time"
_PREFIX = b"\x00\x00streams:stream-time:"


@dataclass(frozen=True, slots=True)
class StreamTime:
    seconds: float


def is_hidden(key: Any) -> bool:
    """True for the keys of a windowed store that are not windows."""
    return not isinstance(key, tuple)


def install(table: Table, hidden: Callable[[Any], bool] = is_hidden) -> None:
    """Let `table`'s partitions hold a StreamTime next to their values, and keep
    it (and what `hidden` says) out of the table's items()."""
    dump, load = table._dump_value, table._load_value
    if getattr(dump, "_stream_time", False):
        return

    def dump_value(value: Any) -> bytes:
        if isinstance(value, StreamTime):
            return _PREFIX + repr(value.seconds).encode()
        return dump(value)

    def load_value(data: bytes) -> Any:
        if data.startswith(_PREFIX):
            return StreamTime(float(data[len(_PREFIX) :]))
        return load(data)

    dump_value._stream_time = True  # type: ignore[attr-defined]
    table._dump_value, table._load_value = dump_value, load_value
    table.hidden_key = hidden
    for part in table.partitions.values():
        part.dump_value, part.load_value = dump_value, load_value


def write(part: TablePartition, seconds: float) -> None:
    held = part.cache.get(STREAM_TIME_KEY)
    if isinstance(held, StreamTime) and held.seconds == seconds:
        return  # an event that did not move stream time: no changelog record
    part.set(STREAM_TIME_KEY, StreamTime(seconds))


def read(part: TablePartition) -> float | None:
    """The partition's recorded stream time, if any."""
    from streams.table import _DELETED

    value = part.get(STREAM_TIME_KEY)
    return None if value is _DELETED or not isinstance(value, StreamTime) else value.seconds
