"""Producer compression: a record batch's records in gzip, snappy, lz4 or zstd.

A producer encodes a batch uncompressed, then `compress_batch` replaces the
records section (everything after the 61-byte header) with its compressed
bytes and fixes the batch length, the codec bits of the attributes and the
CRC. The codecs are those Kafka readers expect (see `append_policy.compress`):
gzip, raw snappy (as librdkafka writes it), the LZ4 frame format, zstd.

`CompressionChoice` is how a transport learns, per topic, which codec the
producer side wants: a function of the topic name to a codec id.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from runtime.log.append_policy import CODECS, compress
from runtime.log.records import (
    COMPRESSION_MASK,
    COMPRESSION_NONE,
    CRC_START,
    HEADER_SIZE,
    LOG_OVERHEAD,
    crc32c,
)

__all__ = ["COMPRESSION_NAMES", "CompressionChoice", "codec_id", "compress_batch"]

COMPRESSION_NAMES = ("gzip", "snappy", "lz4", "zstd")
CompressionChoice = Callable[[str], int]
"""topic name -> codec id (COMPRESSION_NONE: as it is)."""

_LENGTH_AT = 8
_ATTRIBUTES_AT = 21
_BATCH_LENGTH = struct.Struct(">i")
_ATTRIBUTES = struct.Struct(">h")
_CRC = struct.Struct(">I")


def codec_id(name: str | None) -> int:
    """The record batch codec id of a compression name; None or "none": none."""
    if name is None or name == "none":
        return COMPRESSION_NONE
    if isinstance(name, str) and name in COMPRESSION_NAMES:
        return CODECS[name]
    raise ValueError(
        f"unknown compression {name!r}: use one of {', '.join(COMPRESSION_NAMES)} or None"
    )


def compress_batch(batch: bytes | bytearray, codec: int) -> bytes | bytearray:
    """`batch` (one uncompressed record batch) with its records in `codec`.

    Returned as it is for COMPRESSION_NONE, for a batch that is compressed
    already, and for bytes that hold more or less than one batch."""
    if codec == COMPRESSION_NONE or len(batch) <= HEADER_SIZE:
        return batch
    (length,) = _BATCH_LENGTH.unpack_from(batch, _LENGTH_AT)
    (attributes,) = _ATTRIBUTES.unpack_from(batch, _ATTRIBUTES_AT)
    if length + LOG_OVERHEAD != len(batch) or attributes & COMPRESSION_MASK:
        return batch
    out = bytearray(batch[:HEADER_SIZE])
    out += compress(codec, bytes(batch[HEADER_SIZE:]))
    _BATCH_LENGTH.pack_into(out, _LENGTH_AT, len(out) - LOG_OVERHEAD)
    _ATTRIBUTES.pack_into(out, _ATTRIBUTES_AT, attributes | codec)
    _CRC.pack_into(out, 17, crc32c(memoryview(out)[CRC_START:]))
    return out
