"""decode_batch_rows: the hot-path decoder (inline one- and two-byte varints)
agrees with decode_batch on every layout, and fails the same way on bad input."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runtime.errors import CorruptRecordError
from runtime.log.records import (
    TIMESTAMP_LOG_APPEND,
    decode_batch,
    decode_batch_rows,
    encode_batch,
    iter_batches,
)

# Lengths and deltas on both sides of the one-byte (64) and two-byte (8192) varints.
_size = st.sampled_from([0, 1, 63, 64, 65, 200, 8191, 8192, 9000])
_bytes = st.one_of(st.none(), _size.map(lambda n: b"x" * n))
_headers = st.lists(st.tuples(st.text(max_size=4), st.one_of(st.none(), st.binary())), max_size=2)
_record = st.tuples(_bytes, _bytes, st.integers(0, 2**41), _headers)


def _rows(batch: bytes) -> list[tuple]:
    [(pos, header)] = list(iter_batches(batch))
    return decode_batch_rows(batch, pos, header)


@given(
    st.lists(_record, min_size=1, max_size=8),
    st.integers(0, 2**40),
    st.sampled_from([0, TIMESTAMP_LOG_APPEND]),
)
def test_rows_match_records(records, base_offset, attributes):
    batch = bytes(encode_batch(records, base_offset=base_offset, attributes=attributes))
    assert _rows(batch) == [
        (r.offset, r.timestamp_ms, r.key, r.value, r.headers) for r in decode_batch(batch)
    ]


def test_rows_of_a_large_batch_have_two_byte_offset_deltas():
    records = [(b"k%d" % i, b"v", 1_000 + i, ()) for i in range(10_000)]
    rows = _rows(bytes(encode_batch(records, base_offset=7)))
    assert [r[0] for r in rows] == list(range(7, 10_007))
    assert [r[1] for r in rows] == [1_000 + i for i in range(10_000)]


def test_rows_reject_a_record_with_a_wrong_length():
    batch = bytearray(encode_batch([(b"key", b"value", 1, ()), (b"k", b"v", 1, ())]))
    batch[61] += 2  # the first record's length varint (one byte, zigzag)
    with pytest.raises(CorruptRecordError, match="wrong length"):
        _rows(bytes(batch))


def test_rows_reject_a_batch_that_ends_inside_a_record():
    batch = bytearray(encode_batch([(b"key", b"value", 1, ())]))
    batch[57:61] = (2).to_bytes(4, "big")  # claims two records, holds one
    with pytest.raises(CorruptRecordError, match="ends inside a record"):
        _rows(bytes(batch))
