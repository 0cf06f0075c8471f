"""Schemas derived from Records, and the wire format's edges (no registry needed)."""

from __future__ import annotations

import enum
import io
import json
from datetime import UTC, datetime

import fastavro
import jsonschema
import pytest

import streams
from runtime.schemas.avro import AvroSchema, can_read
from streams.schema_codecs import _message_indexes, _plain, _skip_indexes, split
from streams.schema_derive import avro_schema, json_schema


class Zone(enum.Enum):
    CENTER = "center"
    AIRPORT = "airport"


class Point(streams.Record):
    lat: float
    lon: float


class Ride(streams.Record):
    id: str
    at: datetime
    zone: Zone
    start: Point
    stops: list[Point] = []
    tags: dict[str, str] = {}
    passengers: int = 1
    note: str | None = None


def test_the_avro_schema_parses_and_round_trips_a_record():
    schema = fastavro.parse_schema(avro_schema(Ride))
    ride = Ride("r1", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), Zone.AIRPORT, Point(1.0, 2.0))
    out = io.BytesIO()
    fastavro.schemaless_writer(out, schema, _plain(ride))
    back = fastavro.schemaless_reader(io.BytesIO(out.getvalue()), schema, None)
    assert Ride.from_dict(back) == ride


def test_fields_with_defaults_keep_backward_compatibility():
    class V1(streams.Record):
        __avro_name__ = "t.Ride"
        id: str

    class V2(streams.Record):
        __avro_name__ = "t.Ride"
        id: str
        passengers: int = 1
        note: str | None = None

    v1, v2 = (AvroSchema(json.dumps(avro_schema(m))) for m in (V1, V2))
    assert can_read(v2, v1) == []


def test_the_json_schema_validates_what_to_dict_gives():
    schema = json_schema(Ride)
    jsonschema.Draft7Validator.check_schema(schema)
    document = {"id": "r1", "at": "2026-01-02T03:04:05Z", "zone": "center",
                "start": {"lat": 1.0, "lon": 2.0}}  # fmt: skip
    jsonschema.validate(document, schema)
    assert schema["required"] == ["id", "at", "zone", "start"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**document, "unknown": 1}, schema)


def test_types_without_a_schema_form_are_named():
    class Odd(streams.Record):
        when: complex

    with pytest.raises(TypeError, match=r"Odd\.when"):
        avro_schema(Odd)
    with pytest.raises(TypeError, match=r"Odd\.when"):
        json_schema(Odd)


@pytest.mark.parametrize("data", [b"", b"\x00\x00", b"\x01\x00\x00\x00\x01{}", b'{"a": 1}'])
def test_records_not_in_the_wire_format_are_refused(data):
    with pytest.raises(ValueError, match="wire format"):
        split(data)


def test_protobuf_message_indexes_round_trip():
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    file = descriptor_pb2.FileDescriptorProto(name="idx.proto", package="idx", syntax="proto3")
    first = file.message_type.add(name="First")
    first.nested_type.add(name="Inner")
    file.message_type.add(name="Second")
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    get = pool.FindMessageTypeByName
    assert _message_indexes(get("idx.First")) == b"\x00"
    second, inner = _message_indexes(get("idx.Second")), _message_indexes(get("idx.First.Inner"))
    assert second == b"\x02\x02" and inner == b"\x04\x00\x00"  # zig-zag: [1, 1] and [2, 0, 0]
    for prefix in (b"\x00", second, inner):
        assert _skip_indexes(prefix + b"payload") == b"payload"
    assert message_factory.GetMessageClass(get("idx.Second"))
