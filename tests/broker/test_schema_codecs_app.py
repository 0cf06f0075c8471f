"""Schema codecs in the framework, end to end with confluent-kafka on both sides:
its serializers produce rides to `streams broker` (registry on --http), a streams
agent decodes them into typed values and sends fares with value_serializer=
"avro" / "json_schema" / "protobuf", and confluent-kafka's deserializers read the
fares back. Records not in the wire format follow the decode-error policy."""

from __future__ import annotations

import asyncio
import json

import pytest
from confluent_kafka import Producer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.json_schema import JSONDeserializer, JSONSerializer
from confluent_kafka.schema_registry.protobuf import ProtobufDeserializer, ProtobufSerializer
from confluent_kafka.serialization import MessageField, SerializationContext
from confluent_reading import read_values
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from waiting import wait_until_async

import streams
from streams.errors import ValueDecodeError
from streams.worker import Worker

pytestmark = pytest.mark.slow

TIMEOUT_S = 30.0
QUIET = {"log_level": 3}
COUNT = 12


class Ride(streams.Record):
    __avro_name__ = "rides.Ride"  # the name other producers registered it under
    id: str
    passengers: int


class Fare(streams.Record):
    ride: str
    amount: float
    note: str | None = None


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
        "type": "object",
        "properties": {"id": {"type": "string"}, "passengers": {"type": "integer"}},
        "required": ["id", "passengers"],
        "additionalProperties": False,
    }
)


def proto_classes() -> tuple[type, type]:
    FDP = descriptor_pb2.FieldDescriptorProto
    file = descriptor_pb2.FileDescriptorProto(
        name="fares_test.proto", package="fares", syntax="proto3"
    )
    ride = file.message_type.add(name="Ride")
    ride.field.add(name="id", number=1, type=FDP.TYPE_STRING, label=FDP.LABEL_OPTIONAL)
    ride.field.add(name="passengers", number=2, type=FDP.TYPE_INT32, label=FDP.LABEL_OPTIONAL)
    fare = file.message_type.add(name="Fare")
    fare.field.add(name="ride", number=1, type=FDP.TYPE_STRING, label=FDP.LABEL_OPTIONAL)
    fare.field.add(name="amount", number=2, type=FDP.TYPE_DOUBLE, label=FDP.LABEL_OPTIONAL)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    get = message_factory.GetMessageClass
    return get(pool.FindMessageTypeByName("fares.Ride")), get(
        pool.FindMessageTypeByName("fares.Fare")
    )


def produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, **QUIET})
    for value in values:
        producer.produce(topic, value=value)
    assert producer.flush(TIMEOUT_S) == 0


def run_app(broker, fmt: str, types: tuple[type, type], fare_of, raw_rides: list[bytes]) -> list:
    """Run a streams app that reads rides and sends a fare per ride; the rides it saw."""
    app = streams.App(
        f"fares-{fmt}",
        broker=f"kafka://{broker.bootstrap}",
        schema_registry_url=broker.http,
        commit_interval_s=0.2,
    )
    ride_type, fare_type = types
    rides = app.topic(f"rides-{fmt}", value_type=ride_type, value_serializer=fmt, partitions=1)
    fares = app.topic(f"fares-{fmt}", value_type=fare_type, value_serializer=fmt, partitions=1)
    seen: list = []

    @app.agent(rides)
    async def price(stream):
        async for ride in stream:
            seen.append(ride)
            await fares.send(value=fare_of(ride))

    async def main() -> None:
        produce(broker.bootstrap, rides.name, raw_rides)
        async with Worker(app):
            await wait_until_async(
                lambda: len(seen) >= len(raw_rides),
                timeout_s=TIMEOUT_S,
                what=lambda: f"{len(seen)} of {len(raw_rides)} rides processed",
            )

    asyncio.run(main())
    return seen


@pytest.fixture
def registry(broker):
    client = SchemaRegistryClient({"url": broker.http})
    yield client
    client.close()


