"""Fetch requests and responses of the non-flexible versions (4-11), by hand.

A consumer at the head of a busy log sends a Fetch for each answer it gets,
each naming every partition it reads (librdkafka and our fetcher: all of a
broker's partitions in one request), so a broker decodes and answers hundreds
to thousands of them a second; the schema interpreter (schema.py) spends
~100 us on an 8-partition request. These functions do the same in
straight-line code: the same dicts, record chunks kept as they are (file
regions too), nothing else copied.

As in produce_codec: `decode_request` (the broker's) and `decode_response`
(our consumers') handle the well-formed frame only and return None for
anything else, which the schema then decodes (and refuses with exactly its
usual error). `encode_response` and `encode_request` write what the schema
would. A test checks both give the same.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from typing import Any

from runtime.protocol.primitives import Writer

VERSIONS = range(4, 12)  # non-flexible; v12+ use compact encodings and tagged fields

_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")
_HEAD_V4 = struct.Struct(">iiiib")  # replica, max wait, min bytes, max bytes, isolation
_SESSION = struct.Struct(">ii")
_PART_V4 = struct.Struct(">iqi")  # partition, fetch offset, partition max bytes
_PART_V5 = struct.Struct(">iqqi")  # + log start offset
_PART_V9 = struct.Struct(">iiqqi")  # + current leader epoch
_ANSWER_V4 = struct.Struct(">ihqq")  # index, error, high watermark, last stable
_ANSWER_V5 = struct.Struct(">ihqqq")  # + log start offset
_ABORTED = struct.Struct(">qq")
_ERROR_SESSION = struct.Struct(">hi")
_NULL = b"\xff\xff\xff\xff"


class _Unusual(Exception):
    pass


def decode_request(buf: memoryview, pos: int, version: int) -> dict | None:
    """The body of a Fetch v4-v11 request at `pos` of `buf`, or None to decode
    it with the schema (see the module docstring)."""
    try:
        return _decode(buf, pos, version)
    except (struct.error, _Unusual):
        return None


def _decode(buf: memoryview, pos: int, version: int) -> dict:
    end = buf.nbytes
    replica, max_wait, min_bytes, max_bytes, isolation = _HEAD_V4.unpack_from(buf, pos)
    pos += _HEAD_V4.size
    session_id, session_epoch = 0, -1
    if version >= 7:
        session_id, session_epoch = _SESSION.unpack_from(buf, pos)
        pos += 8
    layout = _PART_V9 if version >= 9 else _PART_V5 if version >= 5 else _PART_V4
    topics, pos = _topics(buf, pos, end, layout)
    forgotten: list[dict] = []
    if version >= 7:
        forgotten, pos = _forgotten(buf, pos, end)
    rack_id = ""
    if version >= 11:
        rack_id, pos = _string(buf, pos, end)
    return {
        "cluster_id": None,
        "replica_id": replica,
        "max_wait_ms": max_wait,
        "min_bytes": min_bytes,
        "max_bytes": max_bytes,
        "isolation_level": isolation,
        "session_id": session_id,
        "session_epoch": session_epoch,
        "topics": topics,
        "forgotten_topics_data": forgotten,
        "rack_id": rack_id,
    }


def _topics(buf: memoryview, pos: int, end: int, layout: struct.Struct) -> tuple[list, int]:
    count = _count(buf, pos, end, 6)
    pos += 4
    topics = []
    for _ in range(count):
        name, pos = _string(buf, pos, end)
        n = _count(buf, pos, end, layout.size)
        pos += 4
        partitions = []
        for _ in range(n):
            partitions.append(_partition(layout.unpack_from(buf, pos), layout))
            pos += layout.size
        topics.append({"topic": name, "partitions": partitions})
    return topics, pos


def _partition(fields: tuple, layout: struct.Struct) -> dict:
    if layout is _PART_V9:
        index, leader_epoch, offset, log_start, max_bytes = fields
    elif layout is _PART_V5:
        (index, offset, log_start, max_bytes), leader_epoch = fields, -1
    else:
        (index, offset, max_bytes), leader_epoch, log_start = fields, -1, -1
    return {
        "partition": index,
        "current_leader_epoch": leader_epoch,
        "fetch_offset": offset,
        "last_fetched_epoch": -1,
        "log_start_offset": log_start,
        "partition_max_bytes": max_bytes,
    }


def _forgotten(buf: memoryview, pos: int, end: int) -> tuple[list, int]:
    out = []
    count = _count(buf, pos, end, 6)
    pos += 4
    for _ in range(count):
        name, pos = _string(buf, pos, end)
        n = _count(buf, pos, end, 4)
        pos += 4
        out.append({"topic": name, "partitions": list(struct.unpack_from(f">{n}i", buf, pos))})
        pos += 4 * n
    return out, pos


def _string(buf: memoryview, pos: int, end: int) -> tuple[str, int]:
    n = _I16.unpack_from(buf, pos)[0]
    pos += 2
    if n < 0 or pos + n > end:
        raise _Unusual
    return str(buf[pos : pos + n], "utf-8", "replace"), pos + n


def _count(buf: memoryview, pos: int, end: int, least_bytes: int) -> int:
    """An array's element count, each element at least `least_bytes` long."""
    count = _I32.unpack_from(buf, pos)[0]
    if count < 0 or count * least_bytes > end - pos - 4:
        raise _Unusual
    return count


