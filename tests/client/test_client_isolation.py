"""read_committed reading: the batch filter on its own."""

from __future__ import annotations

import pytest

from runtime.client import Consumer
from runtime.client.isolation import committed_batches, isolation_code
from runtime.log.records import (
    TRANSACTIONAL,
    decode_batches,
    encode_batch,
    encode_control_batch,
    iter_batches,
    set_base_offset,
)


def _batch(offset: int, value: bytes, pid: int = -1) -> bytes:
    attributes = TRANSACTIONAL if pid >= 0 else 0
    return bytes(
        encode_batch(
            [(None, value, 1000, ())],
            base_offset=offset,
            producer_id=pid,
            producer_epoch=0 if pid >= 0 else -1,
            base_sequence=offset if pid >= 0 else -1,
            attributes=attributes,
        )
    )


def _marker(offset: int, pid: int, *, commit: bool) -> bytes:
    marker = encode_control_batch(pid, 0, commit=commit, timestamp_ms=1000)
    set_base_offset(marker, offset)
    return bytes(marker)


def _values(data: bytes) -> list[tuple[int, bytes | None]]:
    return [(r.offset, r.value) for r in decode_batches(data)]


def test_aborted_batches_and_markers_are_dropped_and_the_position_passes_them():
    log = b"".join(
        [
            _batch(0, b"plain"),
            _batch(1, b"aborted-1", pid=7),
            _batch(2, b"committed", pid=8),
            _batch(3, b"aborted-2", pid=7),
            _marker(4, 7, commit=False),
            _marker(5, 8, commit=True),
            _batch(6, b"after-abort", pid=7),  # the same producer's next transaction
            _marker(7, 7, commit=True),
        ]
    )
    kept, next_offset = committed_batches(log, [(7, 1)], 0)
    assert _values(kept) == [(0, b"plain"), (2, b"committed"), (6, b"after-abort")]
    assert next_offset == 8
    assert all(not h.is_control for _, h in iter_batches(kept))


def test_a_fetch_that_starts_inside_an_aborted_transaction_still_drops_it():
    # the broker lists a transaction whose first offset is before the fetch offset
    log = _batch(3, b"aborted", pid=7) + _marker(4, 7, commit=False) + _batch(5, b"plain")
    kept, next_offset = committed_batches(log, [(7, 1)], 3)
    assert _values(kept) == [(5, b"plain")]
    assert next_offset == 6


def test_without_aborts_every_whole_batch_is_kept_and_a_torn_tail_is_not():
    whole = _batch(0, b"a") + _batch(1, b"b", pid=3)
    kept, next_offset = committed_batches(whole + _batch(2, b"c")[:-5], [], 0)
    assert kept == whole and next_offset == 2
    only_markers, next_offset = committed_batches(_marker(9, 3, commit=True), [], 9)
    assert only_markers == b"" and next_offset == 10
    assert committed_batches(b"", [], 4) == (b"", 4)


def test_isolation_level_names():
    assert isolation_code("read_committed") == 1 and isolation_code("read_uncommitted") == 0
    with pytest.raises(ValueError, match="isolation_level"):
        isolation_code("serializable")
    with pytest.raises(ValueError, match="isolation_level"):
        Consumer(None, isolation_level="committed")  # type: ignore[arg-type]
