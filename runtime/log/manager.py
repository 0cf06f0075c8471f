"""Log: every topic partition of one data directory (or of memory).

Directory format: `<data dir>/.lock`, the data-directory lock (lock.py), and
the catalog, partition directories and delete markers of data_dir.py, which
takes the file steps below.

Deleting a topic works on a full disk (only step 3 needs space, and by then
step 2 has freed some):
1. rename `<topic>-0/` into `deleting/` (the commit point: if this fails,
   nothing changed and StorageError is raised), then the other partitions;
2. unlink the files under the markers: their space comes back at once;
3. rewrite the catalog without the topic; if that fails the delete stands and
   the rewrite is done by the next catalog write or on open;
4. remove the markers.

Invariants:
- One Log per data directory at a time, across processes (the lock).
- A topic with a marker is deleted, whatever the catalog says: open finishes
  the delete (drops the topic from the catalog, removes its directories, then
  the markers). A name with markers is created again only after its markers
  are gone, so a marker never names a live topic.
- The catalog names exactly the partitions that are open, apart from topics with
  markers; directories of topics it does not name (a create or delete cut short
  by a crash) are removed on open.
- A catalog write that fails changes nothing in memory: create_topic closes and
  removes the partitions it opened and raises StorageError.
- After close() every method raises LogClosedError; close() is idempotent.
- Appends and reads never wait for retention or compaction longer than a
  segment-list swap.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from runtime.errors import (
    LogClosedError,
    StorageError,
    TopicExistsError,
    UnknownTopicError,
)
from runtime.log.config import FlushPolicy, TopicConfig, TopicInfo, validate_topic_name
from runtime.log.data_dir import DataDir, topic_storage_error
from runtime.log.lock import DataDirLock
from runtime.log.maintenance import Maintenance
from runtime.log.partition import Partition
from runtime.log.storage import FileRegion
from runtime.types import TopicPartition

logger = logging.getLogger(__name__)


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
        self._disk = None if path is None else DataDir(path)
        self._flush = flush
        self._default_config = default_config
        self._clock = clock
        self._lock = threading.RLock()
        self._dir_lock: DataDirLock | None = None
        self._topics: dict[str, TopicInfo] = {}
        self._partitions: dict[str, list[Partition]] = {}
        self._closed = False
        self._maintenance = Maintenance(self._all_partitions, clock, path)

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
        assert self._disk is not None
        self._topics = self._disk.load()
        for info in self._topics.values():
            self._partitions[info.name] = [
                self._open_partition(info, p) for p in range(info.partitions)
            ]
        logger.info("log opened path=%s topics=%d", self._path, len(self._topics))

    def _open_partition(self, info: TopicInfo, partition: int) -> Partition:
        directory = None if self._disk is None else self._disk.partition_dir(info.name, partition)
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
            topics = {**self._topics, name: info}
            opened: list[Partition] = []
            try:
                if self._disk is not None:
                    self._disk.clear_markers(name, self._topics)
                for p in range(partitions):
                    opened.append(self._open_partition(info, p))
                if self._disk is not None:
                    self._disk.save_catalog(topics)
            except (OSError, StorageError) as exc:
                self._discard(info, opened)
                raise topic_storage_error("creating the topic", name, exc) from exc
            # partitions before the topic: a reader on another thread that sees
            # the topic finds its partitions (the broker creates off the loop)
            self._partitions[name] = opened
            self._topics = topics
        logger.info("topic created topic=%s partitions=%d", name, partitions)
        return info

    def _discard(self, info: TopicInfo, opened: list[Partition]) -> None:
        """Undo a create cut short: close what it opened, remove its directories."""
        for partition in opened:
            partition.close(seal=False)
        if self._disk is not None:
            self._disk.remove_partition_dirs(info.name, range(info.partitions))

    def delete_topic(self, name: str) -> None:
        """Delete a topic and free its space, crash-safely and on a full disk (see
        the module docstring). StorageError if nothing could be done."""
        with self._lock:
            self._check_open()
            info = self._topics.get(name)
            if info is None:
                raise UnknownTopicError(f"topic {name!r} does not exist", topic=name)
            if self._disk is not None:
                self._disk.mark_deleted(info)
            self._topics = {k: v for k, v in self._topics.items() if k != name}
            for partition in self._partitions.pop(name):
                partition.close(seal=False)
            if self._disk is not None:
                self._disk.free_space(info)
                try:
                    self._disk.save_catalog(self._topics)
                except StorageError as exc:
                    logger.warning(
                        "topic deleted, catalog rewrite deferred topic=%s error=%s", name, exc
                    )
        logger.info("topic deleted topic=%s", name)

    def alter_topic(
        self,
        name: str,
        *,
        partitions: int | None = None,
        configs: Mapping[str, str] | None = None,
    ) -> TopicInfo:
        """Add partitions (never remove them: the keys of every partition would
        move) and set the configs given (others keep their values). The catalog
        is written before anything changes in memory: a failed write changes
        nothing, and the partitions it opened are removed again."""
        with self._lock:
            info = self.topic(name)
            count = info.partitions if partitions is None else partitions
            if isinstance(count, bool) or not isinstance(count, int) or count < info.partitions:
                raise ValueError(
                    f"topic {name!r} has {info.partitions} partitions: partitions can be "
                    f"added, not removed (asked for {count!r})"
                )
            config = TopicConfig.from_configs(configs or {}, info.config)
            altered = TopicInfo(name, count, config)
            opened: list[Partition] = []
            try:
                for p in range(info.partitions, count):
                    opened.append(self._open_partition(altered, p))
                if self._disk is not None:
                    self._disk.save_catalog({**self._topics, name: altered})
            except (OSError, StorageError) as exc:
                for partition in opened:
                    partition.close(seal=False)
                if self._disk is not None:
                    added = range(info.partitions, info.partitions + len(opened))
                    self._disk.remove_partition_dirs(name, added)
                raise topic_storage_error("altering the topic", name, exc) from exc
            for partition in self._partitions[name]:
                partition.config = config
            self._partitions[name] = [*self._partitions[name], *opened]
            self._topics = {**self._topics, name: altered}
        logger.info("topic altered topic=%s partitions=%d", name, count)
        return altered

    @property
    def default_config(self) -> TopicConfig:
        """The config of a topic created without settings of its own."""
        return self._default_config

    def set_default_config(self, config: TopicConfig) -> None:
        """New defaults (dynamic broker configs): every topic follows them in the
        configs it does not set itself, persisted, from the next append or pass."""
        with self._lock:
            self._check_open()
            topics = {
                name: TopicInfo(
                    name,
                    info.partitions,
                    TopicConfig.from_configs(info.config.override_configs(), config),
                )
                for name, info in self._topics.items()
            }
            if self._disk is not None:
                self._disk.save_catalog(topics)
            for name, info in topics.items():
                for partition in self._partitions.get(name, ()):
                    partition.config = info.config
            before = self._default_config.to_configs()
            self._topics = topics
            self._default_config = config
        changed = {k: v for k, v in config.to_configs().items() if before.get(k) != v}
        logger.info("default topic config set changed=%s", changed)

    def alter_config(self, name: str, config: TopicConfig) -> TopicInfo:
        """Give a topic a new config, persisted, applied from the next append and
        the next retention or compaction pass."""
        with self._lock:
            self._check_open()
            info = self.topic(name)
            changed = TopicInfo(name, info.partitions, config)
            topics = {**self._topics, name: changed}
            if self._disk is not None:
                self._disk.save_catalog(topics)
            for partition in self._partitions[name]:
                partition.config = config
            self._topics = topics
        logger.info("topic config altered topic=%s overrides=%s", name, config.override_configs())
        return changed

    def add_partitions(self, name: str, count: int) -> TopicInfo:
        """Grow a topic to `count` partitions (CreatePartitions); never shrinks one."""
        with self._lock:
            self._check_open()
            info = self.topic(name)
            if count <= info.partitions:
                raise ValueError(
                    f"topic {name!r} has {info.partitions} partitions: "
                    f"a new count must be more, got {count}"
                )
            grown = TopicInfo(name, count, info.config)
            opened: list[Partition] = []
            try:
                for p in range(info.partitions, count):
                    opened.append(self._open_partition(grown, p))
                if self._disk is not None:
                    self._disk.save_catalog({**self._topics, name: grown})
            except (OSError, StorageError) as exc:
                for partition in opened:
                    partition.delete()
                raise topic_storage_error("adding partitions", name, exc) from exc
            self._partitions[name] = [*self._partitions[name], *opened]
            self._topics = {**self._topics, name: grown}
        logger.info("partitions added topic=%s partitions=%d", name, count)
        return grown

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

    def size_bytes(self, tp: TopicPartition) -> int:
        """The bytes of the partition's segment files (batches, not indexes)."""
        return sum(segment.size for segment in self._partition(tp).segments)

    def offset_for_timestamp(self, tp: TopicPartition, timestamp_ms: int) -> int | None:
        return self._partition(tp).offset_for_timestamp(timestamp_ms)

    def max_timestamp_offset(self, tp: TopicPartition) -> tuple[int, int] | None:
        return self._partition(tp).max_timestamp_offset()

    def delete_records(self, tp: TopicPartition, offset: int) -> int:
        """DeleteRecords: the log start offset moves up to `offset` (see Partition)."""
        return self._partition(tp).delete_records(offset)

    def flush(self) -> None:
        for partition in self._all_partitions():
            partition.flush()

    def _all_partitions(self) -> list[Partition]:
        self._check_open()
        return [p for partitions in list(self._partitions.values()) for p in partitions]

    # --- maintenance (maintenance.py) ------------------------------------------

    def enforce_retention(self) -> int:
        return self._maintenance.enforce_retention()

    def compact(self) -> int:
        return self._maintenance.compact()

    def start_background(self, interval_s: float = 30.0) -> None:
        """Run retention and compaction every interval_s in a daemon thread."""
        with self._lock:
            self._check_open()
            self._maintenance.start(interval_s)

    def stop_background(self) -> None:
        self._maintenance.stop()