def encode_response(w: Writer, body: Mapping[str, Any], version: int) -> None:
    """Write a Fetch v4-v11 response body (see the module docstring)."""
    out = w.buf
    out += _I32.pack(body.get("throttle_time_ms", 0))
    if version >= 7:
        out += _I16.pack(body.get("error_code", 0))
        out += _I32.pack(body.get("session_id", 0))
    responses = body.get("responses", ())
    out += _I32.pack(len(responses))
    layout = _ANSWER_V5 if version >= 5 else _ANSWER_V4
    for topic in responses:
        name = topic.get("topic", "").encode()
        out += _I16.pack(len(name))
        out += name
        parts = topic.get("partitions", ())
        out += _I32.pack(len(parts))
        for part in parts:
            fields = [  # a missing field takes the schema's default
                part.get("partition_index", 0),
                part.get("error_code", 0),
                part.get("high_watermark", 0),
                part.get("last_stable_offset", -1),
            ]
            if version >= 5:
                fields.append(part.get("log_start_offset", -1))
            out += layout.pack(*fields)
            aborted = part.get("aborted_transactions", ())
            if aborted is None:
                out += _NULL
            else:
                out += _I32.pack(len(aborted))
                for txn in aborted:
                    out += _ABORTED.pack(txn["producer_id"], txn["first_offset"])
            if version >= 11:
                out += _I32.pack(part.get("preferred_read_replica", -1))
            w.records(part.get("records"))
            out = w.buf  # records may have started a new buffer


def decode_response(buf: memoryview, pos: int, version: int) -> dict | None:
    """The body of a Fetch v4-v11 response at `pos` of `buf` (records as views
    into it), or None to decode it with the schema."""
    try:
        return _decode_response(buf, pos, version)
    except (struct.error, _Unusual):
        return None


def _decode_response(buf: memoryview, pos: int, version: int) -> dict:
    end = buf.nbytes
    throttle = _I32.unpack_from(buf, pos)[0]
    pos += 4
    error_code = session_id = 0
    if version >= 7:
        error_code, session_id = _ERROR_SESSION.unpack_from(buf, pos)
        pos += 6
    layout = _ANSWER_V5 if version >= 5 else _ANSWER_V4
    count = _count(buf, pos, end, 6)
    pos += 4
    responses = []
    for _ in range(count):
        name, pos = _string(buf, pos, end)
        n = _count(buf, pos, end, layout.size + 8)
        pos += 4
        partitions = []
        for _ in range(n):
            part, pos = _answer(buf, pos, end, version, layout)
            partitions.append(part)
        responses.append({"topic": name, "partitions": partitions})
    return {
        "throttle_time_ms": throttle,
        "error_code": error_code,
        "session_id": session_id,
        "responses": responses,
    }


