"""The files of a Log's topics in its data directory: catalog, partition
directories, delete markers.

Directory format:

    <data dir>/topics.json            the topic catalog (catalog.py)
    <data dir>/<topic>-<partition>/   one partition's segments (partition.py)
    <data dir>/deleting/<topic>-<partition>/
                                      a delete marker: the directory of a partition
                                      of a topic being deleted, emptied, removed once
                                      the catalog no longer names the topic

`DataDir` takes the file steps of the topic lifecycle in the order manager.py
documents (deleting on a full disk, finishing deletes cut short, removing the
directories of no topic); the Log holds the topics in memory and decides when.

Invariants:
- `pending_deletes` are the topics with markers that the catalog file still
  names; once a catalog write no longer names them, their markers go.
- A topic with a marker is deleted, whatever the catalog says.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
from pathlib import Path

from runtime.errors import StorageError
from runtime.log.catalog import CATALOG_FILE, load_catalog, save_catalog
from runtime.log.config import TopicInfo
from runtime.log.deleting import PARTITION_DIR, empty_directory, entries, marked_topics, rename_into
from runtime.log.storage import fsync_dir

# the Log's logger: these are steps of its topic lifecycle
logger = logging.getLogger("runtime.log.manager")

DELETING_DIR = "deleting"


class DataDir:
    """The on-disk side of the topics of one data directory."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.pending_deletes: set[str] = set()  # topics with markers, still in the catalog file

    @property
    def trash(self) -> Path:
        return self.path / DELETING_DIR

    def partition_dir(self, topic: str, partition: int) -> Path:
        return self.path / f"{topic}-{partition}"

    def load(self) -> dict[str, TopicInfo]:
        """The live topics of the catalog (not those with markers), after removing
        the directories of no topic and finishing the deletes cut short."""
        # a catalog write cut short by a crash: it holds space and nothing else
        (self.path / (CATALOG_FILE + ".tmp")).unlink(missing_ok=True)
        catalog = load_catalog(self.path)
        self.pending_deletes = marked_topics(self.trash) & catalog.keys()
        topics = {k: v for k, v in catalog.items() if k not in self.pending_deletes}
        self._remove_strays(topics)
        self._finish_deletes_on_open(topics)
        return topics

    def _remove_strays(self, topics: dict[str, TopicInfo]) -> None:
        for entry in self.path.iterdir():
            match = PARTITION_DIR.fullmatch(entry.name)
            if not match or not entry.is_dir():
                continue
            info = topics.get(match["topic"])
            if info is None or int(match["partition"]) >= info.partitions:
                logger.warning("removing partition directory of no topic path=%s", entry)
                shutil.rmtree(entry, ignore_errors=True)

    def _finish_deletes_on_open(self, topics: dict[str, TopicInfo]) -> None:
        for marker in entries(self.trash):
            empty_directory(marker)
        if self.pending_deletes:
            logger.warning(
                "finishing deletes cut short topics=%s", ",".join(sorted(self.pending_deletes))
            )
        try:
            self.trash.mkdir(exist_ok=True)  # now, while there is space
            self.finish_deletes(topics)
        except (OSError, StorageError) as exc:
            logger.warning("cannot finish deletes yet; retried later error=%s", exc)

    def finish_deletes(self, topics: dict[str, TopicInfo]) -> None:
        """Drop the pending deletes from the catalog file, then remove every marker.

        Raises StorageError when the catalog cannot be written (the markers stay)."""
        if self.pending_deletes:
            self.save_catalog(topics)
        else:
            self._remove_markers()

    def save_catalog(self, topics: dict[str, TopicInfo]) -> None:
        """Write the catalog; once it no longer names the pending deletes, their
        markers go."""
        save_catalog(self.path, topics)
        if self.pending_deletes and not self.pending_deletes & topics.keys():
            self._remove_markers()

    def _remove_markers(self) -> None:
        markers = entries(self.trash)
        for marker in markers:
            shutil.rmtree(marker, ignore_errors=True)
        if markers:
            with contextlib.suppress(OSError):
                fsync_dir(self.trash)
        self.pending_deletes.clear()

    def clear_markers(self, name: str, topics: dict[str, TopicInfo]) -> None:
        """No marker may name a topic being created: open would delete it."""
        if name not in marked_topics(self.trash):
            return
        self.finish_deletes(topics)
        if name in marked_topics(self.trash):
            raise StorageError(
                f"topic {name!r}: the delete markers of an earlier topic of this name "
                f"cannot be removed from {self.trash}",
                topic=name,
            )

    def remove_partition_dirs(self, topic: str, partitions: range) -> None:
        for p in partitions:
            shutil.rmtree(self.partition_dir(topic, p), ignore_errors=True)

    def mark_deleted(self, info: TopicInfo) -> None:
        """Move the topic's partition directories under the trash; the first move
        is the commit point (StorageError if it fails: nothing changed)."""
        trash = self.trash
        try:
            trash.mkdir(exist_ok=True)
            rename_into(self.path, trash, f"{info.name}-0")
            fsync_dir(trash)
        except OSError as exc:
            raise topic_storage_error("deleting the topic", info.name, exc) from exc
        for p in range(1, info.partitions):
            try:
                rename_into(self.path, trash, f"{info.name}-{p}")
            except OSError as exc:  # committed already: it is removed where it is
                logger.warning(
                    "cannot move partition directory topic=%s partition=%d error=%r",
                    info.name,
                    p,
                    exc,
                )
        with contextlib.suppress(OSError):
            fsync_dir(trash)
            fsync_dir(self.path)
        self.pending_deletes.add(info.name)

    def free_space(self, info: TopicInfo) -> None:
        """Unlink the files of a marked topic: their space comes back at once."""
        for p in range(info.partitions):
            empty_directory(self.trash / f"{info.name}-{p}")
            shutil.rmtree(self.partition_dir(info.name, p), ignore_errors=True)


def topic_storage_error(what: str, topic: str, exc: OSError | StorageError) -> StorageError:
    if isinstance(exc, StorageError):
        return StorageError(f"topic {topic!r}: {exc}", errno=exc.errno, topic=topic)
    return StorageError.from_os_error(what, exc, topic=topic)
