"""Compressed record batches: every codec Kafka clients write decodes."""

from __future__ import annotations

import struct
import zlib

import cramjam
import pytest

from runtime.errors import CorruptRecordError
from runtime.log.records import (
    CRC_START,
    HEADER_SIZE,
    LOG_OVERHEAD,
    crc32c,
    decode_batch,
    encode_batch,
    validate_batch,
)

RECORDS = [(f"k{i}".encode(), f"value {i}".encode() * 3, 1_000 + i, ()) for i in range(50)]


def xerial(data: bytes) -> bytes:
    block = bytes(cramjam.snappy.compress_raw(data))
    return b"\x82SNAPPY\x00" + struct.pack(">ii", 1, 1) + struct.pack(">i", len(block)) + block


COMPRESS = {
    1: lambda d: zlib.compress(d, wbits=31),
    2: lambda d: bytes(cramjam.snappy.compress_raw(d)),
    3: lambda d: bytes(cramjam.lz4.compress(d)),
    4: lambda d: bytes(cramjam.zstd.compress(d)),
}


def compressed_batch(codec: int, compress) -> bytearray:
    plain = encode_batch(RECORDS)
    body = compress(bytes(plain[HEADER_SIZE:]))
    batch = bytearray(plain[:HEADER_SIZE]) + body
    struct.pack_into(">i", batch, 8, len(batch) - LOG_OVERHEAD)
    struct.pack_into(">h", batch, 21, codec)
    struct.pack_into(">I", batch, 17, crc32c(memoryview(batch)[CRC_START:]))
    return batch


@pytest.mark.parametrize("codec", sorted(COMPRESS))
def test_every_codec_decodes_to_the_same_records(codec):
    batch = compressed_batch(codec, COMPRESS[codec])
    validate_batch(batch)
    assert decode_batch(bytes(batch)) == decode_batch(bytes(encode_batch(RECORDS)))


def test_xerial_framed_snappy_from_java_clients_decodes():
    batch = compressed_batch(2, xerial)
    assert [r.value for r in decode_batch(bytes(batch))] == [r[1] for r in RECORDS]


def test_undecompressable_batch_is_a_corrupt_record_error():
    batch = compressed_batch(4, lambda d: b"not zstd at all")
    with pytest.raises(CorruptRecordError, match="does not decompress"):
        decode_batch(bytes(batch))


def test_unknown_codec_is_named():
    batch = compressed_batch(6, lambda d: d)
    with pytest.raises(CorruptRecordError, match="codec 6"):
        decode_batch(bytes(batch))


def test_bad_gzip_is_a_corrupt_record_error_too():
    batch = compressed_batch(1, lambda d: b"\x1f\x8b broken")
    with pytest.raises(CorruptRecordError, match="does not decompress"):
        decode_batch(bytes(batch))
