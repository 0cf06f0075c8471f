"""Kafka record batch v2 (magic 2): encode and decode the records of a batch.

The header (layout, attribute bits, CRC and length checks) is batch_header.py,
decompression is compression.py, the pure-Python record reader record_rows.py;
their names are importable from here too.

Invariants:
- Records are zigzag-varint encoded: length, attributes, timestamp delta,
  offset delta, key, value, headers. Compressed batches compress the records
  part as a whole; gzip, snappy (raw or xerial-framed), lz4 (frame) and zstd are decoded.
- An encoded batch has a valid CRC (see batch_header.py for what it covers).
- The reader and the encoder use their compiled twins (_crecords*.c) when they
  were built and the environment variable STREAMS_PURE_PYTHON is not set; the
  Python functions are the fallback and the reference (same bytes, same rows,
  same errors).
"""

from __future__ import annotations

import logging
import os
import struct
from collections.abc import Sequence
from dataclasses import dataclass

from runtime.errors import CorruptRecordError
from runtime.log.batch_header import (
    COMPRESSION_GZIP,
    COMPRESSION_LZ4,
    COMPRESSION_MASK,
    COMPRESSION_NONE,
    COMPRESSION_SNAPPY,
    COMPRESSION_ZSTD,
    CONTROL,
    CRC_START,
    HEADER_SIZE,
    LOG_OVERHEAD,
    MAGIC,
    TIMESTAMP_LOG_APPEND,
    TRANSACTIONAL,
    BatchHeader,
    crc32c,
    iter_batches,
    parse_header,
    set_base_offset,
    validate_batch,
)
from runtime.log.compression import decompress_records
from runtime.log.record_rows import Header, RecordRow, _decode_rows

_CRECORDS_VERSION = 1  # VERSION in _crecords.c: a build of older source is not used

try:
    if os.environ.get("STREAMS_PURE_PYTHON"):
        raise ImportError("STREAMS_PURE_PYTHON is set")
    from runtime.log import _crecords
except ImportError:  # built without a C compiler, or asked not to use it
    _crecords = None  # type: ignore[assignment]
if _crecords is not None and getattr(_crecords, "VERSION", None) != _CRECORDS_VERSION:
    logging.getLogger(__name__).warning(
        "runtime/log/_crecords was built from other source: using the pure-Python "
        "record reader (rebuild it: pip install -e .)"
    )
    _crecords = None

__all__ = [
    "COMPRESSION_GZIP",
    "COMPRESSION_LZ4",
    "COMPRESSION_MASK",
    "COMPRESSION_NONE",
    "COMPRESSION_SNAPPY",
    "COMPRESSION_ZSTD",
    "CONTROL",
    "CONTROL_ABORT",
    "CONTROL_COMMIT",
    "CRC_START",
    "HEADER_SIZE",
    "LOG_OVERHEAD",
    "MAGIC",
    "TIMESTAMP_LOG_APPEND",
    "TRANSACTIONAL",
    "BatchHeader",
    "Header",
    "OutRecord",
    "Record",
    "RecordRow",
    "compiled",
    "control_type",
    "crc32c",
    "decode_batch",
    "decode_batch_rows",
    "decode_batches",
    "encode_batch",
    "encode_batch_with_offsets",
    "encode_control_batch",
    "iter_batches",
    "parse_header",
    "set_base_offset",
    "validate_batch",
]

_HEADER = struct.Struct(">qiibIhiqqqhii")


@dataclass(frozen=True, slots=True)
class Record:
    """One decoded record with its absolute offset and timestamp (ms)."""

    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None
    headers: tuple[Header, ...] = ()


# --- varints ---------------------------------------------------------------


def _write_varint(out: bytearray, value: int) -> None:
    value = (value << 1) ^ (value >> 63)  # zigzag
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def _varint_bytes(value: int) -> bytes:
    out = bytearray()
    _write_varint(out, value)
    return bytes(out)


# The zigzag varints of 0 .. _SMALL_MAX-1 (1 or 2 bytes each, ~600 KB): the
# lengths, offset deltas and timestamp deltas of a batch's records are nearly
# all small, and a list lookup costs less than a Python call per field.
_SMALL_MAX = 8192
_SMALL_VARINTS = [_varint_bytes(v) for v in range(_SMALL_MAX)]


# --- encode ----------------------------------------------------------------

OutRecord = tuple[bytes | None, bytes | None, int, Sequence[Header]]
"""(key, value, timestamp_ms, headers) of a record to be written."""


