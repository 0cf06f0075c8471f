"""Log: every topic partition of one data directory (or of memory).

Directory format:

    <data dir>/.lock                  the data-directory lock (lock.py)
    <data dir>/topics.json            the topic catalog (catalog.py)
    <data dir>/<topic>-<partition>/   one partition's segments (partition.py)

Invariants:
- One Log per data directory at a time, across processes (the lock).
- The catalog names exactly the partitions that are open; directories of
  topics it does not name (a create or delete cut short by a crash) are removed
  on open.
- After close() every method raises LogClosedError; close() is idempotent.
- Appends and reads never wait for retention or compaction longer than a
  segment-list swap.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from runtime.errors import LogClosedError, TopicExistsError, UnknownTopicError
from runtime.log.catalog import load_catalog, save_catalog
from runtime.log.cleaner import clean_partition
from runtime.log.config import FlushPolicy, TopicConfig, TopicInfo, validate_topic_name
from runtime.log.lock import DataDirLock
from runtime.log.partition import Partition
from runtime.log.storage import FileRegion
from runtime.types import TopicPartition

logger = logging.getLogger(__name__)

_PARTITION_DIR = re.compile(r"(?P<topic>[a-zA-Z0-9._-]+)-(?P<partition>\d+)")


class Log:
    """All topics of one data directory (or of memory)."""

    def __init__(
        self,
        path: Path | None,
        flush: FlushPolicy,
        default_config: TopicConfig,
        clock: Callable[[], float],
    ) -> None:
        self._path = path
        self._flush = flush
        self._default_config = default_config
        self._clock = clock
        self._lock = threading.RLock()
        self._dir_lock: DataDirLock | None = None
        self._topics: dict[str, TopicInfo] = {}
        self._partitions: dict[str, list[Partition]] = {}
        self._closed = False
        self._stop_background: threading.Event | None = None
        self._background: threading.Thread | None = None

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str] | None,
        *,
        flush: FlushPolicy = FlushPolicy(),  # noqa: B008 (frozen value)
        default_config: TopicConfig = TopicConfig(),  # noqa: B008 (frozen value)
        clock: Callable[[], float] = time.time,
    ) -> Log:
        if path is None:
            return cls(None, flush, default_config, clock)
        directory = Path(path)
        directory.mkdir(parents=True, exist_ok=True)
        log = cls(directory, flush, default_config, clock)
        log._dir_lock = DataDirLock(directory)
        try:
            log._load()
        except BaseException:
            log.close()
            raise
        return log

    def _load(self) -> None:
        assert self._path is not None
        self._topics = load_catalog(self._path)
        self._remove_strays(self._path)
        for info in self._topics.values():
            self._partitions[info.name] = [
                self._open_partition(info, p) for p in range(info.partitions)
            ]
        logger.info("log opened path=%s topics=%d", self._path, len(self._topics))

    def _remove_strays(self, directory: Path) -> None:
        for entry in directory.iterdir():
            match = _PARTITION_DIR.fullmatch(entry.name)
            if not match or not entry.is_dir():
                continue
            info = self._topics.get(match["topic"])
            if info is None or int(match["partition"]) >= info.partitions:
                logger.warning("removing partition directory of no topic path=%s", entry)
                shutil.rmtree(entry, ignore_errors=True)

    def _open_partition(self, info: TopicInfo, partition: int) -> Partition:
        directory = None if self._path is None else self._path / f"{info.name}-{partition}"
        return Partition.open(
            TopicPartition(info.name, partition), directory, info.config, self._flush, self._clock
        )

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self.stop_background()
        with self._lock:
            for partitions in self._partitions.values():
                for partition in partitions:
                    partition.close()
            if self._dir_lock is not None:
                self._dir_lock.release()
                self._dir_lock = None
        if self._path is not None:
            logger.info("log closed path=%s", self._path)

    def __enter__(self) -> Log:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def path(self) -> Path | None:
        return self._path

    @property
    def clock(self) -> Callable[[], float]:
        """The wall clock (seconds) the log stamps and expires by."""
        return self._clock

    def _check_open(self) -> None:
        if self._closed:
            raise LogClosedError(f"log {self._path or 'memory://'} is closed")

    # --- topics --------------------------------------------------------------

    def create_topic(
        self, name: str, partitions: int, configs: Mapping[str, str] | None = None
    ) -> TopicInfo:
        validate_topic_name(name)
        if isinstance(partitions, bool) or not isinstance(partitions, int) or partitions < 1:
            raise ValueError(
                f"topic {name!r}: partitions must be an integer >= 1, got {partitions!r}"
            )
        config = TopicConfig.from_configs(configs or {}, self._default_config)
        with self._lock:
            self._check_open()
            if name in self._topics:
                raise TopicExistsError(f"topic {name!r} already exists", topic=name)
            info = TopicInfo(name, partitions, config)
            opened = [self._open_partition(info, p) for p in range(partitions)]
            topics = {**self._topics, name: info}
            if self._path is not None:
                save_catalog(self._path, topics)
            # partitions before the topic: a reader on another thread that sees
            # the topic finds its partitions (the broker creates off the loop)
            self._partitions[name] = opened
            self._topics = topics
        logger.info("topic created topic=%s partitions=%d", name, partitions)
        return info

    def delete_topic(self, name: str) -> None:
        with self._lock:
            self._check_open()
            if name not in self._topics:
                raise UnknownTopicError(f"topic {name!r} does not exist", topic=name)
            topics = {k: v for k, v in self._topics.items() if k != name}
            if self._path is not None:
                save_catalog(self._path, topics)
            self._topics = topics
            partitions = self._partitions.pop(name)
        for partition in partitions:
            partition.delete()
        logger.info("topic deleted topic=%s", name)

    def topics(self) -> dict[str, TopicInfo]:
        self._check_open()
        return dict(self._topics)

    def topic(self, name: str) -> TopicInfo:
        self._check_open()
        info = self._topics.get(name)
        if info is None:
            raise UnknownTopicError(f"topic {name!r} does not exist", topic=name)
        return info

    def _partition(self, tp: TopicPartition) -> Partition:
        self._check_open()
        partitions = self._partitions.get(tp.topic)
        if partitions is None:
            raise UnknownTopicError(
                f"topic {tp.topic!r} does not exist", topic=tp.topic, partition=tp.partition
            )
        if not 0 <= tp.partition < len(partitions):
            raise UnknownTopicError(
                f"topic {tp.topic!r} has no partition {tp.partition} (it has {len(partitions)})",
                topic=tp.topic,
                partition=tp.partition,
            )
        return partitions[tp.partition]

    # --- data ----------------------------------------------------------------

    def append(self, tp: TopicPartition, batch: bytes | bytearray | memoryview) -> int:
        return self._partition(tp).append(batch)

    def append_marker(
        self, tp: TopicPartition, producer_id: int, producer_epoch: int, *, commit: bool
    ) -> int:
        """Write a transaction marker (the transaction coordinator's; see Partition)."""
        return self._partition(tp).append_marker(producer_id, producer_epoch, commit=commit)

    def read(
        self,
        tp: TopicPartition,
        offset: int,
        max_bytes: int = 1 << 20,
        end_offset: int | None = None,
    ) -> bytes:
        return self._partition(tp).read(offset, max_bytes, end_offset)

    def read_chunks(
        self,
        tp: TopicPartition,
        offset: int,
        max_bytes: int = 1 << 20,
        end_offset: int | None = None,
    ) -> list[bytes | FileRegion]:
        """What read returns, as chunks: large reads from files are FileRegions
        (for sendfile, see Partition.read_chunks)."""
        return self._partition(tp).read_chunks(offset, max_bytes, end_offset)

    def last_stable_offset(self, tp: TopicPartition) -> int:
        return self._partition(tp).last_stable_offset()

    def aborted_transactions(
        self, tp: TopicPartition, start: int, end: int
    ) -> list[tuple[int, int]]:
        return self._partition(tp).aborted_transactions(start, end)

    def offsets(self, tp: TopicPartition) -> tuple[int, int]:
        return self._partition(tp).offsets()

    def offset_for_timestamp(self, tp: TopicPartition, timestamp_ms: int) -> int | None:
        return self._partition(tp).offset_for_timestamp(timestamp_ms)

    def flush(self) -> None:
        for partition in self._all_partitions():
            partition.flush()

    def _all_partitions(self) -> list[Partition]:
        self._check_open()
        return [p for partitions in list(self._partitions.values()) for p in partitions]

    # --- maintenance ---------------------------------------------------------

    def enforce_retention(self) -> int:
        now_ms = self._clock() * 1000
        return sum(p.enforce_retention(now_ms) for p in self._all_partitions())

    def compact(self) -> int:
        return self._compact(lambda: False)

    def _compact(self, should_stop: Callable[[], bool]) -> int:
        now_ms = self._clock() * 1000
        reclaimed = 0
        for partition in self._all_partitions():
            if should_stop():
                break
            if partition.config.compacts:
                reclaimed += clean_partition(partition, now_ms, should_stop)
        return reclaimed

    def start_background(self, interval_s: float = 30.0) -> None:
        """Run retention and compaction every interval_s in a daemon thread."""
        if interval_s <= 0:
            raise ValueError(f"interval_s must be > 0, got {interval_s}")
        with self._lock:
            self._check_open()
            if self._background is not None:
                return
            stop = threading.Event()
            thread = threading.Thread(
                target=self._maintain, args=(stop, interval_s), name="log-maintenance", daemon=True
            )
            self._stop_background, self._background = stop, thread
            thread.start()

    def stop_background(self) -> None:
        with self._lock:
            stop, thread = self._stop_background, self._background
            self._stop_background = self._background = None
        if stop is not None and thread is not None:
            stop.set()
            thread.join()

    def _maintain(self, stop: threading.Event, interval_s: float) -> None:
        while not stop.wait(interval_s):
            try:
                self.enforce_retention()
                self._compact(stop.is_set)
            except LogClosedError:
                return
            except Exception:
                logger.exception("log maintenance failed path=%s", self._path)
