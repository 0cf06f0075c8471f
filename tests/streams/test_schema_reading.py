"""Decoding wire-format records by the writer's schema alone (what `tail --registry`
shows), for each format, against a registry double."""

from __future__ import annotations

import io
import json

import fastavro
import pytest
from google.protobuf import descriptor_pool, message_factory

from runtime.schemas.protobuf import ProtobufSchema
from streams.schema_codecs import HEADER, RegistryError
from streams.schema_reading import registry_loader

PROTO = """
syntax = "proto3";
package rides;
message Ride { string id = 1; int32 passengers = 2; }
message Fare { string ride = 1; double amount = 2; message Part { string what = 1; } }
"""
AVRO = {"type": "record", "name": "Ride", "fields": [{"name": "id", "type": "string"}]}


class Registry:
    def __init__(self) -> None:
        self.schemas = {1: ("AVRO", json.dumps(AVRO)), 2: ("JSON", "{}"), 3: ("PROTOBUF", PROTO)}
        self.asked: list[int] = []

    def schema(self, schema_id: int) -> tuple[str, str]:
        self.asked.append(schema_id)
        if schema_id not in self.schemas:
            raise RegistryError("404 Schema not found", 404, 40403)
        return self.schemas[schema_id]


def framed(schema_id: int, payload: bytes) -> bytes:
    return HEADER.pack(0, schema_id) + payload


def test_avro_and_json_by_the_writers_schema_fetched_once():
    registry = Registry()
    load = registry_loader(registry)  # type: ignore[arg-type]
    out = io.BytesIO()
    fastavro.schemaless_writer(out, fastavro.parse_schema(AVRO), {"id": "r1"})
    assert load(framed(1, out.getvalue())) == {"id": "r1"}
    assert load(framed(1, out.getvalue())) == {"id": "r1"}
    assert load(framed(2, b'{"a": 1}')) == {"a": 1}
    assert registry.asked == [1, 2]


def test_protobuf_messages_by_their_index_path():
    pool = descriptor_pool.DescriptorPool()
    pool.Add(ProtobufSchema(PROTO).descriptor)
    cls = message_factory.GetMessageClass
    ride = cls(pool.FindMessageTypeByName("rides.Ride"))(id="r1", passengers=2)
    part = cls(pool.FindMessageTypeByName("rides.Fare.Part"))(what="base")
    load = registry_loader(Registry())  # type: ignore[arg-type]
    assert load(framed(3, b"\x00" + ride.SerializeToString())) == {"id": "r1", "passengers": 2}
    # [1, 0]: the first message nested in the second top-level one (zig-zag varints)
    assert load(framed(3, b"\x04\x02\x00" + part.SerializeToString())) == {"what": "base"}


def test_an_unknown_id_or_no_wire_format_is_a_value_error():
    load = registry_loader(Registry())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="schema id 9"):
        load(framed(9, b"x"))
    with pytest.raises(ValueError, match="wire format"):
        load(b'{"plain": "json"}')
