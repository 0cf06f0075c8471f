"""Exactly once through crashes: a worker of tests/workers/apps/tally_app.py with
processing_guarantee="exactly_once" is SIGKILLed at random moments mid-stream
(just after it started, or after a random number of events), five times, and
restarted on its data directory each time; then one more runs to the end and
stops cleanly.

The app counts events per key into a table and sends, per event, the key's
running count to `tally-out`. Whatever the kills did:
- every key's count in the table (its changelog, read_committed) is exactly
  the number of events of that key;
- a read_committed reader of `tally-out` sees, per key, exactly 1, 2, ..., N:
  each result once, none lost, none twice.

On kafka:// the workers run against a `streams broker` process, with events
produced live by confluent-kafka through the kills; on log:// the worker owns
the embedded log, so events are appended between its runs, and the result is
read with confluent-kafka from a `streams broker` started on that log after
the last worker stopped.
"""

from __future__ import annotations

import os
import random
import signal
from collections import Counter
from pathlib import Path

import pytest
from confluent_kafka import Consumer
from confluent_kafka import TopicPartition as ConfluentTopicPartition
from confluent_reading import read_records_to_end
from waiting import wait_until
from worker_procs import (
    CHANGELOG,
    PARTITIONS,
    QUIET,
    TOPIC,
    create_topic,
    kill_at_a_random_moment,
    produce,
    start_broker,
    wait_covered,
)

from runtime.log.manager import Log
from runtime.log.records import encode_batch
from runtime.partitioner import partition_for_key
from runtime.types import TopicPartition

pytestmark = pytest.mark.slow

KILLS = 5
BACKLOG = [f"k{i % 97}" for i in range(5_000)]
BETWEEN_RUNS = 400  # log://: events appended before each restart
RATE_PER_S = 250
PROCESSED_BEFORE_KILL_MAX = 1_500  # a kill comes after 0 to about 7 commits
TIMEOUT_S = 40.0
OUTPUT = "tally-out"
# ~0.5 ms per event: commits (every 0.2 s) fall between the kills, not only before
EOS = {"TALLY_GUARANTEE": "exactly_once", "TALLY_OUTPUT": "1", "TALLY_SLEEP_S": "0.0005"}
# log://: the guarantee from the worker command's environment, not the app's code
EOS_BY_ENV = {
    **EOS,
    "TALLY_GUARANTEE": "at_least_once",
    "STREAMS_PROCESSING_GUARANTEE": "exactly_once",
}
SEED = int(os.environ.get("EOS_KILL_SEED", random.randrange(1 << 30)))


def assert_exactly_once(bootstrap: str, truth: Counter[str]) -> None:
    """The table and the output as read_committed readers see them."""
    total = sum(truth.values())
    table: dict[str, int] = {}
    for rows in read_records_to_end(bootstrap, CHANGELOG, PARTITIONS, "read_committed").values():
        for key, value in rows:
            table[key.decode()] = int(value)
    assert table == dict(truth), {
        k: (table.get(k), n) for k, n in truth.items() if table.get(k) != n
    }
    outputs: dict[str, list[int]] = {}
    found = read_records_to_end(bootstrap, OUTPUT, PARTITIONS, "read_committed", expect=total)
    for rows in found.values():
        for key, value in rows:
            outputs.setdefault(key.decode(), []).append(int(value))
    wrong = {k: v for k, v in outputs.items() if v != list(range(1, truth[k] + 1))}
    assert not wrong, {k: (v[:5], len(v), truth[k]) for k, v in list(wrong.items())[:3]}
    assert set(outputs) == set(truth)
    uncommitted = read_records_to_end(bootstrap, OUTPUT, PARTITIONS, "read_uncommitted")
    print(
        f"events {total}; outputs stored {sum(map(len, uncommitted.values()))} (aborted ones too)"
    )


def committed_to_end(bootstrap: str) -> bool:
    """Whether the app's committed offsets reach the end of the events topic."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "tally", **QUIET})
    try:
        tps = [ConfluentTopicPartition(TOPIC, p) for p in range(PARTITIONS)]
        committed = {tp.partition: tp.offset for tp in consumer.committed(tps, timeout=10)}
        for p in range(PARTITIONS):
            _, end = consumer.get_watermark_offsets(ConfluentTopicPartition(TOPIC, p), timeout=10)
            if committed[p] < end:
                return False
        return True
    finally:
        consumer.close()


def test_exactly_once_through_five_sigkills_on_kafka(broker, live_producer, workers, tmp_path):
    rng = random.Random(SEED)
    print(f"EOS_KILL_SEED={SEED}")
    url, trace, data = f"kafka://{broker}", tmp_path / "trace", tmp_path / "data"
    create_topic(broker)
    produce(broker, BACKLOG)
    stream = live_producer(broker, RATE_PER_S)
    for kill in range(KILLS):
        worker = workers(url, data=data, **EOS)
        moment = kill_at_a_random_moment(
            worker, trace, rng, processed_max=PROCESSED_BEFORE_KILL_MAX, timeout_s=TIMEOUT_S
        )
        print(f"kill {kill + 1}: {moment}")
    final = workers(url, data=data, **EOS)
    truth = stream.stop() + Counter(BACKLOG)
    wait_until(lambda: committed_to_end(broker), timeout_s=TIMEOUT_S, what="every event committed")
    final.terminate()
    assert "exactly once app=tally transactional_id=tally-" in final.text()
    assert_exactly_once(broker, truth)


def append_events(path: Path, keys: list[str]) -> None:
    """Events into the embedded log while no worker owns it, as plain batches."""
    with Log.open(path) as log:
        if TOPIC not in log.topics():
            log.create_topic(TOPIC, PARTITIONS)
        by_partition: dict[int, list] = {}
        for i, key in enumerate(keys):
            kb = key.encode()
            p = partition_for_key(kb, PARTITIONS)
            by_partition.setdefault(p, []).append((kb, b"1", 1_000 + i, ()))
        for p, records in by_partition.items():
            log.append(TopicPartition(TOPIC, p), encode_batch(records))


def test_exactly_once_through_five_sigkills_on_log(workers, tmp_path):
    rng = random.Random(SEED)
    print(f"EOS_KILL_SEED={SEED}")
    path, trace, data = tmp_path / "log", tmp_path / "trace", tmp_path / "data"
    url = f"log://{path}"
    append_events(path, BACKLOG)
    truth = Counter(BACKLOG)
    for kill in range(KILLS):
        worker = workers(url, data=data, **EOS_BY_ENV)
        moment = kill_at_a_random_moment(
            worker, trace, rng, processed_max=PROCESSED_BEFORE_KILL_MAX, timeout_s=TIMEOUT_S
        )
        print(f"kill {kill + 1}: {moment}")
        more = [f"k{rng.randrange(97)}" for _ in range(BETWEEN_RUNS)]
        append_events(path, more)
        truth += Counter(more)
    final = workers(url, data=data, **EOS_BY_ENV)
    wait_covered(trace, sum(truth.values()), TIMEOUT_S)
    final.terminate()  # its last commit: everything processed
    assert "exactly once app=tally transactional_id=tally-" in final.text()
    broker, bootstrap = start_broker(path)
    try:
        assert_exactly_once(bootstrap, truth)
    finally:
        assert broker.reap(signal.SIGTERM) == 0, broker.text()