def _answer(
    buf: memoryview, pos: int, end: int, version: int, layout: struct.Struct
) -> tuple[dict, int]:
    fields = layout.unpack_from(buf, pos)
    pos += layout.size
    log_start = fields[4] if version >= 5 else -1
    n = _I32.unpack_from(buf, pos)[0]
    pos += 4
    aborted: list[dict] | None = None
    if n != -1:
        if n < 0 or n * _ABORTED.size > end - pos:
            raise _Unusual
        aborted = [
            {"producer_id": pid, "first_offset": first}
            for pid, first in _ABORTED.iter_unpack(buf[pos : pos + n * _ABORTED.size])
        ]
        pos += n * _ABORTED.size
    preferred = -1
    if version >= 11:
        preferred = _I32.unpack_from(buf, pos)[0]
        pos += 4
    size = _I32.unpack_from(buf, pos)[0]
    pos += 4
    records = None
    if size != -1:
        if size < 0 or pos + size > end:
            raise _Unusual
        records = buf[pos : pos + size]
        pos += size
    return {
        "partition_index": fields[0],
        "error_code": fields[1],
        "high_watermark": fields[2],
        "last_stable_offset": fields[3],
        "log_start_offset": log_start,
        "diverging_epoch": {"epoch": -1, "end_offset": -1},  # v12+ (tagged): defaults
        "current_leader": {"leader_id": -1, "leader_epoch": -1},
        "snapshot_id": {"end_offset": -1, "epoch": -1},
        "aborted_transactions": aborted,
        "preferred_read_replica": preferred,
        "records": records,
    }, pos


def encode_request(w: Writer, body: Mapping[str, Any], version: int) -> None:
    """Write a Fetch v4-v11 request body (what our consumers send)."""
    out = w.buf
    out += _HEAD_V4.pack(
        body.get("replica_id", -1),
        body.get("max_wait_ms", 0),
        body.get("min_bytes", 0),
        body.get("max_bytes", 0x7FFFFFFF),
        body.get("isolation_level", 0),
    )
    if version >= 7:
        out += _SESSION.pack(body.get("session_id", 0), body.get("session_epoch", -1))
    layout = _PART_V9 if version >= 9 else _PART_V5 if version >= 5 else _PART_V4
    topics = body.get("topics", ())
    out += _I32.pack(len(topics))
    for topic in topics:
        _name(out, topic.get("topic", ""))
        parts = topic.get("partitions", ())
        out += _I32.pack(len(parts))
        for part in parts:
            fields = [part.get("partition", 0)]
            if version >= 9:
                fields.append(part.get("current_leader_epoch", -1))
            fields.append(part.get("fetch_offset", 0))
            if version >= 5:
                fields.append(part.get("log_start_offset", -1))
            fields.append(part.get("partition_max_bytes", 0))
            out += layout.pack(*fields)
    if version >= 7:
        forgotten = body.get("forgotten_topics_data", ())
        out += _I32.pack(len(forgotten))
        for topic in forgotten:
            _name(out, topic.get("topic", ""))
            numbers = topic.get("partitions", ())
            out += _I32.pack(len(numbers))
            out += struct.pack(f">{len(numbers)}i", *numbers)
    if version >= 11:
        _name(out, body.get("rack_id", ""))


def _name(out: bytearray, name: str) -> None:
    data = name.encode()
    if len(data) > 0x7FFF:
        raise ValueError(f"string of {len(data)} bytes is too long")
    out += _I16.pack(len(data))
    out += data
