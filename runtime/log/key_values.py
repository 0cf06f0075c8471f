"""Keys and values of a record batch, and nothing else: what table recovery
needs from a changelog.

`decode_rows` (records.py) builds a row per record with its offset, timestamp
and headers; replaying a changelog into a store only needs each key's last
value, so this reader steps over the timestamp and offset deltas without
computing them, jumps over the headers by the record's length and writes
straight into a dict (the last value of a key wins, as in the log).
The compiled twin (_crecords.c) is used when records.py uses it.
"""

from __future__ import annotations

from runtime.errors import CorruptRecordError
from runtime.log import records
from runtime.log.record_rows import _read_varint
from runtime.log.records import CONTROL, BatchHeader, _records_bytes


def key_values_into(
    writes: dict[bytes, bytes | None], buf: bytes, pos: int, header: BatchHeader
) -> int:
    """Put key -> value (None: a tombstone) of every keyed record of the batch
    at `pos` of `buf` into `writes`; the number of records. A control batch
    has none. No CRC check (as decode_batch_rows)."""
    if header.attributes & CONTROL:
        return 0
    compiled = records._crecords
    if compiled is not None:
        data, start, stop = records.records_span(buf, pos, header)
        return compiled.key_values_into(
            writes, data, start, stop, header.base_offset, header.record_count
        )
    return _key_values_into(writes, _records_bytes(buf, pos, header), header)


def _key_values_into(writes: dict[bytes, bytes | None], data: bytes, header: BatchHeader) -> int:
    """The reference reader (the compiled key_values_into is its twin)."""
    read = _read_varint
    p = 0
    try:
        for _ in range(header.record_count):
            b = data[p]
            if b < 0x80:
                end = p + 1 + ((b >> 1) ^ -(b & 1))
                p += 2  # the length's byte and the attributes byte
            else:
                length, p = read(data, p)
                end = p + length
                p += 1
            while data[p] & 0x80:  # the timestamp delta
                p += 1
            p += 1
            while data[p] & 0x80:  # the offset delta
                p += 1
            p += 1
            b = data[p]
            if b < 0x80:
                p += 1
                if b & 1:
                    key = None
                else:
                    key = data[p : p + (b >> 1)]
                    p += b >> 1
            else:
                klen, p = read(data, p)
                key = None if klen < 0 else data[p : p + klen]
                p += max(klen, 0)
            b = data[p]
            if b < 0x80:
                p += 1
                if b & 1:
                    value = None
                else:
                    value = data[p : p + (b >> 1)]
                    p += b >> 1
            else:
                vlen, p = read(data, p)
                value = None if vlen < 0 else data[p : p + vlen]
                p += max(vlen, 0)
            if p >= end or end > len(data):
                raise CorruptRecordError(
                    f"a record of the batch at offset {header.base_offset} has a wrong length",
                    offset=header.base_offset,
                )
            if key is not None:
                writes[key] = value
            p = end  # past the headers
    except IndexError:
        raise CorruptRecordError(
            f"batch at offset {header.base_offset} ends inside a record",
            offset=header.base_offset,
        ) from None
    return header.record_count
