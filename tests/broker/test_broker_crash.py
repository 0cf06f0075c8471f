"""SIGKILL the broker under a producer: every acknowledged message survives, whole.

With `--flush batch` an append is fsynced before Produce is answered, so any
offset a client saw acknowledged must be there after a crash and a restart on
the same data directory; recovery truncates a torn tail, so no batch read back
is torn (every batch's length and CRC-32C check out) and offsets stay contiguous.
"""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kafka_wire import WireClient, fetch_body

from runtime.log.records import iter_batches, validate_batch
from runtime.protocol.codes import ApiKey

pytestmark = pytest.mark.slow

TIMEOUT_S = 30.0
TOPIC = "crash"
PARTITIONS = 3
ACKED_BEFORE_KILL = 1500


def produce_until_killed(broker) -> dict[int, tuple[int, int]]:
    """Produce numbered messages until ACKED_BEFORE_KILL are acknowledged, then SIGKILL
    the broker with more in flight. Returns number -> (partition, offset) of each ack."""
    acked: dict[int, tuple[int, int]] = {}
    failed: list[KafkaError] = []

    def delivered(err: KafkaError | None, msg) -> None:
        if err is None:
            acked[int(msg.value())] = (msg.partition(), msg.offset())
        else:
            failed.append(err)

    config = {
        "bootstrap.servers": broker.bootstrap,
        "acks": "all",
        "linger.ms": 1,
        "batch.num.messages": 50,
        "message.timeout.ms": 10000,
    }
    with Producer(config) as producer:
        number = 0
        deadline = time.monotonic() + TIMEOUT_S
        while len(acked) < ACKED_BEFORE_KILL:
            assert time.monotonic() < deadline, f"{len(acked)} acks, errors {failed[:3]}"
            try:
                value = str(number).encode()
                producer.produce(TOPIC, value, partition=number % PARTITIONS, on_delivery=delivered)
                number += 1
            except BufferError:
                producer.poll(0.01)
            producer.poll(0)
        assert not failed, failed[:3]
        in_flight = number - len(acked)
        broker.kill()
        producer.purge()  # what was in flight is unacknowledged: stored or not
        producer.flush(TIMEOUT_S)
    assert in_flight > 0, "the kill should land mid-production"
    return acked


def read_back(bootstrap: str) -> dict[int, list[tuple[int, int]]]:
    """partition -> [(offset, number)] read by a fresh consumer from offset 0."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "crash-reader",
            "enable.auto.commit": False,
            "check.crcs": True,
        }
    )
    out: dict[int, list[tuple[int, int]]] = {p: [] for p in range(PARTITIONS)}
    try:
        ends = {
            p: consumer.get_watermark_offsets(TopicPartition(TOPIC, p), TIMEOUT_S)[1]
            for p in range(PARTITIONS)
        }
        consumer.assign([TopicPartition(TOPIC, p, 0) for p in range(PARTITIONS)])
        deadline = time.monotonic() + TIMEOUT_S
        while any(len(out[p]) < ends[p] for p in range(PARTITIONS)):
            assert time.monotonic() < deadline, {p: len(v) for p, v in out.items()}
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            assert msg.error() is None, msg.error()
            out[msg.partition()].append((msg.offset(), int(msg.value())))
    finally:
        consumer.close()
    return out


def assert_whole_batches(bootstrap: str) -> None:
    """Every stored batch, fetched raw, passes the length, magic and CRC checks."""
    with WireClient(bootstrap) as wire:
        for p in range(PARTITIONS):
            offset, end = 0, None
            while end is None or offset < end:
                body = wire.request(ApiKey.FETCH, 11, fetch_body(TOPIC, p, offset))
                (part,) = body["responses"][0]["partitions"]
                assert part["error_code"] == 0
                end = part["high_watermark"]
                data = bytes(part["records"])
                batches = list(iter_batches(data))
                assert batches, (p, offset, end)
                for i, (pos, header) in enumerate(batches):
                    validate_batch(data, pos)
                    last = header.base_offset + header.last_offset_delta
                    # the first batch contains the fetch offset; the next ones follow it
                    assert header.base_offset <= offset <= last
                    assert i == 0 or header.base_offset == offset
                    offset = last + 1


def test_acknowledged_messages_survive_sigkill(start_broker) -> None:
    broker = start_broker("--flush", "batch")
    with AdminClient({"bootstrap.servers": broker.bootstrap}) as admin:
        admin.create_topics([NewTopic(TOPIC, PARTITIONS, 1)])[TOPIC].result(TIMEOUT_S)

    acked = produce_until_killed(broker)
    broker.restart()  # same port, same data directory
    stored = read_back(broker.bootstrap)
    assert_whole_batches(broker.bootstrap)

    by_number: dict[int, tuple[int, int]] = {}
    for p, rows in stored.items():
        assert [offset for offset, _ in rows] == list(range(len(rows))), p
        for offset, number in rows:
            assert number % PARTITIONS == p
            assert number not in by_number, f"{number} stored twice"
            by_number[number] = (p, offset)
    lost = {n: where for n, where in acked.items() if by_number.get(n) != where}
    assert not lost, f"{len(lost)} acknowledged lost or moved: {list(lost.items())[:5]}"

    # the restarted broker appends after the recovered end
    offsets: list[int] = []
    with Producer({"bootstrap.servers": broker.bootstrap, "acks": "all"}) as producer:
        producer.produce(
            TOPIC, b"-1", partition=0, on_delivery=lambda e, m: offsets.append(m.offset())
        )
        assert producer.flush(TIMEOUT_S) == 0
    assert offsets == [len(stored[0])]
