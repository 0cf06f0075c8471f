"""SIGKILL the broker under a producer: every acknowledged message survives, whole.

With `--flush batch` an append is fsynced before Produce is answered, so any
offset a client saw acknowledged must be there after a crash and a restart on
the same data directory; recovery truncates a torn tail, so no batch read back
is torn (every batch's length and CRC-32C check out) and offsets stay contiguous.
"""

from __future__ import annotations

import time

import pytest
from confluent_kafka import KafkaError, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from log_check import assert_whole_batches, read_back

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


def test_acknowledged_messages_survive_sigkill(start_broker) -> None:
    broker = start_broker("--flush", "batch")
    with AdminClient({"bootstrap.servers": broker.bootstrap}) as admin:
        admin.create_topics([NewTopic(TOPIC, PARTITIONS, 1)])[TOPIC].result(TIMEOUT_S)

    acked = produce_until_killed(broker)
    broker.restart()  # same port, same data directory
    stored = {
        p: [(offset, int(value)) for offset, value in rows]
        for p, rows in read_back(broker.bootstrap, TOPIC, PARTITIONS).items()
    }
    assert_whole_batches(broker.bootstrap, TOPIC, PARTITIONS)

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
