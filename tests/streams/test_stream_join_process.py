"""Real worker processes with a windowed stream-stream join: one buffers the views
and stops, the next joins the clicks with them and is killed with SIGKILL midway,
the last finishes. The buffers come back from their changelog on disk each time,
and every pair is in the output (at least once)."""

from __future__ import annotations

import signal
from pathlib import Path

import orjson
import pytest

from runtime.log.config import FlushPolicy
from runtime.log.manager import Log
from runtime.log.records import decode_batches, encode_batch
from runtime.partitioner import partition_for_key
from runtime.types import TopicPartition

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


def _events() -> dict[str, list[tuple[str, str, float]]]:
    views = [(f"k{i % KEYS}", f"v{i}", float(i)) for i in range(EVENTS)]
    clicks = [(f"k{j % KEYS}", f"c{j}", j + 0.5) for j in range(EVENTS)]
    for key in _ends():
        views.append((key, f"v-{key}", 10_000.0))
        clicks.append((key, f"c-{key}", 10_000.0))
    return {"views": views, "clicks": clicks}


def _expected(events: dict[str, list[tuple[str, str, float]]]) -> set[tuple[str, str, str]]:
    return {
        (key, view, click)
        for key, view, tv in events["views"]
        for other, click, tc in events["clicks"]
        if key == other and tv - WITHIN_S <= tc <= tv + WITHIN_S
    }


def _produce(log_dir: Path, events: dict[str, list[tuple[str, str, float]]]) -> None:
    with Log.open(log_dir, flush=FlushPolicy("os")) as log:
        for topic, rows in events.items():
            if topic not in log.topics():
                log.create_topic(topic, PARTITIONS)
            by_partition: dict[int, list] = {}
            for key, value, ts in rows:
                kb = key.encode()
                by_partition.setdefault(partition_for_key(kb, PARTITIONS), []).append(
                    (kb, orjson.dumps(value), int(ts * 1000), ())
                )
            for p, records in by_partition.items():
                log.append(TopicPartition(topic, p), encode_batch(records))


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
def test_a_killed_worker_recovers_its_join_buffers_and_misses_no_pair(tmp_path, worker_process):
    data = tmp_path / "data"
    events = _events()
    args = ("-l", "warning", "--web", "none")
    env = {"JOIN_APP_DATA": str(data)}
    # Views only, buffered and committed by a clean stop.
    _produce(data / "log", {"views": events["views"], "clicks": []})
    first = worker_process("join_app", APPS, *args, env=env)
    first.wait_log(f"buffered views={len(events['views'])}")
    assert first.stop() == 0
    # Then the clicks, which join the views from the changelog, and a kill midway.
    _produce(data / "log", {"clicks": events["clicks"]})
    second = worker_process("join_app", APPS, *args, env=env)
    second.wait_log("join results=200")
    assert second.stop(signal.SIGKILL) == -signal.SIGKILL
    assert "joined the last events" not in second.text()  # killed in the middle
    third = worker_process("join_app", APPS, *args, env=env)
    for key in _ends():
        third.wait_log(f"joined the last events key={key}")
    assert third.stop() == 0

    out = _output(data / "log")
    expected = _expected(events)
    # Each view pairs with the clicks 20 s before, at, and 20 s after it, where there are.
    assert len(expected) == 3 * EVENTS - 2 * KEYS + len(_ends())
    assert set(out) == expected  # nothing lost, nothing made up
    assert len(out) >= len(expected)  # at least once: what the kill cut comes again
