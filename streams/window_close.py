"""When windows close: a grace period for late events and final-result emission.

Stream time is kept per partition: the largest event time a windowed table has
seen in that partition. A window `[start, end)` is *closed* once
`end + grace <= stream time`. An event whose window is closed does not update it:
the update is dropped, counted in `late_dropped` (one per window skipped) and
logged at DEBUG. With `emit="final"` each window's value is handed once to the
`on_final` sink (a function, or a topic) when its partition's stream time closes it,
oldest window first. Kafka Streams' window grace and `suppress(untilWindowCloses)`
behave the same way.

Invariants:
- stream time per partition never goes back;
- a window is emitted at most once per run of a worker, and only once closed;
- after a restart, stream time resumes from the stream time recorded in the
  changelog with the last commit's window changes (streams.stream_time), and
  windows still open by that time are emitted when they close. Under
  exactly_once that record and the final results are in one transaction, so a
  crash neither loses nor repeats a final result; under at_least_once, results
  emitted after the last commit are emitted again (to a function sink, on_final
  is a side effect outside any transaction: it may see a result again on either).
"""

from __future__ import annotations

import inspect
import logging
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from streams.window import WindowRange

if TYPE_CHECKING:
    from streams.topic import Topic

__all__ = ["EmitMode", "FinalResult", "WindowCloser", "make_closer"]

logger = logging.getLogger(__name__)

EmitMode = Literal["update", "final"]
FinalSink = Callable[["FinalResult"], Any]


@dataclass(frozen=True, slots=True)
class FinalResult:
    """A closed window's last value: what `emit="final"` hands to `on_final`."""

    key: Any
    start: float
    end: float
    value: Any

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key, "start": self.start, "end": self.end, "value": self.value}


def check_grace(grace: float | None) -> float | None:
    if grace is None:
        return None
    value = float(grace)
    if not (value >= 0 and math.isfinite(value)):
        raise ValueError(f"grace must be a finite number of seconds >= 0, got {grace!r}")
    return value


def final_sink(on_final: Topic | FinalSink) -> FinalSink:
    """A function taking a FinalResult: `on_final` itself, or a send to a topic
    keyed by the window's key, the value `FinalResult.as_dict()`, at the window's end."""
    from streams.topic import Topic

    if isinstance(on_final, Topic):
        topic = on_final

        def send(result: FinalResult) -> None:
            topic.send_soon(key=result.key, value=result.as_dict(), timestamp=result.end)

        return send
    if not callable(on_final):
        raise TypeError(f"on_final must be a topic or a function, not {on_final!r}")
    if inspect.iscoroutinefunction(on_final):
        raise TypeError(
            "on_final runs inside the table update and cannot be awaited: pass a plain "
            "function, or a topic to send the results to"
        )
    return on_final


def check_emit(emit: EmitMode, on_final: Topic | FinalSink | None) -> None:
    """`emit` and `on_final` go together: a final result needs somewhere to go."""
    if emit not in ("update", "final"):
        raise ValueError(f"emit must be 'update' or 'final', got {emit!r}")
    if emit == "final" and on_final is None:
        raise ValueError("emit='final' needs on_final= (a function or a topic)")
    if emit == "update" and on_final is not None:
        raise ValueError("on_final= needs emit='final'")


def make_closer(
    grace: float | None,
    emit: EmitMode,
    on_final: Topic | FinalSink | None,
    expires: float | None,
) -> WindowCloser | None:
    """The closer for a windowed table's settings; None keeps the old behaviour
    (every event applied, however late)."""
    check_emit(emit, on_final)
    grace_s = check_grace(grace)
    if emit == "final":
        grace_s = grace_s or 0.0
        if expires is not None and expires < grace_s:
            raise ValueError(
                f"expires ({expires}) must be >= grace ({grace_s}): a window must not be "
                "deleted before it closes and its final value is emitted"
            )
    if grace_s is None:
        return None
    return WindowCloser(grace_s, None if on_final is None else final_sink(on_final))


