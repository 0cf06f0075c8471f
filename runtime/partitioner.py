"""Kafka's default partitioner: murmur2 of the key bytes, modulo the partition count.

A key lands on the same partition here as it does from a Java, librdkafka
(``murmur2_random``) or kafka-python producer, so apps and other clients agree on
co-partitioning. ``murmur2`` returns the signed 32-bit int Kafka's
``Utils.murmur2`` returns (seed ``0x9747b28c``).

murmur2 is pure Python (~1 µs a key) and a producer hashes every record it
sends, while a stream's keys repeat: `partition_for_key` remembers the partition
of recent short keys per partition count, so a repeated key costs a dict hit.
"""

from __future__ import annotations

import struct

__all__ = ["murmur2", "partition_for_key"]

_SEED = 0x9747B28C
_M = 0x5BD1E995
_MASK32 = 0xFFFFFFFF

_unpack_words: dict[int, struct.Struct] = {}


def _words(count: int) -> struct.Struct:
    codec = _unpack_words.get(count)
    if codec is None:
        codec = _unpack_words[count] = struct.Struct(f"<{count}I")
    return codec


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 hash of `data`, as a signed 32-bit int."""
    length = len(data)
    m = _M
    h = (_SEED ^ length) & _MASK32
    word_count = length >> 2
    if word_count:
        for k in _words(word_count).unpack_from(data):
            k = (k * m) & _MASK32
            k ^= k >> 24
            h = ((h * m) & _MASK32) ^ ((k * m) & _MASK32)
    tail = length & 3
    if tail:
        base = length - tail
        if tail == 3:
            h ^= data[base + 2] << 16
        if tail >= 2:
            h ^= data[base + 1] << 8
        h ^= data[base]
        h = (h * m) & _MASK32
    h ^= h >> 13
    h = (h * m) & _MASK32
    h ^= h >> 15
    return h - 0x100000000 if h & 0x80000000 else h


# Bounds the memory of the cache: keys up to _CACHED_KEY_MAX bytes, and at most
# _CACHE_MAX of them per partition count (forgotten all at once when full, which
# costs less per record than tracking recency).
_CACHED_KEY_MAX = 64
_CACHE_MAX = 32_768
_caches: dict[int, dict[bytes, int]] = {}


def partition_for_key(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner picks for a non-null `key`."""
    cache = _caches.get(partitions)
    if cache is None:
        if partitions <= 0:
            raise ValueError(f"partitions must be > 0, got {partitions}")
        cache = _caches[partitions] = {}
    if type(key) is not bytes or len(key) > _CACHED_KEY_MAX:
        return (murmur2(key) & 0x7FFFFFFF) % partitions
    partition = cache.get(key)
    if partition is None:
        partition = (murmur2(key) & 0x7FFFFFFF) % partitions
        if len(cache) >= _CACHE_MAX:
            cache.clear()
        cache[key] = partition
    return partition
