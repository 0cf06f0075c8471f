"""Idempotent producers: sequence checks per producer id and partition.

An idempotent producer numbers its records per partition (base_sequence in
each batch). The broker appends a batch only when it continues the sequence;
a retried batch that was already appended is answered with its original
offset instead of being stored twice.

Invariants:
- state is per (producer_id, topic partition): the epoch and the last
  `BATCHES_KEPT` batches appended (first and last sequence, base offset);
- the first batch of an unknown producer id or of a newer epoch is accepted at
  any sequence (state is in memory: after a restart every producer is new);
- a batch from an older epoch is fenced (INVALID_PRODUCER_EPOCH).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from enum import Enum

from runtime.types import TopicPartition

BATCHES_KEPT = 5  # what a Kafka producer may have in flight per partition
PRODUCERS_MAX = 100_000
_SEQ_MOD = 1 << 31


class Verdict(Enum):
    APPEND = "append"
    DUPLICATE = "duplicate"
    OUT_OF_ORDER = "out_of_order"
    FENCED = "fenced"


@dataclass(slots=True)
class _Partition:
    epoch: int
    batches: deque[tuple[int, int, int]] = field(default_factory=lambda: deque(maxlen=BATCHES_KEPT))


class ProducerStates:
    def __init__(self, producers_max: int = PRODUCERS_MAX) -> None:
        self._states: dict[tuple[int, TopicPartition], _Partition] = {}
        self._producers_max = producers_max

    def check(
        self, producer_id: int, epoch: int, tp: TopicPartition, first_seq: int, last_seq: int
    ) -> tuple[Verdict, int]:
        """What to do with a batch; for DUPLICATE also the offset it was stored at."""
        state = self._states.get((producer_id, tp))
        if state is None or epoch > state.epoch:
            return Verdict.APPEND, -1
        if epoch < state.epoch:
            return Verdict.FENCED, -1
        for seen_first, seen_last, base_offset in state.batches:
            if seen_first == first_seq and seen_last == last_seq:
                return Verdict.DUPLICATE, base_offset
        if state.batches and first_seq != (state.batches[-1][1] + 1) % _SEQ_MOD:
            return Verdict.OUT_OF_ORDER, -1
        return Verdict.APPEND, -1

    def appended(
        self,
        producer_id: int,
        epoch: int,
        tp: TopicPartition,
        first_seq: int,
        last_seq: int,
        base_offset: int,
    ) -> None:
        key = (producer_id, tp)
        state = self._states.get(key)
        if state is None or epoch > state.epoch:
            if state is None and len(self._states) >= self._producers_max:
                self._states.pop(next(iter(self._states)))  # forget the oldest producer
            state = self._states[key] = _Partition(epoch)
        state.batches.append((first_seq, last_seq, base_offset))
