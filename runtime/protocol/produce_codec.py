"""Produce requests and responses of the non-flexible versions (3-8), by hand.

A producer such as librdkafka sends one Produce per partition batch, so a
broker serving 10,000 small events a second over 8 partitions decodes and
answers thousands of them a second; the schema interpreter (schema.py) spends
most of a small request's cost walking its field list. These two functions do
the same work in straight-line code: the same dicts, records as views into
the frame, nothing else copied.

`decode_request` handles the well-formed request only: anything it does not
expect (a negative length, a count that cannot fit, a truncated field) makes
it return None, and the caller decodes with the schema instead, which then
answers with exactly the error it always did. A test checks both decoders
give the same bodies.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from typing import Any

from runtime.protocol.primitives import Writer

VERSIONS = range(3, 9)  # non-flexible; v9+ use compact encodings and tagged fields

_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")
_ACKS_TIMEOUT = struct.Struct(">hi")
_PARTITION_HEAD = struct.Struct(">ii")  # partition_index, records length
_PARTITION_V5 = struct.Struct(">ihqqq")  # index, error, base offset, append time, log start
_PARTITION_V2 = struct.Struct(">ihqq")  # v3-v4: no log start offset
_NO_RECORD_ERRORS = b"\x00\x00\x00\x00\xff\xff"  # v8+: empty record_errors, null message


def decode_request(buf: memoryview, pos: int) -> dict | None:
    """The body of a Produce v3-v8 request at `pos` of `buf`, or None to decode
    it with the schema (see the module docstring)."""
    try:
        return _decode(buf, pos)
    except (struct.error, _Unusual):
        return None


class _Unusual(Exception):
    pass


def _decode(buf: memoryview, pos: int) -> dict:
    end = buf.nbytes
    n = _I16.unpack_from(buf, pos)[0]
    pos += 2
    txn_id = None
    if n >= 0:
        txn_id, pos = _text(buf, pos, n, end), pos + n
    elif n != -1:
        raise _Unusual
    acks, timeout_ms = _ACKS_TIMEOUT.unpack_from(buf, pos)
    pos += 6
    count = _count(buf, pos, end, 6)
    pos += 4
    topics = []
    for _ in range(count):
        n = _I16.unpack_from(buf, pos)[0]
        if n < 0:
            raise _Unusual
        name = _text(buf, pos + 2, n, end)
        pos += 2 + n
        parts_count = _count(buf, pos, end, 8)
        pos += 4
        partitions = []
        for _ in range(parts_count):
            index, size = _PARTITION_HEAD.unpack_from(buf, pos)
            pos += 8
            if size < 0 or pos + size > end:
                if size != -1:
                    raise _Unusual
                records = None
            else:
                records = buf[pos : pos + size]
                pos += size
            partitions.append({"partition_index": index, "records": records})
        topics.append({"name": name, "partitions": partitions})
    return {"transactional_id": txn_id, "acks": acks, "timeout_ms": timeout_ms, "topics": topics}


def _text(buf: memoryview, pos: int, n: int, end: int) -> str:
    if pos + n > end:
        raise _Unusual
    return str(buf[pos : pos + n], "utf-8", "replace")


def _count(buf: memoryview, pos: int, end: int, least_bytes: int) -> int:
    """An array's element count, each element at least `least_bytes` long."""
    count = _I32.unpack_from(buf, pos)[0]
    if count < 0 or count * least_bytes > end - pos - 4:
        raise _Unusual
    return count


def encode_response(w: Writer, body: Mapping[str, Any], version: int) -> bool:
    """Write a Produce v3-v8 response body; False (nothing written) when it
    carries record errors, which the schema encodes instead."""
    responses = body.get("responses", ())
    parts_of = [topic.get("partitions", ()) for topic in responses]
    if any(
        part.get("record_errors") or part.get("error_message") is not None
        for p in parts_of
        for part in p
    ):
        return False
    out = w.buf
    out += _I32.pack(len(responses))
    layout = _PARTITION_V5 if version >= 5 else _PARTITION_V2
    for topic, parts in zip(responses, parts_of, strict=True):
        name = topic.get("name", "").encode()
        out += _I16.pack(len(name))
        out += name
        out += _I32.pack(len(parts))
        for part in parts:
            fields = [  # a missing field takes the schema's default
                part.get("partition_index", 0),
                part.get("error_code", 0),
                part.get("base_offset", 0),
                part.get("log_append_time_ms", -1),
            ]
            if version >= 5:
                fields.append(part.get("log_start_offset", -1))
            out += layout.pack(*fields)
            if version >= 8:
                out += _NO_RECORD_ERRORS
    out += _I32.pack(body.get("throttle_time_ms", 0))
    return True