def ctx(topic: str) -> SerializationContext:
    return SerializationContext(topic, MessageField.VALUE)


def fares_read(broker, fmt: str, deserialize) -> list:
    topic = f"fares-{fmt}"
    return [deserialize(raw, ctx(topic)) for raw in read_values(broker.bootstrap, topic, COUNT)]


def test_avro_in_and_out(broker, registry) -> None:
    serialize = AvroSerializer(registry, RIDE_AVRO)
    rides = [{"id": f"r{i}", "passengers": i % 4 + 1} for i in range(COUNT)]
    raw = [serialize(ride, ctx("rides-avro")) for ride in rides]
    seen = run_app(broker, "avro", (Ride, Fare), lambda r: Fare(r.id, r.passengers * 2.5), raw)
    assert all(isinstance(r, Ride) for r in seen)
    assert [(r.id, r.passengers) for r in seen] == [(r["id"], r["passengers"]) for r in rides]
    expected = [{"ride": r["id"], "amount": r["passengers"] * 2.5, "note": None} for r in rides]
    assert fares_read(broker, "avro", AvroDeserializer(registry)) == expected
    assert registry.get_latest_version("fares-avro-value").schema.schema_type == "AVRO"


def test_json_schema_in_and_out(broker, registry) -> None:
    serialize = JSONSerializer(RIDE_JSON, registry)
    rides = [{"id": f"r{i}", "passengers": i % 3 + 1} for i in range(COUNT)]
    raw = [serialize(ride, ctx("rides-json_schema")) for ride in rides]
    seen = run_app(broker, "json_schema", (Ride, Fare), lambda r: Fare(r.id, r.passengers), raw)
    assert [(r.id, r.passengers) for r in seen] == [(r["id"], r["passengers"]) for r in rides]
    schema = registry.get_latest_version("fares-json_schema-value").schema
    deserialize = JSONDeserializer(schema.schema_str, schema_registry_client=registry)
    fares = fares_read(broker, "json_schema", deserialize)
    assert [f["amount"] for f in fares] == [r["passengers"] for r in rides]


def test_protobuf_in_and_out(broker, registry) -> None:
    RideMessage, FareMessage = proto_classes()
    conf = {"use.deprecated.format": False}
    serialize = ProtobufSerializer(RideMessage, registry, conf)
    rides = [RideMessage(id=f"r{i}", passengers=i + 1) for i in range(COUNT)]
    raw = [serialize(ride, ctx("rides-protobuf")) for ride in rides]

    def fare_of(ride):
        return FareMessage(ride=ride.id, amount=ride.passengers * 1.5)

    seen = run_app(broker, "protobuf", (RideMessage, FareMessage), fare_of, raw)
    assert [r.passengers for r in seen] == [r.passengers for r in rides]
    fares = fares_read(broker, "protobuf", ProtobufDeserializer(FareMessage, conf))
    assert [(f.ride, f.amount) for f in fares] == [(r.id, r.passengers * 1.5) for r in rides]


def test_a_record_not_in_the_wire_format_stops_the_worker_naming_it(broker) -> None:
    app = streams.App(
        "wire",
        broker=f"kafka://{broker.bootstrap}",
        schema_registry_url=broker.http,
        on_decode_error="stop",
    )
    rides = app.topic("rides-plain", value_type=Ride, value_serializer="avro", partitions=1)

    @app.agent(rides)
    async def price(stream):
        async for _ in stream:
            pass

    async def main() -> None:
        produce(broker.bootstrap, rides.name, [b'{"id": "r1", "passengers": 1}'])
        worker = Worker(app)
        await worker.start()
        try:
            with pytest.raises(ValueDecodeError) as caught:
                async with asyncio.timeout(TIMEOUT_S):
                    await worker.run_until(asyncio.Event())
        finally:
            await worker.stop()
        assert (caught.value.topic, caught.value.offset) == ("rides-plain", 0)
        assert "wire format" in str(caught.value.__cause__ or caught.value)

    asyncio.run(main())
