"""Retention and compaction over a log's partitions: on demand, or every interval
in a daemon thread.

A pass never holds the Log's lock: it works partition by partition under each
one's maintenance lock (partition.py), so appends and reads wait for no more
than a segment-list swap. A failing disk (StorageError) is logged at most once
per interval and retried at the next pass; a closed log ends the thread.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from runtime.errors import LogClosedError, StorageError
from runtime.log.cleaner import clean_partition
from runtime.log.partition import Partition
from runtime.logs import RateLimitedLog

logger = logging.getLogger("runtime.log.manager")
_errors = RateLimitedLog(logger, interval_s=300.0)


class Maintenance:
    def __init__(
        self,
        partitions: Callable[[], list[Partition]],
        clock: Callable[[], float],
        path: Path | None,
    ) -> None:
        self._partitions = partitions  # raises LogClosedError once the log is closed
        self._clock = clock
        self._path = path
        self._lock = threading.Lock()
        self._stop: threading.Event | None = None
        self._thread: threading.Thread | None = None

    def enforce_retention(self) -> int:
        now_ms = self._clock() * 1000
        return sum(p.enforce_retention(now_ms) for p in self._partitions())

    def compact(self, should_stop: Callable[[], bool] = lambda: False) -> int:
        now_ms = self._clock() * 1000
        reclaimed = 0
        for partition in self._partitions():
            if should_stop():
                break
            if partition.config.compacts:
                reclaimed += clean_partition(partition, now_ms, should_stop)
        return reclaimed

    def start(self, interval_s: float) -> None:
        if interval_s <= 0:
            raise ValueError(f"interval_s must be > 0, got {interval_s}")
        with self._lock:
            if self._thread is not None:
                return
            stop = threading.Event()
            thread = threading.Thread(
                target=self._run, args=(stop, interval_s), name="log-maintenance", daemon=True
            )
            self._stop, self._thread = stop, thread
            thread.start()

    def stop(self) -> None:
        with self._lock:
            stop, thread = self._stop, self._thread
            self._stop = self._thread = None
        if stop is not None and thread is not None:
            stop.set()
            thread.join()

    def _run(self, stop: threading.Event, interval_s: float) -> None:
        while not stop.wait(interval_s):
            try:
                self.enforce_retention()
                self.compact(stop.is_set)
            except LogClosedError:
                return
            except StorageError as exc:  # a full disk: compaction waits for space
                _errors.warning(
                    ("maintenance", self._path),
                    "log maintenance failed path=%s error=%s",
                    self._path,
                    exc,
                )
            except Exception:
                logger.exception("log maintenance failed path=%s", self._path)
