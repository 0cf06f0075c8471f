"""The record batch v2 (magic 2) header: its layout, attribute bits and checks.

Layout (big-endian; offsets in bytes):

    0  base_offset int64        27 base_timestamp int64
    8  batch_length int32       35 max_timestamp int64
   12  leader_epoch int32       43 producer_id int64
   16  magic int8 (= 2)         51 producer_epoch int16
   17  crc uint32               53 base_sequence int32
   21  attributes int16         57 record_count int32
   23  last_offset_delta int32  61 records...

Invariants:
- batch_length == len(batch) - 12 (LOG_OVERHEAD).
- crc is CRC-32C over bytes 21..end, so base_offset (and leader_epoch) can be
  patched in place without recomputing it: that is how appends assign offsets.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

import crc32c as _crc32c

from runtime.errors import CorruptRecordError
from runtime.slotted import positional_builder

HEADER_SIZE = 61
LOG_OVERHEAD = 12  # base_offset + batch_length
MAGIC = 2
CRC_START = 21

COMPRESSION_MASK = 0x07
COMPRESSION_NONE = 0
COMPRESSION_GZIP = 1
COMPRESSION_SNAPPY = 2
COMPRESSION_LZ4 = 3
COMPRESSION_ZSTD = 4
TIMESTAMP_LOG_APPEND = 0x08
TRANSACTIONAL = 0x10
CONTROL = 0x20

_HEADER = struct.Struct(">qiibIhiqqqhii")
_BASE_OFFSET = struct.Struct(">q")
_LENGTH = struct.Struct(">i")


def crc32c(data: bytes | bytearray | memoryview) -> int:
    return _crc32c.crc32c(data)


@dataclass(frozen=True, slots=True)
class BatchHeader:
    base_offset: int
    batch_length: int
    leader_epoch: int
    magic: int
    crc: int
    attributes: int
    last_offset_delta: int
    base_timestamp: int
    max_timestamp: int
    producer_id: int
    producer_epoch: int
    base_sequence: int
    record_count: int

    @property
    def size(self) -> int:
        return self.batch_length + LOG_OVERHEAD

    @property
    def last_offset(self) -> int:
        return self.base_offset + self.last_offset_delta

    @property
    def next_offset(self) -> int:
        return self.base_offset + self.last_offset_delta + 1

    @property
    def compression(self) -> int:
        return self.attributes & COMPRESSION_MASK

    @property
    def is_control(self) -> bool:
        return bool(self.attributes & CONTROL)

    @property
    def is_transactional(self) -> bool:
        return bool(self.attributes & TRANSACTIONAL)


_build_header = positional_builder(BatchHeader)  # one per batch appended or walked


def parse_header(buf: bytes | bytearray | memoryview, pos: int = 0) -> BatchHeader:
    if len(buf) - pos < HEADER_SIZE:
        raise CorruptRecordError(f"batch header needs {HEADER_SIZE} bytes, got {len(buf) - pos}")
    return _build_header(*_HEADER.unpack_from(buf, pos))


def validate_batch(buf: bytes | bytearray | memoryview, pos: int = 0) -> BatchHeader:
    """Check one batch at `pos`: length, magic and CRC. Returns its header."""
    header = parse_header(buf, pos)
    if header.magic != MAGIC:
        raise CorruptRecordError(f"batch magic is {header.magic}, only 2 is supported")
    if header.batch_length < HEADER_SIZE - LOG_OVERHEAD:
        raise CorruptRecordError(f"batch length {header.batch_length} is shorter than a header")
    end = pos + header.size
    if end > len(buf):
        raise CorruptRecordError(
            f"batch length {header.batch_length} runs past the {len(buf) - pos} bytes given"
        )
    if header.last_offset_delta < 0 or header.record_count < 0:
        raise CorruptRecordError("batch has a negative record count or offset delta")
    actual = crc32c(memoryview(buf)[pos + CRC_START : end])
    if actual != header.crc:
        raise CorruptRecordError(f"batch CRC is {header.crc:#010x}, computed {actual:#010x}")
    return header


def iter_batches(
    buf: bytes | bytearray | memoryview, pos: int = 0, end: int | None = None
) -> Iterator[tuple[int, BatchHeader]]:
    """Yield (position, header) of each whole batch in buf[pos:end].

    Stops silently at a trailing partial batch (fetch responses may end with one);
    does not check CRCs (use validate_batch for that)."""
    end = len(buf) if end is None else end
    while end - pos >= HEADER_SIZE:
        header = _build_header(*_HEADER.unpack_from(buf, pos))
        if header.batch_length < HEADER_SIZE - LOG_OVERHEAD or pos + header.size > end:
            return
        yield pos, header
        pos += header.size


def set_base_offset(batch: bytearray, base_offset: int, pos: int = 0) -> None:
    """Patch the base offset in place; the CRC does not cover it."""
    _BASE_OFFSET.pack_into(batch, pos, base_offset)
