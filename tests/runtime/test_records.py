from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runtime.errors import CorruptRecordError
from runtime.log import records as records_module
from runtime.log.records import (
    Record,
    decode_batch,
    decode_batches,
    encode_batch,
    encode_batch_with_offsets,
    set_base_offset,
    validate_batch,
)

_bytes = st.one_of(st.none(), st.binary(max_size=64))
_headers = st.lists(st.tuples(st.text(max_size=8), _bytes), max_size=3)
_record = st.tuples(_bytes, _bytes, st.integers(0, 2**41), _headers)


@given(st.lists(_record, min_size=1, max_size=20), st.integers(0, 2**40))
def test_encode_decode_roundtrip(records, base_offset):
    batch = encode_batch(records, base_offset=base_offset)
    header = validate_batch(batch)
    assert header.record_count == len(records)
    decoded = decode_batch(batch)
    assert [(r.key, r.value, r.timestamp_ms, list(r.headers)) for r in decoded] == [
        (k, v, ts, list(h)) for k, v, ts, h in records
    ]
    assert [r.offset for r in decoded] == list(range(base_offset, base_offset + len(records)))


@given(st.lists(st.tuples(st.integers(1, 50), _bytes, _bytes), min_size=1, max_size=20))
def test_encode_with_offsets_keeps_gapped_offsets(gaps):
    offset, records = 100, []
    for gap, key, value in gaps:
        offset += gap
        records.append(Record(offset, 5_000 + gap, key, value))
    batch = encode_batch_with_offsets(records)
    validate_batch(batch)
    assert decode_batches(bytes(batch)) == records


def test_patching_base_offset_keeps_crc_valid():
    batch = encode_batch([(None, b"v", 1, ())])
    set_base_offset(batch, 12345)
    assert validate_batch(batch).base_offset == 12345
    assert decode_batch(batch)[0].offset == 12345


def test_validate_rejects_corrupt_crc():
    batch = encode_batch([(None, b"value", 1, ())])
    batch[-1] ^= 0xFF
    with pytest.raises(CorruptRecordError, match="CRC"):
        validate_batch(batch)


def test_validate_rejects_wrong_magic():
    batch = encode_batch([(None, b"value", 1, ())])
    batch[16] = 1
    with pytest.raises(CorruptRecordError, match="magic"):
        validate_batch(batch)


def test_validate_rejects_truncated_batch():
    batch = encode_batch([(None, b"value", 1, ())])
    with pytest.raises(CorruptRecordError):
        validate_batch(batch[:-1])


# Sizes and deltas on both sides of the table of small varints the encoder uses.
_EDGE = st.sampled_from([0, 1, 63, 64, 8190, 8191, 8192, 8193, 20_000])


@given(st.lists(st.tuples(_EDGE, _EDGE, st.integers(0, 10_000), _headers), min_size=1, max_size=4))
def test_small_varint_table_encodes_what_the_varint_writer_does(sizes):
    records = [
        (b"k" * key_size, b"v" * value_size, 1_000_000 + ts, headers)
        for key_size, value_size, ts, headers in sizes
    ]
    fast = encode_batch(records, base_offset=7)
    saved = records_module._SMALL_MAX
    records_module._SMALL_MAX = 0  # every varint through _write_varint
    try:
        slow = encode_batch(records, base_offset=7)
    finally:
        records_module._SMALL_MAX = saved
    assert fast == slow
    assert [(r.key, r.value, r.timestamp_ms) for r in decode_batch(fast)] == [
        (k, v, ts) for k, v, ts, _ in records
    ]


def test_long_batches_take_offset_deltas_past_the_table():
    records = [(None, b"x", 5, ()) for _ in range(9000)]
    decoded = decode_batch(encode_batch(records))
    assert [r.offset for r in decoded] == list(range(9000))
