"""Opening a partition's directory: its segments, recovered, and its producers' state.

Sealed segments whose indexes check out are opened as they are; one whose
indexes do not is scanned and truncated at its first invalid batch (and the
segments after it, which would follow a hole, are deleted). The active (last)
segment is always scanned: its tail is cut at the first batch whose length,
magic or CRC is wrong. The idempotent producers' state is rebuilt from the
snapshot at the active segment's base offset and the batches after it (or from
every segment's headers, without a usable snapshot). Leftovers of an
interrupted rewrite (`*.cleaned`, `*.tmp`) and older snapshots are removed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from runtime.log.index import IndexCorruptError
from runtime.log.producer_snapshots import (
    control_type_or_none,
    load_producers,
    remove_snapshots,
    snapshot_path,
)
from runtime.log.producer_state import ProducerStates
from runtime.log.records import BatchHeader
from runtime.log.segment import Segment, delete_segment_files
from runtime.log.storage import fsync_dir
from runtime.types import TopicPartition

logger = logging.getLogger("runtime.log.partition")

_LEFTOVER_SUFFIXES = (".cleaned", ".tmp")


@dataclass(slots=True)
class Loaded:
    segments: list[Segment]
    producers: ProducerStates
    recovered_bytes: int  # cut off invalid tails


def load_partition(tp: TopicPartition, directory: Path, clock: Callable[[], float]) -> Loaded:
    loader = _Loader(tp, clock)
    segments = loader.load(directory)
    return Loaded(segments, loader.producers, loader.recovered_bytes)


class _Loader:
    def __init__(self, tp: TopicPartition, clock: Callable[[], float]) -> None:
        self.tp = tp
        self._clock = clock
        self.producers = ProducerStates()
        self.recovered_bytes = 0

    def load(self, directory: Path) -> list[Segment]:
        bases = []
        for path in directory.iterdir():
            if path.name.endswith(_LEFTOVER_SUFFIXES):
                path.unlink()
            elif path.suffix == ".log" and len(path.stem) == 20 and path.stem.isdigit():
                bases.append(int(path.stem))
        bases.sort()
        remove_snapshots(directory, keep=bases[-1] if bases else None)
        if not bases:
            segment = Segment.create(directory, 0)
            fsync_dir(directory)
            return [segment]
        segments: list[Segment] = []
        for i, base in enumerate(bases[:-1]):
            try:
                segment = Segment.open_sealed(directory, base, bases[i + 1])
            except IndexCorruptError as exc:
                segment = exc.args[1]
                truncated = self._recover(segment, contiguous=False, next_base=bases[i + 1])
                segment.seal(sync=True)
                if truncated:  # later segments would follow a hole: drop them
                    for later in bases[i + 1 :]:
                        delete_segment_files(directory, later)
                    segments.append(segment)
                    remove_snapshots(directory, keep=None)
                    self._replay_producers(segments, snapshot=None)
                    return segments
            segments.append(segment)
        last = Segment.create(directory, bases[-1])
        self._replay_producers(segments, snapshot_path(directory, last.base_offset))
        self._recover(last, contiguous=True)
        segments.append(last)
        return segments

    def _replay_producers(self, sealed: list[Segment], snapshot: Path | None) -> None:
        self.producers = load_producers(sealed, snapshot, int(self._clock() * 1000), self.tp)

    def _recover(self, segment: Segment, *, contiguous: bool, next_base: int | None = None) -> int:
        truncated = segment.recover(
            contiguous=contiguous, next_base=next_base, on_batch=self._replay_one
        )
        if truncated:
            logger.warning(
                "recovery truncated an invalid tail topic=%s partition=%d segment=%d "
                "truncated_bytes=%d",
                self.tp.topic,
                self.tp.partition,
                segment.base_offset,
                truncated,
            )
            self.recovered_bytes += truncated
        if segment.size:
            segment.created_ms = self._clock() * 1000
        return truncated

    def _replay_one(self, header: BatchHeader, batch: memoryview) -> None:
        if header.is_control:
            self.producers.ended(header, header.base_offset, control_type_or_none(batch))
        else:
            self.producers.stored(header, header.base_offset, int(self._clock() * 1000))
