"""Reading records in the schema registry's wire format without knowing their type.

`streams tail --registry URL` (or $STREAMS_SCHEMA_REGISTRY) shows Avro, JSON
Schema and Protobuf records as JSON: the writer's schema is fetched by the id
each record carries (once per id), and the payload decoded with it alone.
Protobuf schemas registered as .proto text or as a serialized descriptor both
work (runtime/schemas/protobuf.py builds the descriptor); the message is the
one the record's index path names. A record not in the wire format raises
ValueError, so the caller shows its bytes as they are.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

import fastavro
import orjson
from google.protobuf import descriptor_pool, message_factory
from google.protobuf.json_format import MessageToDict

from streams.schema_codecs import RegistryClient, RegistryError, _read_zigzag, split

Decode = Callable[[bytes], Any]


def registry_loader(client: RegistryClient) -> Decode:
    """bytes in the wire format -> a JSON-able value, through `client`'s registry."""
    decoders: dict[int, Callable[[bytes], Any]] = {}

    def load(data: bytes) -> Any:
        schema_id, payload = split(data)
        decode = decoders.get(schema_id)
        if decode is None:
            try:
                schema_type, text = client.schema(schema_id)
            except RegistryError as exc:
                raise ValueError(f"schema id {schema_id}: {exc}") from None
            decode = decoders[schema_id] = _decoder(schema_type, text)
        return decode(bytes(payload))

    return load


def _decoder(schema_type: str, text: str) -> Callable[[bytes], Any]:
    if schema_type == "AVRO":
        writer = fastavro.parse_schema(json.loads(text))
        return lambda payload: fastavro.schemaless_reader(io.BytesIO(payload), writer, None)
    if schema_type == "JSON":
        return orjson.loads
    return _protobuf_decoder(text)


def _protobuf_decoder(text: str) -> Callable[[bytes], Any]:
    from runtime.schemas.protobuf import ProtobufSchema

    file = ProtobufSchema(text).descriptor
    file.ClearField("dependency")  # imports are not resolved here: their types stay unknown
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    top = [m.name for m in file.message_type]

    def decode(payload: bytes) -> Any:
        count, position = _read_zigzag(payload, 0)
        path = [0]
        if count:
            path = []
            for _ in range(count):
                index, position = _read_zigzag(payload, position)
                path.append(index)
        message = file.message_type[path[0]]
        name = f"{file.package}.{top[path[0]]}" if file.package else top[path[0]]
        for index in path[1:]:
            message = message.nested_type[index]
            name = f"{name}.{message.name}"
        cls = message_factory.GetMessageClass(pool.FindMessageTypeByName(name))
        return MessageToDict(cls.FromString(payload[position:]), preserving_proto_field_name=True)

    return decode
