"""The records of batches as columns: what a consumer turns into events a
column at a time (one codec call per column), with no tuple per record and
no zip(*rows) to take them apart again.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from runtime.log import records
from runtime.log.records import CONTROL, BatchHeader, Header, decode_batch_rows

__all__ = ["OFFSET_MIN", "RecordColumns", "decode_batch_columns"]

OFFSET_MIN = -(1 << 63)


@dataclass(slots=True)
class RecordColumns:
    """Five lists of equal length, one entry per record, in offset order."""

    offsets: list[int] = field(default_factory=list)
    timestamps: list[int] = field(default_factory=list)
    keys: list[bytes | None] = field(default_factory=list)
    values: list[bytes | None] = field(default_factory=list)
    headers: list[tuple[Header, ...]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.offsets)

    def rows(self) -> list[records.RecordRow]:
        return list(
            zip(self.offsets, self.timestamps, self.keys, self.values, self.headers, strict=True)
        )


def decode_batch_columns(
    buf: bytes, pos: int, header: BatchHeader, columns: RecordColumns, min_offset: int = OFFSET_MIN
) -> int:
    """Append the records at or past `min_offset` of the batch at `pos` of `buf`
    (parsed header `header`, from iter_batches) to `columns`; the number appended.
    All of a batch or, when it is corrupt (CorruptRecordError), none of it.
    No CRC check (as decode_batch_rows)."""
    if header.attributes & CONTROL:
        return 0
    compiled = records._crecords
    if compiled is not None:
        data, start, stop = records.records_span(buf, pos, header)
        return compiled.decode_columns(
            data,
            start,
            stop,
            header.base_offset,
            header.base_timestamp,
            records.log_append_time(header),
            header.record_count,
            min_offset,
            columns.offsets,
            columns.timestamps,
            columns.keys,
            columns.values,
            columns.headers,
        )
    rows = [row for row in decode_batch_rows(buf, pos, header) if row[0] >= min_offset]
    for offset, timestamp, key, value, headers in rows:
        columns.offsets.append(offset)
        columns.timestamps.append(timestamp)
        columns.keys.append(key)
        columns.values.append(value)
        columns.headers.append(headers)
    return len(rows)
