"""Session windows: per key, windows that grow while events arrive within `gap`
seconds of each other, and merge when an event bridges two of them.

    visits = app.Table("visits", default=int).session(1800, grace=60)
    visits[user] += 1                    # the event's session, merged as needed
    visits[user].current()               # the value of the event's session
    visits.sessions(user)                # [(start, end, value), ...]

A session is `[start, end]`, both inclusive: the first and the last event time in
it. An event at `t` joins every session of its key with `start - gap <= t <= end +
gap`; they become one session (their values combined with `merge`, oldest first)
holding `t`. Stored keys are `(key, start, end)`: a merge deletes the old sessions
(tombstones in the changelog) and writes the new one, so the changelog restores
exactly the sessions there were.

Stream time is kept per partition (the newest event time seen there). A session
is *closed* once `end + gap + grace < stream time`: no event can join it any more.
An event that would join a closed session, or whose own session would already be
closed, is late: dropped, counted in `late_dropped`, logged at DEBUG (Kafka Streams'
session windows judge lateness the same way). With `emit="final"` each session's
value goes once to `on_final` when it closes, sessions closing first emitted first.
After a restart, stream time resumes from the one recorded in the changelog with
the last commit (streams.stream_time; at least the newest session end in the
store), and the sessions still open are emitted when they close.

`del visits[user]` deletes the session holding the event's time (a tombstone; its
final result is not emitted). `relative_to_now()` and `relative_to_field(f)` are
views sharing the sessions whose events are at the wall clock or at a field's time,
for sessions, stream time and lateness alike; the counters stay on the table.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import logging
import math
import operator
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from streams import stream_time
from streams.codec import get_codec
from streams.errors import ConfigurationError
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
    from streams.table import Table, TablePartition
    from streams.topic import Topic

__all__ = ["SessionSet", "SessionTable", "SessionWindow"]

logger = logging.getLogger(__name__)

_ABSENT = object()
Session = tuple[float, float]  # (start, end), event times in seconds


@dataclass(frozen=True, slots=True)
class SessionWindow:
    gap_s: float
    grace_s: float = 0.0
    expires_s: float | None = None

    def __post_init__(self) -> None:
        gap = float(self.gap_s)
        if not (gap > 0 and gap != float("inf")):
            raise ValueError(f"gap must be a finite number of seconds > 0, got {self.gap_s!r}")
        object.__setattr__(self, "gap_s", gap)
        object.__setattr__(self, "grace_s", check_grace(self.grace_s) or 0.0)
        expires = self.expires_s
        if expires is not None:
            expires = float(expires)
            if not expires >= gap + self.grace_s:
                raise ValueError(
                    f"expires ({self.expires_s}) must be >= gap + grace ({gap + self.grace_s}): "
                    "a session must not be deleted before it closes"
                )
            object.__setattr__(self, "expires_s", expires)

    def closes_at(self, end: float) -> float:
        """The stream time past which a session ending at `end` is closed."""
        return end + self.gap_s + self.grace_s

    def touching(self, sessions: list[Session], t: float) -> tuple[int, int]:
        """`sessions[lo:hi]`: the sessions an event at `t` joins, of a key's sessions
        sorted by start (disjoint, so their ends are sorted too)."""
        gap = self.gap_s
        hi = bisect.bisect_right(sessions, (t + gap, math.inf))
        lo = hi
        while lo > 0 and sessions[lo - 1][1] >= t - gap:
            lo -= 1
        return lo, hi


class _PartitionState:
    """Sessions of one partition: per key, sorted by start; the open ones by close time."""

    __slots__ = ("by_key", "closing", "pending", "stream_time")

    def __init__(self) -> None:
        self.by_key: dict[Any, list[Session]] = {}
        self.closing: list[tuple[float, int, Any, Session]] = []  # heap, lazily pruned
        self.pending: set[tuple[Any, Session]] = set()  # what `closing` holds, once each
        self.stream_time: float | None = None

    def advance(self, t: float) -> float:
        if self.stream_time is None or t > self.stream_time:
            self.stream_time = t
        return self.stream_time


class SessionTable(TimeViews):
    """A table of sessions per key; create with `app.Table(..., default=).session(gap)`."""

    def __init__(
        self,
        table: Table,
        window: SessionWindow,
        *,
        merge: Callable[[Any, Any], Any] = operator.add,
        emit: EmitMode = "update",
        on_final: Topic | FinalSink | None = None,
    ) -> None:
        if table.default is None:
            raise ConfigurationError(
                f"session table {table.name!r} needs default= (the value a new session starts at)"
            )
        check_emit(emit, on_final)
        self.table = table
        self.window = window
        self.name = table.name
        self.merge = merge
        self.on_final = None if on_final is None else final_sink(on_final)
        self.late_dropped = 0
        self.emitted = 0
        self._parts: dict[int, _PartitionState] = {}
        self._seq = itertools.count()
        _store_keys_as_json(table)
        stream_time.install(table)
        table.windowed = self  # the worker drives expire() and recovery through it

    def __repr__(self) -> str:
        return f"<SessionTable {self.name} {self.window}>"

    @property
    def changelog(self) -> Topic:
        return self.table.changelog

    # --- reads ------------------------------------------------------------------

    def __getitem__(self, key: Any) -> SessionSet:
        return SessionSet(key, self)

    def sessions(self, key: Any) -> list[tuple[float, float, Any]]:
        """The sessions of `key` held here, oldest first: (start, end, value)."""
        part = self._state(key)
        return [(s, e, self.table[(key, s, e)]) for s, e in part.by_key.get(key, [])]

    def items(self) -> Iterator[tuple[tuple[Any, float, float], Any]]:
        return self.table.items()

    def __len__(self) -> int:
        return len(self.table)

    def __bool__(self) -> bool:
        return True  # an empty table is still a table (`table.windowed or table`)

    # --- writes -------------------------------------------------------------------

    def __setitem__(self, key: Any, value: Any) -> None:
        if isinstance(value, SessionSet):
            return  # `table[k] += x` already wrote through the SessionSet
        self._update(key, lambda _: value)

    def __delitem__(self, key: Any) -> None:
        """Delete the session of `key` holding the current event's time, if any."""
        t = self.timestamp()
        part = self._state(key)
        sessions = part.by_key.get(key) or []
        for i, (start, end) in enumerate(sessions):
            if start <= t <= end:
                del sessions[i]  # a final pending for it is skipped: no longer held
                del self.table[(key, start, end)]
                return

    def _update(self, key: Any, fn: Callable[[Any], Any]) -> Session | None:
        """Put the current event in its session, set that session's value to
        fn(merged value); the session, or None when the event was late."""
        t = self.timestamp()
        store = self.table._partition((key, 0.0, 0.0))
        number = store.changelog.partition
        part = self._parts.setdefault(number, _PartitionState())
        now = part.advance(t)
        stream_time.write(store, now)
        window = self.window
        sessions = part.by_key.get(key) or []
        lo, hi = window.touching(sessions, t)
        joined = sessions[lo:hi]
        start = min([t, *(s for s, _ in joined)])
        end = max([t, *(e for _, e in joined)])
        if window.closes_at(end) < now or any(window.closes_at(e) < now for _, e in joined):
            self._root.late_dropped += 1
            logger.debug(
                "late event dropped table=%s partition=%d key=%r timestamp=%s stream_time=%s",
                self.name,
                number,
                key,
                t,
                now,
            )
            return None
        table = self.table
        value: Any = _ABSENT
        for s, e in joined:
            old = table[(key, s, e)]
            value = old if value is _ABSENT else self.merge(value, old)
            if (s, e) != (start, end):
                del table[(key, s, e)]
        table[(key, start, end)] = fn(table.default() if value is _ABSENT else value)  # type: ignore[misc]
        sessions[lo:hi] = [(start, end)]
        part.by_key[key] = sessions
        if self.on_final is not None:
            self._pend(part, key, (start, end))
            self._emit_closed(part, store)
        return start, end

    def _pend(self, part: _PartitionState, key: Any, session: Session) -> None:
        if (key, session) not in part.pending:  # an update inside a session changes nothing
            part.pending.add((key, session))
            close = self.window.closes_at(session[1])
            heapq.heappush(part.closing, (close, next(self._seq), key, session))

    def _emit_closed(self, part: _PartitionState, store: TablePartition) -> None:
        from streams.table import _DELETED

        assert self.on_final is not None
        now = part.stream_time
        closing = part.closing
        while closing and now is not None and closing[0][0] < now:
            _, _, key, session = heapq.heappop(closing)
            part.pending.discard((key, session))
            if not _holds(part.by_key.get(key), session):
                continue  # merged into a later session since
            value = store.get((key, *session))
            if value is _DELETED:
                continue
            self.on_final(FinalResult(key, session[0], session[1], value))
            self._root.emitted += 1

    # --- lifecycle (driven by the worker) ------------------------------------------

    def on_recovered(self, partition: int) -> None:
        part = self._parts[partition] = _PartitionState()
        store = self.table.partitions[partition]
        for skey, _ in store.items():
            if not isinstance(skey, tuple):
                continue  # the stream time
            key, start, end = skey
            part.by_key.setdefault(key, []).append((start, end))
            part.advance(end)
        recorded = stream_time.read(store)
        if recorded is not None:
            part.advance(recorded)
        window, now = self.window, part.stream_time
        for key, sessions in part.by_key.items():
            sessions.sort()
            for session in sessions:
                if (
                    self.on_final is not None
                    and now is not None
                    and (window.closes_at(session[1]) >= now)
                ):
                    self._pend(part, key, session)

    def on_released(self, partition: int) -> None:
        self._parts.pop(partition, None)

    def partition_stream_time(self, partition: int) -> float | None:
        part = self._parts.get(partition)
        return None if part is None else part.stream_time

    def advance_stream_time(self, partition: int, to: float) -> int:
        """Move `partition`'s stream time to `to` (never back), as an event would,
        emitting the sessions that closes; returns how many were emitted."""
        store = self.table.partitions.get(partition)
        if store is None:
            return 0
        part = self._parts.setdefault(partition, _PartitionState())
        stream_time.write(store, part.advance(to))
        before = self.emitted
        if self.on_final is not None:
            self._emit_closed(part, store)
        return self.emitted - before

    def expire(self, now: float | None = None) -> int:
        """Delete sessions that ended more than `expires` before stream time."""
        expires = self.window.expires_s
        if expires is None:
            return 0
        removed = 0
        for number, part in self._parts.items():
            latest = part.stream_time if now is None else now
            if latest is None or number not in self.table.partitions:
                continue
            store = self.table.partitions[number]
            for key in list(part.by_key):
                sessions = part.by_key[key]
                gone = [s for s in sessions if s[1] + expires < latest]
                for s in gone:
                    store.delete((key, *s))
                    removed += 1
                if gone:
                    rest = [s for s in sessions if s not in gone]
                    if rest:
                        part.by_key[key] = rest
                    else:
                        del part.by_key[key]
        return removed

    async def flush(self, transport: Transport, batch_bytes_max: int = 1 << 20) -> int:
        return await self.table.flush(transport, batch_bytes_max)

    def _state(self, key: Any) -> _PartitionState:
        number = self.table._partition((key, 0.0, 0.0)).changelog.partition
        return self._parts.setdefault(number, _PartitionState())


