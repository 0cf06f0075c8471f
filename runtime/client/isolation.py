"""Isolation levels, and the read_committed filter of fetched record batches.

A read_committed Fetch (isolation_level 1) stops at the partition's last stable
offset, so every transaction in its answer is decided, and lists the aborted
ones it may meet as (producer id, first offset). Like Kafka's clients, the
reader drops their records itself: from a producer's aborted first offset on,
that producer's transactional batches are skipped until its abort marker.

Invariants of `committed_batches`:
- the kept bytes are whole batches of the fetched bytes, unchanged and in order:
  no control batch (markers are never delivered) and no batch of an aborted
  transaction;
- `next_offset` is past every whole batch fetched, kept or not, so a reader that
  moves its position there never fetches a skipped batch or a marker again;
- a batch is judged as a whole: a transaction's records never share a batch with
  another producer's, so whole batches are exactly the unit Kafka skips.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from runtime.errors import CorruptRecordError
from runtime.log.records import CONTROL_ABORT, control_type, iter_batches

IsolationLevel = Literal["read_uncommitted", "read_committed"]
READ_UNCOMMITTED = 0
READ_COMMITTED = 1
_CODES: dict[str, int] = {"read_uncommitted": READ_UNCOMMITTED, "read_committed": READ_COMMITTED}


def isolation_code(level: str) -> int:
    """The wire code of an isolation level name (ValueError for another name)."""
    try:
        return _CODES[level]
    except KeyError:
        raise ValueError(
            f"isolation_level must be read_uncommitted or read_committed, got {level!r}"
        ) from None


def committed_batches(
    records: bytes | memoryview, aborted: Iterable[tuple[int, int]], fetched_at: int
) -> tuple[bytes, int]:
    """(the batches of `records` a read_committed reader sees, the offset after the
    last whole batch; `fetched_at` if there is none)."""
    starts = sorted((first, pid) for pid, first in aborted)
    i = 0
    aborting: set[int] = set()  # producers inside an aborted transaction here
    kept: list[memoryview] = []
    view = memoryview(records)
    next_offset, end, dropped = fetched_at, 0, False
    for pos, header in iter_batches(records):
        next_offset = max(next_offset, header.next_offset)
        end = pos + header.size
        while i < len(starts) and starts[i][0] <= header.last_offset:
            aborting.add(starts[i][1])
            i += 1
        batch = view[pos:end]
        if header.is_control:
            if header.producer_id in aborting and _is_abort(batch):
                aborting.discard(header.producer_id)
            dropped = True
        elif header.is_transactional and header.producer_id in aborting:
            dropped = True
        else:
            kept.append(batch)
    if not dropped:  # the common case: every whole batch is kept, one slice
        return bytes(view[:end]), next_offset
    return b"".join(kept), next_offset


def _is_abort(batch: memoryview) -> bool:
    try:
        return control_type(batch) == CONTROL_ABORT
    except CorruptRecordError:
        return False  # a control record that is no transaction marker
