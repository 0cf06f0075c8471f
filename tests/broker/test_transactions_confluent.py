"""Transactions with confluent-kafka (librdkafka) against a `streams broker` process.

A committed transaction is seen whole by read_committed readers, an aborted one
never; read_uncommitted readers see every record. A second producer with the
same transactional id fences the first; a transaction left open holds
read_committed readers at the last stable offset until its timeout aborts it.
"""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_reading import read_to_end
from test_confluent_client import create_topic

pytestmark = pytest.mark.slow

TIMEOUT_S = 30.0


def transactional(bootstrap: str, txn_id: str, **config) -> Producer:
    producer = Producer(
        {"bootstrap.servers": bootstrap, "transactional.id": txn_id, "linger.ms": 5, **config}
    )
    producer.init_transactions(TIMEOUT_S)
    return producer


def read_all(
    bootstrap: str,
    topic: str,
    partitions: int,
    isolation: str,
    *,
    expect: int | None = None,
    timeout_s: float = TIMEOUT_S,
) -> list[str]:
    """Every value a reader of that isolation reaches, partition by partition."""
    found = read_to_end(bootstrap, topic, partitions, isolation, expect=expect, timeout_s=timeout_s)
    return [value for p in sorted(found) for value in found[p]]


def test_committed_seen_by_everyone_aborted_only_by_read_uncommitted(broker) -> None:
    create_topic(broker.bootstrap, "txn", 2)
    producer = transactional(broker.bootstrap, "txn-app")
    producer.begin_transaction()
    for i in range(10):
        producer.produce("txn", f"committed-{i}", partition=i % 2)
    producer.commit_transaction(TIMEOUT_S)
    producer.begin_transaction()
    for i in range(6):
        producer.produce("txn", f"aborted-{i}", partition=i % 2)
    producer.flush(TIMEOUT_S)
    producer.abort_transaction(TIMEOUT_S)
    producer.begin_transaction()
    producer.produce("txn", "last", partition=0)
    producer.commit_transaction(TIMEOUT_S)

    committed = read_all(broker.bootstrap, "txn", 2, "read_committed", expect=11)
    assert sorted(committed) == sorted([f"committed-{i}" for i in range(10)] + ["last"])
    everything = read_all(broker.bootstrap, "txn", 2, "read_uncommitted", expect=17)
    assert sorted(everything) == sorted(
        [f"committed-{i}" for i in range(10)] + [f"aborted-{i}" for i in range(6)] + ["last"]
    )


def test_a_new_instance_fences_the_old_one_and_aborts_its_transaction(broker) -> None:
    create_topic(broker.bootstrap, "fence", 1)
    zombie = transactional(broker.bootstrap, "fenced-app")
    zombie.begin_transaction()
    zombie.produce("fence", "from-zombie")
    zombie.flush(TIMEOUT_S)

    successor = transactional(broker.bootstrap, "fenced-app")  # aborts the zombie's
    successor.begin_transaction()
    successor.produce("fence", "from-successor")
    successor.commit_transaction(TIMEOUT_S)

    with pytest.raises(KafkaException) as info:
        zombie.produce("fence", "late")
        zombie.commit_transaction(TIMEOUT_S)
    assert info.value.args[0].fatal(), info.value
    assert read_all(broker.bootstrap, "fence", 1, "read_committed", expect=1) == ["from-successor"]


def test_an_open_transaction_holds_readers_at_the_lso_until_its_timeout(start_broker) -> None:
    broker = start_broker()
    create_topic(broker.bootstrap, "open", 1)
    early = transactional(broker.bootstrap, "early")
    early.begin_transaction()
    early.produce("open", "before")
    early.commit_transaction(TIMEOUT_S)

    stuck = transactional(broker.bootstrap, "stuck", **{"transaction.timeout.ms": 3000})
    stuck.begin_transaction()
    stuck.produce("open", "never-committed")
    stuck.flush(TIMEOUT_S)
    later = transactional(broker.bootstrap, "later")
    later.begin_transaction()
    later.produce("open", "after")
    later.commit_transaction(TIMEOUT_S)

    # the stuck transaction's first offset is the LSO: "after" is behind it
    assert read_all(broker.bootstrap, "open", 1, "read_committed") == ["before"]
    assert read_all(broker.bootstrap, "open", 1, "read_uncommitted", expect=3) == [
        "before",
        "never-committed",
        "after",
    ]
    # the coordinator aborts it once its timeout passes; then "after" is stable
    assert read_all(broker.bootstrap, "open", 1, "read_committed", expect=2) == [
        "before",
        "after",
    ]
    with pytest.raises(KafkaException):
        stuck.commit_transaction(TIMEOUT_S)


def test_consume_transform_produce_commits_offsets_with_the_output(broker) -> None:
    create_topic(broker.bootstrap, "ctp-in", 1)
    create_topic(broker.bootstrap, "ctp-out", 1)
    with Producer({"bootstrap.servers": broker.bootstrap}) as plain:
        for i in range(20):
            plain.produce("ctp-in", str(i))
        assert plain.flush(TIMEOUT_S) == 0

    consumer = Consumer(
        {
            "bootstrap.servers": broker.bootstrap,
            "group.id": "ctp",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
        }
    )
    producer = transactional(broker.bootstrap, "ctp-app")
    try:
        consumer.subscribe(["ctp-in"])
        for batch, commit in ((range(0, 10), True), (range(10, 20), False)):
            producer.begin_transaction()
            for expected in batch:
                msg = None
                deadline = time.monotonic() + TIMEOUT_S
                while msg is None:
                    assert time.monotonic() < deadline
                    msg = consumer.poll(0.2)
                assert msg.error() is None and int(msg.value()) == expected
                producer.produce("ctp-out", f"out-{expected}")
            producer.send_offsets_to_transaction(
                consumer.position(consumer.assignment()),
                consumer.consumer_group_metadata(),
                TIMEOUT_S,
            )
            if commit:
                producer.commit_transaction(TIMEOUT_S)
            else:
                producer.abort_transaction(TIMEOUT_S)
        committed = consumer.committed([TopicPartition("ctp-in", 0)], TIMEOUT_S)
        assert committed[0].offset == 10  # the aborted transaction's offsets never landed
    finally:
        consumer.close()
    out = read_all(broker.bootstrap, "ctp-out", 1, "read_committed", expect=10)
    assert out == [f"out-{i}" for i in range(10)]