def _holds(sessions: list[Session] | None, session: Session) -> bool:
    if not sessions:
        return False
    i = bisect.bisect_left(sessions, session)
    return i < len(sessions) and sessions[i] == session


def _store_keys_as_json(table: Table) -> None:
    """Stored keys are JSON [key, start, end], routed by the key alone."""
    from streams.table import _hashable

    route_key = table._route_key
    json_codec = get_codec("json")
    table._route_key = lambda skey: route_key(skey[0])
    table._dump_key = json_codec.dumps
    table._load_key = lambda data: _hashable(json_codec.loads(data))
    for part in table.partitions.values():
        part.dump_key, part.load_key = table._dump_key, table._load_key


class SessionSet:
    """The sessions of one key; `+=` (and the other in-place operators) update the
    event's session."""

    __slots__ = ("key", "table")

    def __init__(self, key: Any, table: SessionTable) -> None:
        self.key = key
        self.table = table

    def _apply(self, op: Callable[[Any, Any], Any], operand: Any) -> SessionSet:
        self.table._update(self.key, lambda value: op(value, operand))
        return self

    def __iadd__(self, other: Any) -> SessionSet:
        return self._apply(operator.add, other)

    def __isub__(self, other: Any) -> SessionSet:
        return self._apply(operator.sub, other)

    def __imul__(self, other: Any) -> SessionSet:
        return self._apply(operator.mul, other)

    def __ior__(self, other: Any) -> SessionSet:
        return self._apply(operator.or_, other)

    def __iand__(self, other: Any) -> SessionSet:
        return self._apply(operator.and_, other)

    def current(self) -> Any:
        """The value of the session holding the current event's time, else None."""
        t = self.table.timestamp()
        for start, end, value in self.table.sessions(self.key):
            if start <= t <= end:
                return value
        return None

    def __repr__(self) -> str:
        return f"<SessionSet key={self.key!r} table={self.table.name}>"
