"""Kafka error codes the broker answers with, seen by real clients and by raw frames."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kafka_wire import (
    WireClient,
    batch,
    create_topics_codes,
    fetch_body,
    metadata_body,
    produce_body,
)

from runtime.protocol.codes import ApiKey, ErrorCode

pytestmark = pytest.mark.slow

TIMEOUT_S = 30.0


def produce_code(wire: WireClient, topic: str, partition: int, records: bytes) -> int:
    answer = wire.request(ApiKey.PRODUCE, 8, produce_body(topic, partition, records))
    return answer["responses"][0]["partitions"][0]["error_code"]


def fetch_partition(wire: WireClient, topic: str, partition: int, offset: int) -> dict:
    answer = wire.request(ApiKey.FETCH, 11, fetch_body(topic, partition, offset))
    return answer["responses"][0]["partitions"][0]


def test_message_too_large(broker) -> None:
    with AdminClient({"bootstrap.servers": broker.bootstrap}) as admin:
        new = NewTopic("small", 1, 1, config={"max.message.bytes": "1024"})
        admin.create_topics([new])["small"].result(TIMEOUT_S)

    errors: list[KafkaError | None] = []
    with Producer({"bootstrap.servers": broker.bootstrap, "acks": "all"}) as producer:
        for value in (b"x" * 4096, b"fits"):  # one batch each: the limit is per batch
            producer.produce("small", value=value, on_delivery=lambda e, m: errors.append(e))
            assert producer.flush(TIMEOUT_S) == 0
    assert [e.code() if e else None for e in errors] == [KafkaError.MSG_SIZE_TOO_LARGE, None]

    with WireClient(broker.bootstrap) as wire:
        assert produce_code(wire, "small", 0, batch(b"y" * 2000)) == ErrorCode.MESSAGE_TOO_LARGE
        assert fetch_partition(wire, "small", 0, 0)["high_watermark"] == 1


def test_invalid_topic_names(broker) -> None:
    bad = ["bad/name", "..", "a b", "x" * 250, ""]
    with WireClient(broker.bootstrap) as wire:
        answer = wire.request(ApiKey.METADATA, 8, metadata_body(*bad, auto_create=True))
        assert [t["error_code"] for t in answer["topics"]] == [
            ErrorCode.INVALID_TOPIC_EXCEPTION
        ] * len(bad)
        codes = create_topics_codes(wire, *((name, 1, {}) for name in bad), ("fine.name-1", 1, {}))
        assert codes == [ErrorCode.INVALID_TOPIC_EXCEPTION] * len(bad) + [ErrorCode.NONE]
        listed = wire.request(ApiKey.METADATA, 8, {**metadata_body(), "topics": None})
        assert "fine.name-1" in {t["name"] for t in listed["topics"]}
        assert not set(bad) & {t["name"] for t in listed["topics"]}

    with (
        AdminClient({"bootstrap.servers": broker.bootstrap}) as admin,
        pytest.raises(KafkaException) as caught,
    ):
        admin.create_topics([NewTopic("bad/name", 1, 1)])["bad/name"].result(TIMEOUT_S)
    assert caught.value.args[0].code() == KafkaError.TOPIC_EXCEPTION


def test_unknown_topic_or_partition_without_auto_create(start_broker) -> None:
    broker = start_broker("--no-auto-create")
    unknown = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    with WireClient(broker.bootstrap) as wire:
        answer = wire.request(ApiKey.METADATA, 8, metadata_body("missing", auto_create=True))
        assert answer["topics"][0]["error_code"] == unknown
        assert produce_code(wire, "missing", 0, batch(b"v")) == unknown
        assert fetch_partition(wire, "missing", 0, 0)["error_code"] == unknown

        assert create_topics_codes(wire, ("one", 1, {})) == [ErrorCode.NONE]
        assert produce_code(wire, "one", 0, batch(b"v")) == ErrorCode.NONE
        assert produce_code(wire, "one", 5, batch(b"v")) == unknown
        assert fetch_partition(wire, "one", 5, 0)["error_code"] == unknown
        assert fetch_partition(wire, "one", 0, 0)["error_code"] == ErrorCode.NONE
        answer = wire.request(ApiKey.METADATA, 8, metadata_body("missing", auto_create=True))
        assert answer["topics"][0]["error_code"] == unknown  # still not created


def test_corrupt_and_invalid_batches_are_refused(broker) -> None:
    with WireClient(broker.bootstrap) as wire:
        wire.request(ApiKey.METADATA, 8, metadata_body("crc", auto_create=True))
        good = batch(b"a", b"b", key=b"k")
        for position in (21, 30, 57, 61, len(good) - 1):
            broken = bytearray(good)
            broken[position] ^= 0x5A  # covered by the CRC-32C from byte 21 on
            assert produce_code(wire, "crc", 0, bytes(broken)) == ErrorCode.CORRUPT_MESSAGE
        broken = bytearray(good)
        broken[16] = 1  # magic 1: legacy formats are not accepted
        assert produce_code(wire, "crc", 0, bytes(broken)) == ErrorCode.CORRUPT_MESSAGE
        assert produce_code(wire, "crc", 0, good[:40]) == ErrorCode.CORRUPT_MESSAGE
        assert produce_code(wire, "crc", 0, good + good) == ErrorCode.INVALID_RECORD
        part = fetch_partition(wire, "crc", 0, 0)
        assert (part["error_code"], part["high_watermark"]) == (ErrorCode.NONE, 0)
        assert produce_code(wire, "crc", 0, good) == ErrorCode.NONE
        assert fetch_partition(wire, "crc", 0, 0)["high_watermark"] == 2


def test_offset_out_of_range(broker) -> None:
    with WireClient(broker.bootstrap) as wire:
        wire.request(ApiKey.METADATA, 8, metadata_body("oor", auto_create=True))
        assert produce_code(wire, "oor", 0, batch(b"a", b"b", b"c")) == ErrorCode.NONE
        beyond = fetch_partition(wire, "oor", 0, 10)
        assert beyond["error_code"] == ErrorCode.OFFSET_OUT_OF_RANGE
        assert beyond["high_watermark"] == 3
        assert fetch_partition(wire, "oor", 0, -5)["error_code"] == ErrorCode.OFFSET_OUT_OF_RANGE
        at_end = fetch_partition(wire, "oor", 0, 3)  # the end itself: empty, not an error
        assert (at_end["error_code"], bytes(at_end["records"])) == (ErrorCode.NONE, b"")
        mid_batch = fetch_partition(wire, "oor", 0, 1)  # served from the containing batch
        assert mid_batch["error_code"] == ErrorCode.NONE and len(mid_batch["records"]) > 0

    # librdkafka answers OFFSET_OUT_OF_RANGE with its auto.offset.reset policy
    consumer = Consumer(
        {
            "bootstrap.servers": broker.bootstrap,
            "group.id": "oor-reader",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    try:
        consumer.assign([TopicPartition("oor", 0, 1000)])
        deadline = time.monotonic() + TIMEOUT_S
        values = []
        while len(values) < 3:
            assert time.monotonic() < deadline, values
            msg = consumer.poll(0.5)
            if msg is not None:
                assert msg.error() is None, msg.error()
                values.append((msg.offset(), msg.value()))
    finally:
        consumer.close()
    assert values == [(0, b"a"), (1, b"b"), (2, b"c")]


@pytest.mark.parametrize("internal", ["__consumer_offsets", "__transaction_state"])
def test_internal_topics_are_neither_deleted_nor_written_by_clients(broker, internal) -> None:
    with WireClient(broker.bootstrap) as wire:
        answer = wire.request(ApiKey.METADATA, 8, metadata_body(internal))
        assert answer["topics"][0]["is_internal"] is True
        assert produce_code(wire, internal, 0, batch(b"forged")) == (
            ErrorCode.INVALID_TOPIC_EXCEPTION
        )
        deleted = wire.request(
            ApiKey.DELETE_TOPICS, 3, {"topic_names": [internal], "timeout_ms": 5000}
        )
        assert deleted["responses"][0]["error_code"] == ErrorCode.TOPIC_AUTHORIZATION_FAILED
        answer = wire.request(ApiKey.METADATA, 8, metadata_body(internal))
        assert answer["topics"][0]["error_code"] == ErrorCode.NONE
