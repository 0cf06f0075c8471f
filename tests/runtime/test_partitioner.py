from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runtime import partitioner
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


def _uncached(key: bytes, partitions: int) -> int:
    return (murmur2(key) & 0x7FFFFFFF) % partitions


@pytest.mark.parametrize("partitions", [3, 8, 12])
def test_repeated_keys_keep_kafkas_partition(partitions: int) -> None:
    # the second and third round are answered by the cache: still Kafka's answer
    for _ in range(3):
        for data, expected in KAFKA_VECTORS.items():
            assert partition_for_key(data, partitions) == (expected & 0x7FFFFFFF) % partitions


def test_one_key_under_different_partition_counts() -> None:
    assert [partition_for_key(b"foobar", n) for n in (5, 7, 5, 7)] == [
        _uncached(b"foobar", 5),
        _uncached(b"foobar", 7),
        _uncached(b"foobar", 5),
        _uncached(b"foobar", 7),
    ]


def test_bytes_like_and_long_keys() -> None:
    long_key = b"x" * 1000
    assert partition_for_key(bytearray(b"foobar"), 8) == _uncached(b"foobar", 8)
    assert partition_for_key(memoryview(b"foobar"), 8) == _uncached(b"foobar", 8)
    assert (
        partition_for_key(long_key, 8) == partition_for_key(long_key, 8) == _uncached(long_key, 8)
    )


def test_cache_is_bounded() -> None:
    keys = [f"key-{i}".encode() for i in range(partitioner._CACHE_MAX + 10)]
    for key in keys:
        assert partition_for_key(key, 13) == _uncached(key, 13)
    assert len(partitioner._caches[13]) <= partitioner._CACHE_MAX
    assert all(partition_for_key(key, 13) == _uncached(key, 13) for key in keys[:100])
