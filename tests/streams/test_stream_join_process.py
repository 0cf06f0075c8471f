"""Real worker processes with a windowed stream-stream join: one buffers the views
and stops, the next joins the clicks with them and is killed with SIGKILL midway,
the last finishes. The buffers come back from their changelog each time, and every
pair is in the output (at least once); on `log://` and on `kafka://` (a `streams
broker` process)."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import orjson
import pytest
from broker_process import start_broker
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from confluent_reading import read_records_to_end

from runtime.log.config import FlushPolicy
from runtime.log.manager import Log
from runtime.log.records import decode_batches, encode_batch
from runtime.partitioner import partition_for_key
from runtime.types import TopicPartition

__all__ = ["start_broker"]  # a fixture: importing it offers it to these tests

APPS = Path(__file__).parent / "apps"
EVENTS = 300  # per topic
KEYS = 20
PARTITIONS = 2
WITHIN_S = 25


def _ends() -> list[str]:
    """One last key per partition: its pair says the partition is done."""
    found: dict[int, str] = {}
    i = 0
    while len(found) < PARTITIONS:
        key = f"end-{i}"
        found.setdefault(partition_for_key(key.encode(), PARTITIONS), key)
        i += 1
    return sorted(found.values())


Events = dict[str, list[tuple[str, str, float]]]


def _events(base: float) -> Events:
    views = [(f"k{i % KEYS}", f"v{i}", base + i) for i in range(EVENTS)]
    clicks = [(f"k{j % KEYS}", f"c{j}", base + j + 0.5) for j in range(EVENTS)]
    for key in _ends():
        views.append((key, f"v-{key}", base + 10_000.0))
        clicks.append((key, f"c-{key}", base + 10_000.0))
    return {"views": views, "clicks": clicks}


def _expected(events: dict[str, list[tuple[str, str, float]]]) -> set[tuple[str, str, str]]:
    return {
        (key, view, click)
        for key, view, tv in events["views"]
        for other, click, tc in events["clicks"]
        if key == other and tv - WITHIN_S <= tc <= tv + WITHIN_S
    }


def _by_partition(rows: list[tuple[str, str, float]]) -> dict[int, list]:
    by_partition: dict[int, list] = {}
    for key, value, ts in rows:
        kb = key.encode()
        by_partition.setdefault(partition_for_key(kb, PARTITIONS), []).append(
            (kb, orjson.dumps(value), int(ts * 1000), ())
        )
    return by_partition


def _produce(log_dir: Path, events: Events) -> None:
    with Log.open(log_dir, flush=FlushPolicy("os")) as log:
        for topic, rows in events.items():
            if topic not in log.topics():
                log.create_topic(topic, PARTITIONS)
            for p, records in _by_partition(rows).items():
                log.append(TopicPartition(topic, p), encode_batch(records))


def _produce_to_kafka(bootstrap: str, events: Events) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "log_level": 3})
    for topic, rows in events.items():
        for p, records in _by_partition(rows).items():
            for key, value, ts_ms, _ in records:
                producer.produce(topic, value, key, partition=p, timestamp=ts_ms)
    assert producer.flush(30) == 0


def _kafka_output(bootstrap: str, expect: int) -> list[tuple[str, str, str]]:
    rows = read_records_to_end(bootstrap, "joined", PARTITIONS, "read_uncommitted", expect=expect)
    out = []
    for records in rows.values():
        for key, value in records:
            assert key is not None
            view, click = orjson.loads(value)
            out.append((key.decode(), view, click))
    return out


def _output(log_dir: Path) -> list[tuple[str, str, str]]:
    out = []
    with Log.open(log_dir) as log:
        for p in range(PARTITIONS):
            tp = TopicPartition("joined", p)
            position, end = log.offsets(tp)
            while position < end:
                records = decode_batches(log.read(tp, position, 1 << 20))
                for r in records:
                    if r.offset >= position:
                        view, click = orjson.loads(r.value)
                        out.append((r.key.decode(), view, click))
                position = records[-1].offset + 1
    return out


@pytest.mark.slow
@pytest.mark.parametrize("transport", ["log", "kafka"])
def test_a_killed_worker_recovers_its_join_buffers_and_misses_no_pair(
    tmp_path, transport, worker_process, start_broker
):
    data = tmp_path / "data"
    # Recent timestamps: a broker's retention judges by them.
    events = _events(float(int(time.time())))
    args: tuple[str, ...] = ("-l", "warning", "--web", "none")
    env = {"JOIN_APP_DATA": str(data)}
    if transport == "log":
        produce = lambda rows: _produce(data / "log", rows)  # noqa: E731
    else:
        broker = start_broker("--partitions", str(PARTITIONS))
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        made = admin.create_topics([NewTopic(t, PARTITIONS, 1) for t in ("views", "clicks")])
        for future in made.values():
            future.result(timeout=30)
        produce = lambda rows: _produce_to_kafka(broker.bootstrap, rows)  # noqa: E731
        args += ("--broker", f"kafka://{broker.bootstrap}")
    # Views only, buffered and committed by a clean stop.
    produce({"views": events["views"], "clicks": []})
    first = worker_process("join_app", APPS, *args, env=env)
    first.wait_log(f"buffered views={len(events['views'])}")
    assert first.stop() == 0
    # Then the clicks, which join the views from the changelog, and a kill midway.
    produce({"clicks": events["clicks"]})
    second = worker_process("join_app", APPS, *args, env=env)
    second.wait_log("join results=200")
    assert second.stop(signal.SIGKILL) == -signal.SIGKILL
    assert "joined the last events" not in second.text()  # killed in the middle
    third = worker_process("join_app", APPS, *args, env=env)
    for key in _ends():
        third.wait_log(f"joined the last events key={key}")
    assert third.stop() == 0

    expected = _expected(events)
    if transport == "log":
        out = _output(data / "log")
    else:
        out = _kafka_output(broker.bootstrap, len(expected))
    # Each view pairs with the clicks 20 s before, at, and 20 s after it, where there are.
    assert len(expected) == 3 * EVENTS - 2 * KEYS + len(_ends())
    assert set(out) == expected  # nothing lost, nothing made up
    assert len(out) >= len(expected)  # at least once: what the kill cut comes again