def encode_batch(
    records: Sequence[OutRecord],
    *,
    base_offset: int = 0,
    producer_id: int = -1,
    producer_epoch: int = -1,
    base_sequence: int = -1,
    attributes: int = 0,
) -> bytearray:
    """Encode records (uncompressed) into one batch with a valid CRC."""
    if not records:
        raise ValueError("a batch needs at least one record")
    encoded = None if _crecords is None else _crecords.encode_records(records, None)
    if encoded is None:  # the reference, for what the compiled encoder leaves to it
        rows = [(delta, *record) for delta, record in enumerate(records)]
        return _encode(rows, base_offset, producer_id, producer_epoch, base_sequence, attributes)
    out, base_ts, max_ts = encoded
    counts = (len(records) - 1, len(records))
    ids = (producer_id, producer_epoch, base_sequence)
    return _finish(out, base_offset, attributes, counts, (base_ts, max_ts), ids)


def encode_batch_with_offsets(
    records: Sequence[Record],
    base_offset: int | None = None,
    *,
    producer_id: int = -1,
    producer_epoch: int = -1,
    base_sequence: int = -1,
    attributes: int = 0,
) -> bytearray:
    """Encode decoded records into one batch keeping their offsets and timestamps.

    Offsets may have gaps (compaction); base_offset defaults to the first record's."""
    if not records:
        raise ValueError("a batch needs at least one record")
    base = records[0].offset if base_offset is None else base_offset
    last = base - 1
    outs: list[OutRecord] = []
    deltas = []
    for r in records:
        if r.offset <= last:
            raise ValueError(f"record offsets must increase from {base}: got {r.offset}")
        last = r.offset
        outs.append((r.key, r.value, r.timestamp_ms, r.headers))
        deltas.append(r.offset - base)
    encoded = None if _crecords is None else _crecords.encode_records(outs, deltas)
    if encoded is None:
        rows = [(delta, *out) for delta, out in zip(deltas, outs, strict=True)]
        return _encode(rows, base, producer_id, producer_epoch, base_sequence, attributes)
    out, base_ts, max_ts = encoded
    ids = (producer_id, producer_epoch, base_sequence)
    return _finish(out, base, attributes, (deltas[-1], len(outs)), (base_ts, max_ts), ids)


_Row = tuple[int, bytes | None, bytes | None, int, Sequence[Header]]


def _encode(
    rows: Sequence[_Row],
    base_offset: int,
    producer_id: int,
    producer_epoch: int,
    base_sequence: int,
    attributes: int,
) -> bytearray:
    base_ts = min(r[3] for r in rows)
    max_ts = max(r[3] for r in rows)
    out = bytearray(HEADER_SIZE)
    body = bytearray()
    write = _write_varint
    # Every varint below is of a value >= 0 (base_ts is the batch's least timestamp).
    small, n, varint = _SMALL_VARINTS, _SMALL_MAX, _varint_bytes
    for delta, key, value, ts, headers in rows:
        body.clear()
        body.append(0)  # record attributes
        ts_delta = ts - base_ts
        body += small[ts_delta] if ts_delta < n else varint(ts_delta)
        body += small[delta] if delta < n else varint(delta)
        if key is None:
            body.append(1)  # zigzag(-1)
        else:
            size = len(key)
            body += small[size] if size < n else varint(size)
            body += key
        if value is None:
            body.append(1)
        else:
            size = len(value)
            body += small[size] if size < n else varint(size)
            body += value
        if not headers:
            body.append(0)
        else:
            write(body, len(headers))
            for hkey, hvalue in headers:
                hk = hkey.encode()
                write(body, len(hk))
                body += hk
                if hvalue is None:
                    body.append(1)
                else:
                    write(body, len(hvalue))
                    body += hvalue
        size = len(body)
        out += small[size] if size < n else varint(size)
        out += body
    counts = (rows[-1][0], len(rows))
    ids = (producer_id, producer_epoch, base_sequence)
    return _finish(out, base_offset, attributes, counts, (base_ts, max_ts), ids)


def _finish(
    out: bytearray,
    base_offset: int,
    attributes: int,
    counts: tuple[int, int],
    timestamps: tuple[int, int],
    ids: tuple[int, int, int],
) -> bytearray:
    """Fill in the header of `out` (header room, then the records) and its CRC:
    counts (last offset delta, records), timestamps (base, max), ids
    (producer id, epoch, base sequence)."""
    _HEADER.pack_into(
        out,
        0,
        base_offset,
        len(out) - LOG_OVERHEAD,
        0,
        MAGIC,
        0,
        attributes,
        counts[0],
        *timestamps,
        *ids,
        counts[1],
    )
    struct.pack_into(">I", out, 17, crc32c(memoryview(out)[CRC_START:]))
    return out


