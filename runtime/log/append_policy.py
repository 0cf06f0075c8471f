"""What a topic's config does to a client's batch before it is stored.

- cleanup.policy with compact: every record needs a key (InvalidRecordError
  otherwise, Kafka's INVALID_RECORD): compaction keeps the newest value per key,
  and a keyless record would have none.
- compression.type other than `producer`: a batch in another codec is
  re-encoded in the topic's (Kafka recompresses on the broker the same way);
  offsets deltas, timestamps, keys, values, headers and the producer fields
  are kept.
- message.timestamp.type=LogAppendTime: the batch is stamped with the append
  time (the timestamp-type attribute bit and maxTimestamp, which readers then
  take as every record's timestamp) and its CRC recomputed.

A batch that needs none of this is returned as it came, never copied.
"""

from __future__ import annotations

import struct

from runtime.errors import InvalidRecordError
from runtime.log.compression import compress
from runtime.log.config import TopicConfig
from runtime.log.records import (
    COMPRESSION_GZIP,
    COMPRESSION_LZ4,
    COMPRESSION_MASK,
    COMPRESSION_NONE,
    COMPRESSION_SNAPPY,
    COMPRESSION_ZSTD,
    CRC_START,
    HEADER_SIZE,
    LOG_OVERHEAD,
    TIMESTAMP_LOG_APPEND,
    BatchHeader,
    crc32c,
    decode_batch,
    decode_batch_rows,
    encode_batch_with_offsets,
    parse_header,
)

CODECS = {
    "uncompressed": COMPRESSION_NONE,
    "gzip": COMPRESSION_GZIP,
    "snappy": COMPRESSION_SNAPPY,
    "lz4": COMPRESSION_LZ4,
    "zstd": COMPRESSION_ZSTD,
}
_LENGTH_AT = 8
_ATTRIBUTES_AT = 21
_MAX_TIMESTAMP_AT = 35
_INT16 = struct.Struct(">h")
_INT32 = struct.Struct(">i")
_INT64 = struct.Struct(">q")
_UINT32 = struct.Struct(">I")


def prepare_batch(
    view: memoryview, header: BatchHeader, config: TopicConfig, now_ms: int
) -> tuple[memoryview, BatchHeader]:
    """The batch to store for a validated client batch: see the module docstring."""
    codec = CODECS.get(config.compression_type)
    recode = codec is not None and codec != header.compression
    if not (config.compacts or recode or config.log_append_time):
        return view, header
    records = decode_batch(view) if recode else []
    if config.compacts:
        keys = (r.key for r in records) if recode else (row[2] for row in _rows(view, header))
        keyless = tuple(i for i, key in enumerate(keys) if key is None)
        if keyless:
            raise _keyless(keyless)
    if not (recode or config.log_append_time):
        return view, header
    out = bytearray(view) if not recode else _recode(records, header, codec or 0)
    if config.log_append_time:
        attributes = _INT16.unpack_from(out, _ATTRIBUTES_AT)[0] | TIMESTAMP_LOG_APPEND
        _INT16.pack_into(out, _ATTRIBUTES_AT, attributes)
        _INT64.pack_into(out, _MAX_TIMESTAMP_AT, now_ms)
    _UINT32.pack_into(out, 17, crc32c(memoryview(out)[CRC_START:]))
    return memoryview(out), parse_header(out)


def _keyless(indexes: tuple[int, ...]) -> InvalidRecordError:
    exc = InvalidRecordError("this topic is compacted: every record needs a key")
    exc.record_indexes = indexes
    return exc


def _rows(view: memoryview, header: BatchHeader) -> list:
    return decode_batch_rows(view.tobytes(), 0, header)


def _recode(records: list, header: BatchHeader, codec: int) -> bytearray:
    plain = encode_batch_with_offsets(
        records,
        header.base_offset,
        producer_id=header.producer_id,
        producer_epoch=header.producer_epoch,
        base_sequence=header.base_sequence,
        attributes=header.attributes & ~COMPRESSION_MASK & ~TIMESTAMP_LOG_APPEND,
    )
    # an encoder that drops trailing offsets would break the producer's sequence
    struct.pack_into(">i", plain, 23, header.last_offset_delta)
    if codec == COMPRESSION_NONE:
        return plain
    out = plain[:HEADER_SIZE] + compress(codec, bytes(plain[HEADER_SIZE:]))
    _INT32.pack_into(out, _LENGTH_AT, len(out) - LOG_OVERHEAD)
    attributes = (header.attributes & ~COMPRESSION_MASK & ~TIMESTAMP_LOG_APPEND) | codec
    _INT16.pack_into(out, _ATTRIBUTES_AT, attributes)
    return out
