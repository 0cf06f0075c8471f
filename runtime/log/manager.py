"""Log: every topic partition of one data directory (or of memory).

Directory format:

    <data dir>/.lock                  the data-directory lock (lock.py)
    <data dir>/topics.json            the topic catalog (catalog.py)
    <data dir>/<topic>-<partition>/   one partition's segments (partition.py)
    <data dir>/deleting/<topic>-<partition>/
                                      a delete marker: the directory of a partition
                                      of a topic being deleted, emptied, removed once
                                      the catalog no longer names the topic

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

import contextlib
import logging
import os
import shutil
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
from runtime.log.catalog import CATALOG_FILE, load_catalog, save_catalog
from runtime.log.config import FlushPolicy, TopicConfig, TopicInfo, validate_topic_name
from runtime.log.deleting import PARTITION_DIR, empty_directory, entries, marked_topics, rename_into
from runtime.log.lock import DataDirLock
from runtime.log.maintenance import Maintenance
from runtime.log.partition import Partition
from runtime.log.storage import FileRegion, fsync_dir
from runtime.types import TopicPartition

logger = logging.getLogger(__name__)

DELETING_DIR = "deleting"


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
        self._pending_deletes: set[str] = set()  # topics with markers, still in the catalog file
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
        assert self._path is not None
        # a catalog write cut short by a crash: it holds space and nothing else
        (self._path / (CATALOG_FILE + ".tmp")).unlink(missing_ok=True)
        topics = load_catalog(self._path)
        self._pending_deletes = marked_topics(self._path / DELETING_DIR) & topics.keys()
        self._topics = {k: v for k, v in topics.items() if k not in self._pending_deletes}
        self._remove_strays(self._path)
        self._finish_deletes_on_open(self._path)
        for info in self._topics.values():
            self._partitions[info.name] = [
                self._open_partition(info, p) for p in range(info.partitions)
            ]
        logger.info("log opened path=%s topics=%d", self._path, len(self._topics))

    def _remove_strays(self, directory: Path) -> None:
        for entry in directory.iterdir():
            match = PARTITION_DIR.fullmatch(entry.name)
            if not match or not entry.is_dir():
                continue
            info = self._topics.get(match["topic"])
            if info is None or int(match["partition"]) >= info.partitions:
                logger.warning("removing partition directory of no topic path=%s", entry)
                shutil.rmtree(entry, ignore_errors=True)

    def _finish_deletes_on_open(self, directory: Path) -> None:
        for marker in entries(directory / DELETING_DIR):
            empty_directory(marker)
        if self._pending_deletes:
            logger.warning(
                "finishing deletes cut short topics=%s", ",".join(sorted(self._pending_deletes))
            )
        try:
            (directory / DELETING_DIR).mkdir(exist_ok=True)  # now, while there is space
            self._finish_deletes()
        except (OSError, StorageError) as exc:
            logger.warning("cannot finish deletes yet; retried later error=%s", exc)

    def _finish_deletes(self) -> None:
        """Drop the pending deletes from the catalog file, then remove every marker.

        Raises StorageError when the catalog cannot be written (the markers stay)."""
        assert self._path is not None
        if self._pending_deletes:
            self._save_catalog(self._topics)
        else:
            self._remove_markers(self._path)

    def _save_catalog(self, topics: dict[str, TopicInfo]) -> None:
        """Write the catalog; once it no longer names the pending deletes, their
        markers go."""
        assert self._path is not None
        save_catalog(self._path, topics)
        if self._pending_deletes and not self._pending_deletes & topics.keys():
            self._remove_markers(self._path)

    def _remove_markers(self, directory: Path) -> None:
        trash = directory / DELETING_DIR
        markers = entries(trash)
        for marker in markers:
            shutil.rmtree(marker, ignore_errors=True)
        if markers:
            with contextlib.suppress(OSError):
                fsync_dir(trash)
        self._pending_deletes.clear()

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
            topics = {**self._topics, name: info}
            opened: list[Partition] = []
            try:
                if self._path is not None:
                    self._clear_markers(name)
                for p in range(partitions):
                    opened.append(self._open_partition(info, p))
                if self._path is not None:
                    self._save_catalog(topics)
            except (OSError, StorageError) as exc:
                self._discard(info, opened)
                raise _topic_storage_error("creating the topic", name, exc) from exc
            # partitions before the topic: a reader on another thread that sees
            # the topic finds its partitions (the broker creates off the loop)
            self._partitions[name] = opened
            self._topics = topics
        logger.info("topic created topic=%s partitions=%d", name, partitions)
        return info

    def _clear_markers(self, name: str) -> None:
        """No marker may name a topic being created: open would delete it."""
        assert self._path is not None
        trash = self._path / DELETING_DIR
        if name not in marked_topics(trash):
            return
        self._finish_deletes()
        if name in marked_topics(trash):
            raise StorageError(
                f"topic {name!r}: the delete markers of an earlier topic of this name "
                f"cannot be removed from {trash}",
                topic=name,
            )

    def _discard(self, info: TopicInfo, opened: list[Partition]) -> None:
        """Undo a create cut short: close what it opened, remove its directories."""
        for partition in opened:
            partition.close(seal=False)
        if self._path is not None:
            for p in range(info.partitions):
                shutil.rmtree(self._path / f"{info.name}-{p}", ignore_errors=True)

    def delete_topic(self, name: str) -> None:
        """Delete a topic and free its space, crash-safely and on a full disk (see
        the module docstring). StorageError if nothing could be done."""
        with self._lock:
            self._check_open()
            info = self._topics.get(name)
            if info is None:
                raise UnknownTopicError(f"topic {name!r} does not exist", topic=name)
            if self._path is not None:
                self._mark_deleted(self._path, info)
                self._pending_deletes.add(name)
            self._topics = {k: v for k, v in self._topics.items() if k != name}
            for partition in self._partitions.pop(name):
                partition.close(seal=False)
            if self._path is not None:
                self._free_space(self._path, info)
                try:
                    self._save_catalog(self._topics)
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
                if self._path is not None:
                    self._save_catalog({**self._topics, name: altered})
            except (OSError, StorageError) as exc:
                for partition in opened:
                    partition.close(seal=False)
                    if self._path is not None:
                        shutil.rmtree(self._path / f"{name}-{partition.tp.partition}", True)
                raise _topic_storage_error("altering the topic", name, exc) from exc
            for partition in self._partitions[name]:
                partition.config = config
            self._partitions[name] = [*self._partitions[name], *opened]
            self._topics = {**self._topics, name: altered}
        logger.info("topic altered topic=%s partitions=%d", name, count)
        return altered

    def _mark_deleted(self, directory: Path, info: TopicInfo) -> None:
        trash = directory / DELETING_DIR
        try:
            trash.mkdir(exist_ok=True)
            rename_into(directory, trash, f"{info.name}-0")
            fsync_dir(trash)
        except OSError as exc:
            raise _topic_storage_error("deleting the topic", info.name, exc) from exc
        for p in range(1, info.partitions):
            try:
                rename_into(directory, trash, f"{info.name}-{p}")
            except OSError as exc:  # committed already: it is removed where it is
                logger.warning(
                    "cannot move partition directory topic=%s partition=%d error=%r",
                    info.name,
                    p,
                    exc,
                )
        with contextlib.suppress(OSError):
            fsync_dir(trash)
            fsync_dir(directory)

    def _free_space(self, directory: Path, info: TopicInfo) -> None:
        for p in range(info.partitions):
            empty_directory(directory / DELETING_DIR / f"{info.name}-{p}")
            shutil.rmtree(directory / f"{info.name}-{p}", ignore_errors=True)

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
            if self._path is not None:
                self._save_catalog(topics)
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
            if self._path is not None:
                self._save_catalog(topics)
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
                if self._path is not None:
                    self._save_catalog({**self._topics, name: grown})
            except (OSError, StorageError) as exc:
                for partition in opened:
                    partition.delete()
                raise _topic_storage_error("adding partitions", name, exc) from exc
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


def _topic_storage_error(what: str, topic: str, exc: OSError | StorageError) -> StorageError:
    if isinstance(exc, StorageError):
        return StorageError(f"topic {topic!r}: {exc}", errno=exc.errno, topic=topic)
    return StorageError.from_os_error(what, exc, topic=topic)
