"""Where a partition's producer state comes from on open, and where it is kept.

File format: `<partition dir>/<base>.snapshot`, the ProducerStates bytes
(producer_state.py) as of offset `base`, the active segment's base offset when
it was written (on each roll). Only the newest is kept.

Invariants:
- a snapshot at B covers exactly the batches below B, so the state on open is
  the snapshot at the active segment's base plus that segment's batches (which
  recovery scans anyway);
- a snapshot is a cache: a missing, stale or corrupt one costs a scan of every
  sealed segment's batch headers, never correctness.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

from runtime.errors import CorruptRecordError
from runtime.log.index import write_file_atomically
from runtime.log.producer_state import SNAPSHOT_SUFFIX, ProducerStates, SnapshotCorruptError
from runtime.log.records import BatchHeader, control_type
from runtime.log.segment import Segment, segment_name
from runtime.types import TopicPartition

logger = logging.getLogger(__name__)


def snapshot_path(directory: Path, base_offset: int) -> Path:
    return directory / segment_name(base_offset, SNAPSHOT_SUFFIX)


def load_producers(
    sealed: list[Segment], snapshot: Path | None, now_ms: int, tp: TopicPartition
) -> ProducerStates:
    """Producer state as of the end of `sealed`: the snapshot taken there when it is
    usable, else every sealed segment's batch headers (slower)."""
    if snapshot is not None and snapshot.exists():
        try:
            return ProducerStates.from_bytes(snapshot.read_bytes())
        except (OSError, SnapshotCorruptError) as exc:
            logger.warning(
                "producer snapshot unusable, scanning the log topic=%s partition=%d "
                "path=%s error=%s",
                tp.topic,
                tp.partition,
                snapshot,
                exc,
            )
    producers = ProducerStates()
    for segment in sealed:
        producers.replay(_with_control_types(segment), now_ms)
    return producers


def write_snapshot(
    directory: Path, producers: ProducerStates, base_offset: int, sync: bool, tp: TopicPartition
) -> None:
    """Snapshot the state as of base_offset and drop older snapshots. Best effort: a
    failed write (a full disk) only means a longer scan on the next open."""
    path = snapshot_path(directory, base_offset)
    try:
        write_file_atomically(path, producers.to_bytes(), sync=sync)
    except OSError as exc:
        logger.warning(
            "could not write a producer snapshot topic=%s partition=%d path=%s error=%s",
            tp.topic,
            tp.partition,
            path,
            exc,
        )
        return
    remove_snapshots(directory, keep=base_offset)


def remove_snapshots(directory: Path, keep: int | None) -> None:
    for path in directory.glob("*" + SNAPSHOT_SUFFIX):
        if keep is None or path.name != segment_name(keep, SNAPSHOT_SUFFIX):
            path.unlink(missing_ok=True)


def control_type_or_none(batch: bytes | memoryview) -> int:
    """A marker's type; -1 for other control batches (never appended by clients)."""
    try:
        return control_type(batch)
    except CorruptRecordError:
        return -1


def _with_control_types(segment: Segment) -> Iterator[tuple[BatchHeader, int]]:
    """(header, marker type or -1) of every batch of a segment, for replay."""
    for pos, header in segment.headers():
        kind = -1
        if header.is_control:
            kind = control_type_or_none(segment.storage.read(pos, header.size))
        yield header, kind
