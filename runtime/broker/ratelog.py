"""Log a repeated message once per interval, with how often it happened.

A client that repeats a mistake thousands of times a second (bad frames,
connections over a limit) or a kernel out of file descriptors must not fill the
disk with the same line. The first occurrence of a key is logged at once; later
ones within `interval_s` are only counted, and the count goes out with the next
line of that key after the interval, or at `flush()`.

A stand-in for the shared helper (runtime/logs.py) another branch adds: the same
idea, kept to what the broker needs, to be merged into it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass


@dataclass(slots=True)
class _Key:
    last_logged_s: float
    suppressed: int
    level: int
    message: str
    args: tuple[object, ...]


class RateLimitedLog:
    """One logger's repeated messages, each key at most once per `interval_s`."""

    def __init__(
        self,
        logger: logging.Logger,
        interval_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if interval_s < 0:
            raise ValueError(f"interval_s must be >= 0, got {interval_s}")
        self._logger = logger
        self._interval_s = interval_s
        self._clock = clock
        self._keys: dict[Hashable, _Key] = {}
        self._lock = threading.Lock()  # to_thread callers log from worker threads

    def log(
        self, key: Hashable, level: int, message: str, *args: object, exc_info: bool = False
    ) -> None:
        """Log `message % args` unless `key` was logged less than an interval ago
        (with the exception being handled, if exc_info, when it is logged)."""
        now = self._clock()
        with self._lock:
            entry = self._keys.get(key)
            if entry is not None and now - entry.last_logged_s < self._interval_s:
                entry.suppressed += 1
                entry.level, entry.message, entry.args = level, message, args
                return
            suppressed = entry.suppressed if entry is not None else 0
            self._keys[key] = _Key(now, 0, level, message, args)
        self._emit(level, message, args, suppressed, exc_info=exc_info)

    def warning(self, key: Hashable, message: str, *args: object) -> None:
        self.log(key, logging.WARNING, message, *args)

    def flush(self, *, force: bool = False) -> None:
        """Log the counts held back for an interval (all of them, if `force`: at
        shutdown); keys quiet for an interval are forgotten."""
        now = self._clock()
        pending = []
        with self._lock:
            for key, entry in list(self._keys.items()):
                due = force or now - entry.last_logged_s >= self._interval_s
                if entry.suppressed and due:
                    pending.append((entry.level, entry.message, entry.args, entry.suppressed))
                    self._keys[key] = _Key(now, 0, entry.level, entry.message, entry.args)
                elif not entry.suppressed and now - entry.last_logged_s >= self._interval_s:
                    del self._keys[key]
        for level, message, args, suppressed in pending:
            self._emit(level, message, args, suppressed)

    def _emit(
        self,
        level: int,
        message: str,
        args: tuple[object, ...],
        suppressed: int,
        *,
        exc_info: bool = False,
    ) -> None:
        if suppressed:
            message += " (%d more since the last such line)"
            args = (*args, suppressed)
        self._logger.log(level, message, *args, exc_info=exc_info)
