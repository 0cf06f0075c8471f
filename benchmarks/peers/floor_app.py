"""The Python floor of the keyed count: one process doing confluent-kafka
consume + orjson parse + a dict count, nothing else (no table, no changelog,
no commits). What any Python framework on this input must stay above.

    python -m benchmarks.peers.floor_app

It reads every partition of BENCH_INPUT from the beginning (assigned, no group
join) until it has BENCH_EVENTS events. Settings come from BENCH_*.
"""

from __future__ import annotations

import os

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

from benchmarks.peers.probe import from_env

CONSUME_BATCH = 10_000


def main() -> None:
    probe = from_env()
    topic = os.environ.get("BENCH_INPUT", "events")
    partitions = int(os.environ.get("BENCH_PARTITIONS", "8"))
    consumer = Consumer(
        {
            "bootstrap.servers": os.environ.get("BENCH_BOOTSTRAP", "127.0.0.1:9092"),
            "group.id": os.environ.get("BENCH_APP_ID", "peers-floor"),
            "enable.auto.commit": False,
            "fetch.max.bytes": 32 << 20,
            "max.partition.fetch.bytes": 32 << 20,
            "log_level": 4,
        }
    )
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
    counts: dict[str, int] = {}
    loads, get, tick = orjson.loads, counts.get, probe.tick
    try:
        while probe.count < probe.target:
            for msg in consumer.consume(CONSUME_BATCH, timeout=1.0):
                if msg.error() is not None:
                    raise KafkaException(msg.error())
                user = loads(msg.value())["user"]
                counts[user] = get(user, 0) + 1
                tick()
    finally:
        consumer.close()
    probe.done(counts=counts)


if __name__ == "__main__":
    main()
