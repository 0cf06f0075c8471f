"""The same app module runs unchanged on the embedded log and on a broker:
tests/workers/apps/tally_app.py as a worker process with `--broker log://PATH`
and with `--broker kafka://HOST:PORT`, counting the same events exactly."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from worker_procs import (
    CHANGELOG,
    PARTITIONS,
    TOPIC,
    create_topic,
    produce,
    read_table,
    wait_covered,
)

from runtime.log.manager import Log
from runtime.log.records import decode_batches, encode_batch
from runtime.partitioner import partition_for_key
from runtime.types import TopicPartition

EVENTS = 4_000
KEYS = [f"k{i % 97}" for i in range(EVENTS)]
TIMEOUT_S = 30.0


def produce_to_log(path: Path) -> None:
    with Log.open(path) as log:
        log.create_topic(TOPIC, PARTITIONS)
        by_partition: dict[int, list] = {}
        for i, key in enumerate(KEYS):
            kb = key.encode()
            p = partition_for_key(kb, PARTITIONS)
            by_partition.setdefault(p, []).append((kb, b"1", 1_000 + i, ()))
        for p, records in by_partition.items():
            log.append(TopicPartition(TOPIC, p), encode_batch(records))


def table_from_log(path: Path) -> dict[str, int]:
    table: dict[str, int] = {}
    with Log.open(path) as log:
        for p in range(PARTITIONS):
            tp = TopicPartition(CHANGELOG, p)
            position, end = log.offsets(tp)
            while position < end:
                records = decode_batches(log.read(tp, position, 1 << 20))
                for r in records:
                    if r.offset >= position and r.value is not None:
                        table[r.key.decode()] = int(r.value)
                position = records[-1].offset + 1
    return table


@pytest.mark.slow
@pytest.mark.parametrize("scheme", ["log", "kafka"])
def test_one_app_module_on_log_and_on_kafka(scheme, request, workers, tmp_path):
    if scheme == "log":
        path = tmp_path / "log"
        produce_to_log(path)
        url = f"log://{path}"
    else:
        bootstrap = request.getfixturevalue("broker")
        create_topic(bootstrap)
        produce(bootstrap, KEYS)
        url = f"kafka://{bootstrap}"
    worker = workers(url)
    trace = tmp_path / "trace"
    wait_covered(trace, EVENTS, TIMEOUT_S)
    worker.terminate()
    assert f"broker={url}" in worker.text()
    table = table_from_log(path) if scheme == "log" else read_table(bootstrap)
    assert table == Counter(KEYS)
