"""The schema registry of `streams broker` (on its --http port) with confluent-kafka's
own SchemaRegistryClient and its Avro, Protobuf and JSON Schema serializers:
records produced through them are read back by their deserializers; a change
that breaks BACKWARD compatibility is refused with 409, one that keeps it is
accepted, for each format; the registry survives a broker restart."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest
from confluent_kafka import Producer
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.schema_registry.json_schema import JSONDeserializer, JSONSerializer
from confluent_kafka.schema_registry.protobuf import ProtobufDeserializer, ProtobufSerializer
from confluent_kafka.serialization import MessageField, SerializationContext
from confluent_reading import read_values
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

pytestmark = pytest.mark.slow

TIMEOUT_S = 15.0
QUIET = {"log_level": 3}
RIDE_AVRO = json.dumps(
    {
        "type": "record",
        "name": "Ride",
        "namespace": "rides",
        "fields": [{"name": "id", "type": "string"}, {"name": "passengers", "type": "int"}],
    }
)
RIDE_JSON = json.dumps(
    {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "Ride",
        "type": "object",
        "properties": {"id": {"type": "string"}, "passengers": {"type": "integer"}},
        "required": ["id"],
        "additionalProperties": False,
    }
)
RIDES = [{"id": f"r{i}", "passengers": i % 4 + 1} for i in range(10)]


@pytest.fixture
def registry(broker):
    """registry() -> a SchemaRegistryClient of the broker's registry, closed at teardown."""
    made: list[SchemaRegistryClient] = []

    def make() -> SchemaRegistryClient:
        made.append(SchemaRegistryClient({"url": broker.http}))
        return made[-1]

    yield make
    for client in made:
        client.close()


def ride_class() -> type:
    """A generated-style message class for `message Ride {string id = 1; int32 passengers = 2;}`."""
    file = descriptor_pb2.FileDescriptorProto(
        name="rides_test.proto", package="rides", syntax="proto3"
    )
    message = file.message_type.add(name="Ride")
    FDP = descriptor_pb2.FieldDescriptorProto
    message.field.add(name="id", number=1, type=FDP.TYPE_STRING, label=FDP.LABEL_OPTIONAL)
    message.field.add(name="passengers", number=2, type=FDP.TYPE_INT32, label=FDP.LABEL_OPTIONAL)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("rides.Ride"))


def produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, **QUIET})
    for value in values:
        producer.produce(topic, value=value)
    assert producer.flush(TIMEOUT_S) == 0


def round_trip(broker, topic: str, serialize, deserialize, values: list) -> list:
    value_ctx = SerializationContext(topic, MessageField.VALUE)
    encoded = [serialize(v, value_ctx) for v in values]
    assert all(e[0] == 0 for e in encoded)  # Confluent's wire format: magic byte 0, then the id
    produce(broker.bootstrap, topic, encoded)
    return [
        deserialize(raw, value_ctx) for raw in read_values(broker.bootstrap, topic, len(values))
    ]


def test_avro_serializer_and_deserializer(broker, registry) -> None:
    client = registry()
    serializer = AvroSerializer(client, RIDE_AVRO)
    assert round_trip(broker, "avro-rides", serializer, AvroDeserializer(client), RIDES) == RIDES
    assert client.get_latest_version("avro-rides-value").schema.schema_type == "AVRO"


def test_json_schema_serializer_and_deserializer(broker, registry) -> None:
    client = registry()
    serializer = JSONSerializer(RIDE_JSON, client)
    deserializer = JSONDeserializer(RIDE_JSON, schema_registry_client=client)
    assert round_trip(broker, "json-rides", serializer, deserializer, RIDES) == RIDES


def test_protobuf_serializer_and_deserializer(broker, registry) -> None:
    client = registry()
    ride = ride_class()
    conf = {"use.deprecated.format": False}
    serializer = ProtobufSerializer(ride, client, conf)
    deserializer = ProtobufDeserializer(ride, conf)
    rides = [ride(id=r["id"], passengers=r["passengers"]) for r in RIDES]
    back = round_trip(broker, "proto-rides", serializer, deserializer, rides)
    assert [(m.id, m.passengers) for m in back] == [(r["id"], r["passengers"]) for r in RIDES]
    registered = client.get_latest_version("proto-rides-value")
    assert registered.schema.schema_type == "PROTOBUF"