# --- decode ----------------------------------------------------------------


def compiled() -> bool:
    """Whether the compiled reader (_crecords) is in use."""
    return _crecords is not None


def _records_bytes(buf: bytes, pos: int, header: BatchHeader) -> bytes:
    start, end = pos + HEADER_SIZE, pos + header.size
    codec = header.compression
    if codec == COMPRESSION_NONE:
        return bytes(buf[start:end]) if pos or end != len(buf) else bytes(buf[start:])
    return decompress_records(codec, bytes(buf[start:end]), header.base_offset)


def records_span(buf: bytes, pos: int, header: BatchHeader) -> tuple[bytes, int, int]:
    """(data, start, stop): the records part of the batch at `pos` is
    data[start:stop], `buf` itself unless the batch is compressed (no copy)."""
    if header.attributes & COMPRESSION_MASK:
        data = _records_bytes(buf, pos, header)
        return data, 0, len(data)
    return buf, pos + HEADER_SIZE, pos + header.size


def log_append_time(header: BatchHeader) -> int | None:
    """Every record's timestamp under log-append time; None: base + delta."""
    return header.max_timestamp if header.attributes & TIMESTAMP_LOG_APPEND else None


def decode_batch(buf: bytes | bytearray | memoryview, pos: int = 0) -> list[Record]:
    """Decode the records of the batch at `pos` (no CRC check: see validate_batch)."""
    header = parse_header(buf, pos)
    if header.is_control:
        return []
    data = bytes(buf) if not isinstance(buf, bytes) else buf
    return [Record(*row) for row in decode_batch_rows(data, pos, header)]


def decode_batch_rows(buf: bytes, pos: int, header: BatchHeader) -> list[RecordRow]:
    """The records of the batch at `pos` of `buf`, whose parsed header is `header`
    (from iter_batches), as rows; [] for a control batch. No CRC check."""
    if header.attributes & CONTROL:
        return []
    if _crecords is None:
        return _decode_rows(_records_bytes(buf, pos, header), header)
    data, start, stop = records_span(buf, pos, header)
    return _crecords.decode_rows(
        data,
        start,
        stop,
        header.base_offset,
        header.base_timestamp,
        log_append_time(header),
        header.record_count,
    )


def decode_batches(buf: bytes | bytearray | memoryview) -> list[Record]:
    """Decode every whole batch in `buf` (a fetch result), in order."""
    data = buf if isinstance(buf, bytes) else bytes(buf)
    out: list[Record] = []
    for pos, header in iter_batches(data):
        out += [Record(*row) for row in decode_batch_rows(data, pos, header)]
    return out


# --- control batches (transaction markers) ----------------------------------

CONTROL_ABORT = 0
CONTROL_COMMIT = 1
_CONTROL_KEY = struct.Struct(">hh")  # version (0), type
_CONTROL_VALUE = struct.Struct(">hi")  # version (0), coordinator epoch


def encode_control_batch(
    producer_id: int, producer_epoch: int, *, commit: bool, timestamp_ms: int
) -> bytearray:
    """The end-of-transaction marker a coordinator writes to each partition of it."""
    key = _CONTROL_KEY.pack(0, CONTROL_COMMIT if commit else CONTROL_ABORT)
    return encode_batch(
        [(key, _CONTROL_VALUE.pack(0, 0), timestamp_ms, ())],
        producer_id=producer_id,
        producer_epoch=producer_epoch,
        attributes=TRANSACTIONAL | CONTROL,
    )


def control_type(batch: bytes | bytearray | memoryview) -> int:
    """CONTROL_ABORT or CONTROL_COMMIT for a control batch (CorruptRecordError otherwise)."""
    buf = bytes(batch)
    header = parse_header(buf)
    rows = _decode_rows(_records_bytes(buf, 0, header), header) if header.is_control else []
    key = Record(*rows[0]).key if rows else None
    if key is None or len(key) < _CONTROL_KEY.size:
        raise CorruptRecordError("control batch without a control record key")
    _, kind = _CONTROL_KEY.unpack_from(key)
    if kind not in (CONTROL_ABORT, CONTROL_COMMIT):
        raise CorruptRecordError(f"control record type {kind} is not a transaction marker")
    return kind
