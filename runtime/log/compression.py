"""The records part of a batch compressed and decompressed: gzip, snappy, lz4, zstd.

The codec is the low three bits of a batch's attributes (batch_header.py). Snappy
is read raw (librdkafka) or xerial-framed (the Java clients) and written raw
(Java reads it too); lz4 is the LZ4 frame format. A payload that does not
decompress raises CorruptRecordError naming the batch's base offset.
"""

from __future__ import annotations

import struct
import zlib

import cramjam

from runtime.errors import CorruptRecordError
from runtime.log.batch_header import (
    COMPRESSION_GZIP,
    COMPRESSION_LZ4,
    COMPRESSION_SNAPPY,
    COMPRESSION_ZSTD,
)

CODECS = frozenset((COMPRESSION_GZIP, COMPRESSION_SNAPPY, COMPRESSION_LZ4, COMPRESSION_ZSTD))
"""The codecs this module encodes and decodes (COMPRESSION_NONE needs no decoding)."""

_XERIAL_MAGIC = b"\x82SNAPPY\x00"  # Java clients' framed snappy
_LENGTH = struct.Struct(">i")


def decompress_records(codec: int, data: bytes, base_offset: int) -> bytes:
    """The records part `data` of the batch at `base_offset`, decompressed."""
    if codec not in CODECS:
        raise CorruptRecordError(f"compression codec {codec} is unknown")
    try:
        return _decompress(codec, data)
    except (cramjam.DecompressionError, zlib.error) as exc:
        raise CorruptRecordError(
            f"batch at offset {base_offset} does not decompress: {exc}",
            offset=base_offset,
        ) from None


def _decompress(codec: int, data: bytes) -> bytes:
    if codec == COMPRESSION_GZIP:
        return zlib.decompress(data, wbits=31)
    if codec == COMPRESSION_LZ4:
        return bytes(cramjam.lz4.decompress(data))  # the LZ4 frame format
    if codec == COMPRESSION_ZSTD:
        return bytes(cramjam.zstd.decompress(data))
    if not data.startswith(_XERIAL_MAGIC):
        return bytes(cramjam.snappy.decompress_raw(data))
    # xerial framing: 8-byte magic, two int32 versions, then int32-sized blocks
    out = bytearray()
    pos = 16
    while pos + 4 <= len(data):
        (size,) = _LENGTH.unpack_from(data, pos)
        pos += 4
        out += cramjam.snappy.decompress_raw(data[pos : pos + size])
        pos += size
    return bytes(out)


def compress(codec: int, data: bytes) -> bytes:
    """Records in a Kafka codec: gzip, raw snappy (what librdkafka writes; Java reads
    it too), the LZ4 frame format, zstd."""
    if codec == COMPRESSION_GZIP:
        packer = zlib.compressobj(wbits=31)
        return packer.compress(data) + packer.flush()
    if codec == COMPRESSION_SNAPPY:
        return bytes(cramjam.snappy.compress_raw(data))
    if codec == COMPRESSION_LZ4:
        return bytes(cramjam.lz4.compress(data))
    if codec == COMPRESSION_ZSTD:
        return bytes(cramjam.zstd.compress(data))
    raise ValueError(f"compression codec {codec} is unknown")