class WindowCloser:
    """Stream time per partition, the open windows awaiting emission, late drops."""

    def __init__(self, grace_s: float, on_final: FinalSink | None = None) -> None:
        self.grace_s = grace_s
        self.on_final = on_final
        self.stream_time: dict[int, float] = {}
        self.late_dropped = 0
        self.emitted = 0
        # partition -> window start -> (end, keys in first-write order)
        self._open: dict[int, dict[float, tuple[float, dict[Any, None]]]] = {}

    def __repr__(self) -> str:
        return f"<WindowCloser grace={self.grace_s} final={self.on_final is not None}>"

    def advance(self, partition: int, timestamp: float) -> float:
        """Stream time of `partition` after an event at `timestamp`."""
        now = self.stream_time.get(partition)
        if now is None or timestamp > now:
            self.stream_time[partition] = now = timestamp
        return now

    def admit(
        self,
        partition: int,
        key: Any,
        timestamp: float,
        ranges: Sequence[WindowRange],
        table: str,
    ) -> list[WindowRange]:
        """The windows of `ranges` still open; the others are counted and logged."""
        now = self.advance(partition, timestamp)
        closes_before = now - self.grace_s
        kept = [rng for rng in ranges if rng.end > closes_before]
        dropped = len(ranges) - len(kept)
        if dropped:
            self.late_dropped += dropped
            logger.debug(
                "late event dropped table=%s partition=%d key=%r timestamp=%s "
                "stream_time=%s grace=%s windows=%d",
                table,
                partition,
                key,
                timestamp,
                now,
                self.grace_s,
                dropped,
            )
        return kept

    def opened(self, partition: int, key: Any, rng: WindowRange) -> None:
        """`key`'s window `rng` was written: emit it when it closes."""
        if self.on_final is None:
            return
        windows = self._open.setdefault(partition, {})
        entry = windows.get(rng.start)
        if entry is None:
            entry = windows[rng.start] = (rng.end, {})
        entry[1][key] = None

    def awaits(self, partition: int, start: float) -> bool:
        """True while the window starting at `start` waits for its final emission
        (expiry, judged by the newest event of any partition, must keep it)."""
        return self.on_final is not None and start in self._open.get(partition, {})

    def emit_closed(self, partition: int, read: Callable[[Any, float], Any]) -> int:
        """Hand every window of `partition` closed by its stream time to on_final,
        oldest first; `read(key, start)` gives a window's value (or raises KeyError
        when it is gone). Returns how many were emitted."""
        windows = self._open.get(partition)
        now = self.stream_time.get(partition)
        if not windows or now is None or self.on_final is None:
            return 0
        emitted = 0
        for start in sorted(windows):
            end, keys = windows[start]
            if end + self.grace_s > now:
                break
            del windows[start]
            for key in keys:
                try:
                    value = read(key, start)
                except KeyError:
                    continue  # deleted by the user before it closed
                self.on_final(FinalResult(key, start, end, value))
                emitted += 1
        self.emitted += emitted
        return emitted

    def recovered(
        self,
        partition: int,
        windows: Iterable[tuple[Any, WindowRange]],
        stream_time: float | None = None,
    ) -> None:
        """Rebuild `partition`'s state from the windows in its recovered store and
        the stream time recorded with them (what this object knew of it before is
        not the changelog's: forget it)."""
        self.released(partition)
        found = list(windows)
        if stream_time is not None:
            self.advance(partition, stream_time)
        if not found:
            return
        self.advance(partition, max(rng.start for _, rng in found))
        now = self.stream_time[partition]
        for key, rng in sorted(found, key=lambda item: item[1].start):
            if rng.end + self.grace_s > now:
                self.opened(partition, key, rng)

    def released(self, partition: int) -> None:
        """The partition went to another worker: its windows are emitted there."""
        self.stream_time.pop(partition, None)
        self._open.pop(partition, None)
