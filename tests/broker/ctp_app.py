"""A consume-transform-produce loop with confluent-kafka transactions, run as a process.

    python ctp_app.py BOOTSTRAP IN_TOPIC OUT_TOPIC TXN_ID BATCH_DELAY_S

Reads IN_TOPIC (read_committed, group "ctp"), writes "out-<value>" to OUT_TOPIC,
and commits each batch's output and input offsets in one transaction, forever
(the tests kill it), taking BATCH_DELAY_S per batch as if processing. Prints
"committed N" after each commit, for the test to watch progress.
"""

from __future__ import annotations

import os
import sys
import time

from confluent_kafka import Consumer, KafkaException, Producer

BATCH = 25
# librdkafka 2.16 re-bootstraps when its only broker goes away and then can send
# a coordinator request to a decommissioned broker handle that never connects
# (the loop hangs in send_offsets_to_transaction): keep the brokers it knows.
RECOVERY = {"metadata.recovery.strategy": "none"}


def main(bootstrap: str, source: str, sink: str, txn_id: str, delay_s: float) -> None:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "ctp",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
            "session.timeout.ms": 3000,  # a killed instance's partitions move on soon
            "heartbeat.interval.ms": 300,
            **RECOVERY,
        }
    )
    debug = {"debug": os.environ["CTP_DEBUG"]} if os.environ.get("CTP_DEBUG") else {}
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "transactional.id": txn_id,
            "linger.ms": 5,
            **RECOVERY,
            **debug,
        }
    )
    producer.init_transactions(30)
    consumer.subscribe([source])
    done = 0
    while True:
        messages = [m for m in consumer.consume(BATCH, timeout=0.5) if m.error() is None]
        if not messages:
            continue
        producer.begin_transaction()
        time.sleep(delay_s)
        for msg in messages:
            producer.produce(sink, b"out-" + msg.value(), partition=msg.partition())
        try:
            producer.send_offsets_to_transaction(
                consumer.position(consumer.assignment()), consumer.consumer_group_metadata(), 30
            )
            producer.commit_transaction(30)
        except KafkaException as exc:
            if exc.args[0].txn_requires_abort():
                producer.abort_transaction(30)
                rewind(consumer)
                continue
            raise
        done += len(messages)
        print(f"committed {done}", flush=True)


def rewind(consumer: Consumer) -> None:
    """After an abort, start again from the committed offsets (the output was undone)."""
    assignment = consumer.assignment()
    for tp in consumer.committed(assignment, 30):
        consumer.seek(tp if tp.offset >= 0 else tp.__class__(tp.topic, tp.partition, 0))


if __name__ == "__main__":
    main(*sys.argv[1:5], float(sys.argv[5]))