# (format, first version, a BACKWARD-compatible change, a breaking change)
CHANGES = [
    (
        "AVRO",
        RIDE_AVRO,
        RIDE_AVRO.replace(
            '"type": "int"}', '"type": "int"}, {"name": "fare", "type": "double", "default": 0.0}'
        ),
        RIDE_AVRO.replace('"type": "int"}', '"type": "int"}, {"name": "fare", "type": "double"}'),
    ),
    (
        "JSON",
        RIDE_JSON,
        RIDE_JSON.replace('"passengers": {"type": "integer"}', '"passengers": {"type": "number"}'),
        RIDE_JSON.replace('"required": ["id"]', '"required": ["id", "passengers"]'),
    ),
    (
        "PROTOBUF",
        'syntax = "proto3"; package rides; message Ride { string id = 1; int32 passengers = 2; }',
        'syntax = "proto3"; package rides; message Ride { string id = 1; int64 passengers = 2; }',
        'syntax = "proto3"; package rides; message Ride { string id = 1; string passengers = 2; }',
    ),
]


@pytest.mark.parametrize(
    ("kind", "first", "compatible", "breaking"), CHANGES, ids=[c[0] for c in CHANGES]
)
def test_a_breaking_change_is_refused_and_a_compatible_one_accepted(
    registry, kind, first, compatible, breaking
):
    client = registry()
    subject = f"changes-{kind.lower()}-value"
    first_id = client.register_schema(subject, Schema(first, kind))
    with pytest.raises(SchemaRegistryError) as refused:
        client.register_schema(subject, Schema(breaking, kind))
    assert refused.value.http_status_code == 409 and refused.value.error_code == 409
    assert client.get_latest_version(subject).schema_id == first_id  # the old one still served
    assert not client.test_compatibility(subject, Schema(breaking, kind))
    second_id = client.register_schema(subject, Schema(compatible, kind))
    assert second_id != first_id
    assert client.get_versions(subject) == [1, 2]


def test_the_registry_survives_a_restart(broker, registry) -> None:
    client = registry()
    schema_id = client.register_schema("kept-value", Schema(RIDE_AVRO, "AVRO"))
    client.set_compatibility("kept-value", "FULL")
    broker.stop()
    broker.start()
    again = registry()
    assert again.get_latest_version("kept-value").schema_id == schema_id
    assert again.get_schema(schema_id).schema_str == RIDE_AVRO
    assert again.get_compatibility("kept-value") == "FULL"
    assert again.register_schema("kept-value", Schema(RIDE_AVRO, "AVRO")) == schema_id


def call(method: str, url: str, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/vnd.schemaregistry.v1+json")
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_bad_requests_get_confluents_errors(broker) -> None:
    http = broker.http
    assert call("GET", f"{http}/subjects/nope/versions") == (
        404, {"error_code": 40401, "message": "Subject 'nope' not found."})  # fmt: skip
    status, body = call("POST", f"{http}/subjects/bad-value/versions", {"schema": "{not avro"})
    assert (status, body["error_code"]) == (422, 42201)
    status, body = call(
        "POST", f"{http}/subjects/x/versions", {"schema": "{}", "schemaType": "XML"}
    )
    assert (status, body["error_code"]) == (422, 42201)
    assert call("GET", f"{http}/schemas/ids/987654")[1]["error_code"] == 40403
    call("POST", f"{http}/subjects/v-value/versions", {"schema": RIDE_AVRO})
    assert call("GET", f"{http}/subjects/v-value/versions/9")[1]["error_code"] == 40402
    assert call("GET", f"{http}/subjects/v-value/versions/x")[1]["error_code"] == 42202
    assert call("PUT", f"{http}/config", {"compatibility": "SIDEWAYS"})[1]["error_code"] == 42203
    assert call("DELETE", f"{http}/subjects/v-value?permanent=true")[1]["error_code"] == 40405
