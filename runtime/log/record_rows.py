"""The pure-Python reader of the records of a batch into rows: the fallback
and the reference for the compiled reader (_crecords.c decode_rows), which
returns the same rows and raises the same errors.

Invariants:
- A record is zigzag varints: length, attributes (a byte), timestamp delta,
  offset delta, key length and key, value length and value, header count and
  headers; a length of -1 is null. A varint is at most 10 bytes and 64 bits.
- A record ends exactly where its length says, inside the records part,
  or the batch is corrupt (CorruptRecordError); no read goes past the data.
"""

from __future__ import annotations

from runtime.errors import CorruptRecordError
from runtime.log.batch_header import TIMESTAMP_LOG_APPEND, BatchHeader

Header = tuple[str, bytes | None]

RecordRow = tuple[int, int, bytes | None, bytes | None, tuple[Header, ...]]
"""(offset, timestamp_ms, key, value, headers): a decoded record as a plain tuple,
cheaper to build than a Record (hot paths decode into rows)."""


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    b = buf[pos]
    if b < 0x80:
        return (b >> 1) ^ -(b & 1), pos + 1
    result = b & 0x7F
    shift = 7
    while shift < 63:
        pos += 1
        b = buf[pos]
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return (result >> 1) ^ -(result & 1), pos + 1
        shift += 7
    pos += 1
    b = buf[pos]  # the tenth byte: bit 63 and nothing above it
    if b & 0x80:
        raise CorruptRecordError("varint longer than 10 bytes")
    if b > 1:
        raise CorruptRecordError("varint overflows 64 bits")
    result |= b << 63
    return (result >> 1) ^ -(result & 1), pos + 1


def _decode_rows(data: bytes, header: BatchHeader) -> list[RecordRow]:
    """The reference reader (the compiled decode_rows is its twin)."""
    # Varints are read inline when they fit in one byte (lengths under 64,
    # deltas under 64): a call per varint is most of the cost otherwise.
    base_offset = header.base_offset
    log_append_ts = header.max_timestamp if header.attributes & TIMESTAMP_LOG_APPEND else None
    base_ts = header.base_timestamp
    read = _read_varint
    no_headers: tuple[Header, ...] = ()
    out: list[RecordRow] = []
    append = out.append
    p = 0
    n = len(data)
    try:
        for _ in range(header.record_count):
            b = data[p]
            if b < 0x80:
                end = p + 1 + ((b >> 1) ^ -(b & 1))
            else:  # a record of 64 bytes or more: read() takes no longer than the work
                length, p = read(data, p)
                end = p + length
                p -= 1
            b = data[p + 2]  # after the length's byte and the attributes byte
            if b < 0x80:
                ts_delta = (b >> 1) ^ -(b & 1)
                p += 3
            else:
                ts_delta, p = read(data, p + 2)
            b = data[p]
            if b < 0x80:
                offset_delta = (b >> 1) ^ -(b & 1)
                p += 1
            elif data[p + 1] < 0x80:  # deltas under 8192: most of a batch
                b = (b & 0x7F) | (data[p + 1] << 7)
                offset_delta = (b >> 1) ^ -(b & 1)
                p += 2
            else:
                offset_delta, p = read(data, p)
            b = data[p]
            if b < 0x80:
                p += 1
                if b & 1:
                    key = None
                else:
                    b >>= 1
                    key = data[p : p + b]
                    p += b
            else:
                klen, p = read(data, p)
                if klen < 0:
                    key = None
                else:
                    key = data[p : p + klen]
                    p += klen
            b = data[p]
            if b < 0x80:
                p += 1
                if b & 1:
                    value = None
                else:
                    b >>= 1
                    value = data[p : p + b]
                    p += b
            else:
                vlen, p = read(data, p)
                if vlen < 0:
                    value = None
                else:
                    value = data[p : p + vlen]
                    p += vlen
            if data[p] == 0:
                p += 1
                headers = no_headers
            else:
                headers, p = _read_headers(data, p)
            if p != end or p > n:
                raise CorruptRecordError(
                    f"record at offset {base_offset + offset_delta} has a wrong length"
                )
            append(
                (
                    base_offset + offset_delta,
                    base_ts + ts_delta if log_append_ts is None else log_append_ts,
                    key,
                    value,
                    headers,
                )
            )
    except IndexError:
        raise CorruptRecordError(
            f"batch at offset {base_offset} ends inside a record", offset=base_offset
        ) from None
    return out


def _read_headers(data: bytes, p: int) -> tuple[tuple[Header, ...], int]:
    read = _read_varint
    hcount, p = read(data, p)
    if hcount <= 0:
        return (), p
    if hcount > (len(data) - p) // 2:  # a header takes two varints at least
        raise CorruptRecordError(f"record claims {hcount} headers in {len(data) - p} bytes")
    hs = []
    for _ in range(hcount):
        hklen, p = read(data, p)
        if hklen < 0 or p + hklen > len(data):  # a negative length would walk backwards
            raise CorruptRecordError(f"record header key length {hklen} is invalid")
        try:
            hkey = data[p : p + hklen].decode()
        except UnicodeDecodeError as exc:
            raise CorruptRecordError(f"record header key is not UTF-8: {exc}") from None
        p += hklen
        hvlen, p = read(data, p)
        if hvlen < 0:
            hvalue = None
        else:
            hvalue = data[p : p + hvlen]
            p += hvlen
        hs.append((hkey, hvalue))
    return tuple(hs), p
