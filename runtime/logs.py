"""Rate-limited logging: one line per kind of event per interval, with a count.

An error that repeats per request (a full disk under a producer, a client over
a limit) would otherwise write a line, or a traceback, per request. A
`RateLimitedLog` writes the first occurrence of each key at once, counts the
ones that follow, and writes the next occurrence after `interval_s` with
`repeated=N` (how many were not written since the last line):

    storage_errors = RateLimitedLog(logger, interval_s=10.0)
    storage_errors.warning(("produce", tp), "produce failed topic=%s error=%s", tp.topic, exc)

Invariants:
- at most one line per key per `interval_s` (by the injected monotonic clock);
- no occurrence goes uncounted: each line's `repeated` covers every call since
  the previous line of that key, and `flush()` writes the counts still pending;
- at most `keys_max` keys are remembered; the oldest is forgotten first (its
  pending count is written then, so nothing is lost silently).

Thread-safe: the broker's log thread and the event loop may share one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass

__all__ = ["RateLimitedLog"]

INTERVAL_S = 10.0
KEYS_MAX = 1024


@dataclass(slots=True)
class _Seen:
    last_s: float
    repeated: int
    level: int
    msg: str
    args: tuple[object, ...]


class RateLimitedLog:
    """Writes to `logger` at most once per key per `interval_s`, counting the rest."""

    def __init__(
        self,
        logger: logging.Logger,
        interval_s: float = INTERVAL_S,
        *,
        keys_max: int = KEYS_MAX,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if interval_s < 0:
            raise ValueError(f"interval_s must be >= 0, got {interval_s}")
        if keys_max < 1:
            raise ValueError(f"keys_max must be >= 1, got {keys_max}")
        self._logger = logger
        self._interval_s = interval_s
        self._keys_max = keys_max
        self._clock = clock
        self._lock = threading.Lock()
        self._seen: OrderedDict[Hashable, _Seen] = OrderedDict()

    def log(
        self, level: int, key: Hashable, msg: str, *args: object, exc_info: bool = False
    ) -> bool:
        """Log `msg % args` unless `key` was logged less than interval_s ago; True if written
        (with the exception being handled, if exc_info).

        A written line ends with ` repeated=N` when N earlier calls were held back."""
        now = self._clock()
        evicted: _Seen | None = None
        with self._lock:
            seen = self._seen.get(key)
            if seen is not None and now - seen.last_s < self._interval_s:
                seen.repeated += 1
                seen.level, seen.msg, seen.args = level, msg, args
                return False
            repeated = 0 if seen is None else seen.repeated
            self._seen[key] = _Seen(now, 0, level, msg, args)
            self._seen.move_to_end(key)
            if len(self._seen) > self._keys_max:
                _, evicted = self._seen.popitem(last=False)
        if evicted is not None and evicted.repeated:
            self._write(evicted)
        self._write(_Seen(now, repeated, level, msg, args), exc_info=exc_info)
        return True

    def warning(self, key: Hashable, msg: str, *args: object) -> bool:
        return self.log(logging.WARNING, key, msg, *args)

    def error(self, key: Hashable, msg: str, *args: object) -> bool:
        return self.log(logging.ERROR, key, msg, *args)

    def flush(self, *, due_only: bool = False) -> int:
        """Write held-back counts; returns how many lines. All of them (at shutdown), or
        with due_only those whose key was last written an interval ago or more (called
        periodically, so a count does not wait for the key's next occurrence); keys
        quiet for an interval are forgotten."""
        now = self._clock()
        pending = []
        with self._lock:
            for key, seen in list(self._seen.items()):
                due = not due_only or now - seen.last_s >= self._interval_s
                if seen.repeated and due:
                    pending.append(seen)
                    self._seen[key] = _Seen(now, 0, seen.level, seen.msg, seen.args)
                elif not due_only or now - seen.last_s >= self._interval_s:
                    del self._seen[key]
            if not due_only:
                self._seen.clear()
        for seen in pending:
            self._write(seen)
        return len(pending)

    def _write(self, seen: _Seen, *, exc_info: bool = False) -> None:
        if seen.repeated:
            self._logger.log(
                seen.level, seen.msg + " repeated=%d", *seen.args, seen.repeated, exc_info=exc_info
            )
        else:
            self._logger.log(seen.level, seen.msg, *seen.args, exc_info=exc_info)
