from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runtime.partitioner import murmur2, partition_for_key

# Kafka's UtilsTest.testMurmur2, plus short keys covering every tail length.
KAFKA_VECTORS = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
    b"1": -1993445489,
    b"12": 126087238,
    b"123": -267702483,
    b"1234": -1614185708,
    b"12345": -1188365604,
}


@pytest.mark.parametrize(("data", "expected"), sorted(KAFKA_VECTORS.items()))
def test_murmur2_matches_kafka(data: bytes, expected: int) -> None:
    assert murmur2(data) == expected


def test_murmur2_accepts_bytes_like() -> None:
    assert murmur2(bytearray(b"foobar")) == murmur2(memoryview(b"foobar")) == -790332482


def test_murmur2_empty() -> None:
    assert -(2**31) <= murmur2(b"") < 2**31


def test_partition_for_key_uses_positive_hash() -> None:
    # -973932308 & 0x7fffffff == 1173551340
    assert partition_for_key(b"21", 8) == 1173551340 % 8
    assert partition_for_key(b"21", 1) == 0


def test_partition_for_key_rejects_no_partitions() -> None:
    with pytest.raises(ValueError, match="partitions"):
        partition_for_key(b"k", 0)


@given(st.binary(max_size=64), st.integers(min_value=1, max_value=1000))
def test_partition_in_range_and_signed_32_bit(key: bytes, partitions: int) -> None:
    h = murmur2(key)
    assert -(2**31) <= h < 2**31
    assert 0 <= partition_for_key(key, partitions) < partitions
