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
import re
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
from runtime.log.cleaner import clean_partition
from runtime.log.config import FlushPolicy, TopicConfig, TopicInfo, validate_topic_name
from runtime.log.lock import DataDirLock
from runtime.log.partition import Partition
from runtime.log.storage import FileRegion, fsync_dir
from runtime.logs import RateLimitedLog
from runtime.types import TopicPartition

logger = logging.getLogger(__name__)

DELETING_DIR = "deleting"
_PARTITION_DIR = re.compile(r"(?P<topic>[a-zA-Z0-9._-]+)-(?P<partition>\d+)")
_maintenance_errors = RateLimitedLog(logger, interval_s=300.0)


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
        # a catalog write cut short by a crash: it holds space and nothing else
        (self._path / (CATALOG_FILE + ".tmp")).unlink(missing_ok=True)
        topics = load_catalog(self._path)
        self._pending_deletes = _marked_topics(self._path / DELETING_DIR) & topics.keys()
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
            match = _PARTITION_DIR.fullmatch(entry.name)
            if not match or not entry.is_dir():
                continue
            info = self._topics.get(match["topic"])
            if info is None or int(match["partition"]) >= info.partitions:
                logger.warning("removing partition directory of no topic path=%s", entry)
                shutil.rmtree(entry, ignore_errors=True)

    def _finish_deletes_on_open(self, directory: Path) -> None:
        for marker in _entries(directory / DELETING_DIR):
            _empty_directory(marker)
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
        markers = _entries(trash)
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
        if name not in _marked_topics(trash):
            return
        self._finish_deletes()
        if name in _marked_topics(trash):
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

    def _mark_deleted(self, directory: Path, info: TopicInfo) -> None:
        trash = directory / DELETING_DIR
        try:
            trash.mkdir(exist_ok=True)
            _rename_into(directory, trash, f"{info.name}-0")
            fsync_dir(trash)
        except OSError as exc:
            raise _topic_storage_error("deleting the topic", info.name, exc) from exc
        for p in range(1, info.partitions):
            try:
                _rename_into(directory, trash, f"{info.name}-{p}")
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
            _empty_directory(directory / DELETING_DIR / f"{info.name}-{p}")
            shutil.rmtree(directory / f"{info.name}-{p}", ignore_errors=True)

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
            except StorageError as exc:  # a full disk: compaction waits for space
                _maintenance_errors.warning(
                    ("maintenance", self._path),
                    "log maintenance failed path=%s error=%s",
                    self._path,
                    exc,
                )
            except Exception:
                logger.exception("log maintenance failed path=%s", self._path)


def _topic_storage_error(what: str, topic: str, exc: OSError | StorageError) -> StorageError:
    if isinstance(exc, StorageError):
        return StorageError(f"topic {topic!r}: {exc}", errno=exc.errno, topic=topic)
    return StorageError.from_os_error(what, exc, topic=topic)


def _rename_into(directory: Path, trash: Path, name: str) -> None:
    target = trash / name
    if target.exists():  # a marker of an earlier delete nobody finished
        shutil.rmtree(target)
    try:
        os.rename(directory / name, target)
    except FileNotFoundError:  # no directory to move: a marker all the same
        target.mkdir()


def _entries(directory: Path) -> list[Path]:
    try:
        return list(directory.iterdir())
    except FileNotFoundError:
        return []


def _marked_topics(trash: Path) -> set[str]:
    """Names of the topics that have a delete marker."""
    names = set()
    for entry in _entries(trash):
        match = _PARTITION_DIR.fullmatch(entry.name)
        if match:
            names.add(match["topic"])
    return names


def _empty_directory(directory: Path) -> None:
    """Unlink what a directory holds but keep it (a marker stays a marker)."""
    for entry in _entries(directory):
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                entry.unlink()
