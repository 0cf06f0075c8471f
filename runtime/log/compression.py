"""Decompressing the records part of a batch: gzip, snappy, lz4 and zstd.

The codec is the low three bits of a batch's attributes (batch_header.py). Snappy
comes raw (librdkafka) or xerial-framed (the Java clients); lz4 is the LZ4 frame
format. A payload that does not decompress raises CorruptRecordError naming the
batch's base offset.
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
"""The codecs this module decodes (COMPRESSION_NONE needs no decoding)."""

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
