"""A column of Record values is decoded a column at a time, with the results
one record at a time gives: tombstones stay None, a value that is not the
Record's shape is named (or skipped) like any undecodable value."""

from __future__ import annotations

import pytest

import streams
from runtime.log.record_columns import RecordColumns
from streams.errors import ValueDecodeError
from streams.topic import Topic
from streams.wiring import Wiring


class Ride(streams.Record):
    zone: str
    fare: int


def _topic(on_decode_error: str = "stop") -> Topic:
    wiring = Wiring("app")
    wiring.on_decode_error = on_decode_error
    return Topic(wiring, "rides", key_type=str, value_type=Ride, partitions=2)


def _columns(values: list[bytes | None]) -> RecordColumns:
    n = len(values)
    keys: list[bytes | None] = [f"k{i}".encode() for i in range(n)]
    return RecordColumns(list(range(n)), [1000] * n, keys, values, [()] * n)


def test_a_column_of_records_decodes_as_one_record_at_a_time_does():
    values = [b'{"zone": "a", "fare": 3}', None, b'{"zone": "b", "fare": 4, "extra": 1}']
    topic = _topic()
    batch = topic.decode_batch(_columns(values), 1)
    assert batch.values == [Ride("a", 3), None, Ride("b", 4)]
    assert list(batch) == topic.decode(_columns(values).rows(), 1)
    assert topic.decode_batch(_columns(values[:1]), 1).values == [Ride("a", 3)]


def test_a_value_missing_a_field_is_named_or_skipped():
    values = [b'{"zone": "a", "fare": 3}', b'{"zone": "b"}']
    with pytest.raises(ValueDecodeError) as info:
        _topic().decode_batch(_columns(values), 1)
    assert (info.value.partition, info.value.offset) == (1, 1)
    batch = _topic("skip").decode_batch(_columns(values), 1)
    assert batch.offsets == [0] and batch.values == [Ride("a", 3)]
