"""A consumer group's metadata record in __consumer_offsets, in Kafka's layout.

Kafka keeps, next to the offset commits, one record per group that says what
kind of group it is; a coordinator that loads the topic after a restart knows
from it that an Empty group is a "consumer" group, not a simple one. Strings
are int16 length + UTF-8, nullable strings -1 for null:

    key   = version int16 (= 2), group string
    value = version int16 (= 3), protocol_type string, generation int32,
            protocol nullable string, leader nullable string,
            current_state_timestamp int64, members int32 count (always 0 here:
            membership lives in memory and clients rejoin after a restart)
    a null value (tombstone) deletes the group's metadata

Offset commit keys are version 0 or 1, so a key's first two bytes say which
record it is.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from runtime.errors import CorruptRecordError

GROUP_KEY_VERSION = 2
_VALUE_VERSION = 3
_INT16 = struct.Struct(">h")
_INT32 = struct.Struct(">i")
_INT64 = struct.Struct(">q")


class GroupMetadata(NamedTuple):
    """What a group is, as its coordinator last wrote it down."""

    protocol_type: str
    generation_id: int = 0
    protocol_name: str | None = None
    leader_id: str | None = None


def key_version(key: bytes) -> int:
    if len(key) < 2:
        raise CorruptRecordError(f"a __consumer_offsets key of {len(key)} bytes")
    return _INT16.unpack_from(key, 0)[0]


def encode_group_key(group: str) -> bytes:
    g = group.encode()
    return _INT16.pack(GROUP_KEY_VERSION) + _INT16.pack(len(g)) + g


def decode_group_key(key: bytes) -> str:
    try:
        (length,) = _INT16.unpack_from(key, 2)
        if len(key) != 4 + length:
            raise CorruptRecordError(f"group metadata key of {len(key)} bytes")
        return key[4:].decode()
    except (struct.error, UnicodeDecodeError) as exc:
        raise CorruptRecordError(f"bad group metadata key: {exc}") from None


def _string(value: str | None) -> bytes:
    if value is None:
        return _INT16.pack(-1)
    raw = value.encode()
    return _INT16.pack(len(raw)) + raw


def encode_group_value(meta: GroupMetadata, timestamp_ms: int) -> bytes:
    return b"".join(
        (
            _INT16.pack(_VALUE_VERSION),
            _string(meta.protocol_type),
            _INT32.pack(meta.generation_id),
            _string(meta.protocol_name),
            _string(meta.leader_id),
            _INT64.pack(timestamp_ms),
            _INT32.pack(0),
        )
    )


def decode_group_value(value: bytes) -> GroupMetadata:
    """Versions 0-3 share the fields read here (v2+ adds the timestamp after them)."""
    try:
        (version,) = _INT16.unpack_from(value, 0)
        if not 0 <= version <= _VALUE_VERSION:
            raise CorruptRecordError(f"group metadata value version {version} is not supported")
        protocol_type, pos = _read_string(value, 2)
        (generation,) = _INT32.unpack_from(value, pos)
        protocol, pos = _read_string(value, pos + 4)
        leader, pos = _read_string(value, pos)
    except (struct.error, UnicodeDecodeError) as exc:
        raise CorruptRecordError(f"bad group metadata value: {exc}") from None
    return GroupMetadata(protocol_type or "", generation, protocol, leader)


def _read_string(data: bytes, pos: int) -> tuple[str | None, int]:
    (length,) = _INT16.unpack_from(data, pos)
    if length < 0:
        return None, pos + 2
    end = pos + 2 + length
    if end > len(data):
        raise CorruptRecordError("group metadata string runs past the value")
    return data[pos + 2 : end].decode(), end
