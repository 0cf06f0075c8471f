"""key_values_into: the recovery reader (keys and values only, headers jumped
over) gives each key its last value as decode_batch does, and fails on bad input."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runtime.compression import codec_id, compress_batch
from runtime.errors import CorruptRecordError
from runtime.log.key_values import key_values_into
from runtime.log.records import decode_batch, encode_batch, iter_batches

# Lengths and deltas on both sides of the one-byte (64) varints.
_size = st.sampled_from([0, 1, 63, 64, 65, 200, 8192])
_bytes = st.one_of(st.none(), _size.map(lambda n: b"x" * n))
_key = st.one_of(st.none(), st.sampled_from([b"a", b"b", b"k" * 70]))
_headers = st.lists(st.tuples(st.text(max_size=4), st.one_of(st.none(), st.binary())), max_size=2)
_record = st.tuples(_key, _bytes, st.integers(0, 2**41), _headers)


def _key_values(batch: bytes) -> tuple[dict[bytes, bytes | None], int]:
    [(pos, header)] = list(iter_batches(batch))
    writes: dict[bytes, bytes | None] = {}
    return writes, key_values_into(writes, batch, pos, header)


@given(st.lists(_record, min_size=1, max_size=8), st.sampled_from([None, "lz4", "gzip"]))
def test_each_key_gets_its_last_value(records, compression):
    batch = bytes(compress_batch(encode_batch(records), codec_id(compression)))
    writes, count = _key_values(batch)
    expected = {r.key: r.value for r in decode_batch(batch) if r.key is not None}
    assert (writes, count) == (expected, len(records))


def test_a_record_with_a_wrong_length_is_refused():
    batch = bytearray(encode_batch([(b"key", b"value", 1, ()), (b"k", b"v", 1, ())]))
    batch[61] -= 8  # the first record's length varint: shorter than its key and value
    with pytest.raises(CorruptRecordError, match="wrong length"):
        _key_values(bytes(batch))


def test_a_batch_that_ends_inside_a_record_is_refused():
    batch = bytearray(encode_batch([(b"key", b"value", 1, ())]))
    batch[57:61] = (2).to_bytes(4, "big")  # claims two records, holds one
    with pytest.raises(CorruptRecordError, match="ends inside a record"):
        _key_values(bytes(batch))
