"""A GlobalTable on several worker processes on `streams broker` (kafka://):
tests/workers/apps/global_app.py. A value one worker's agent writes is read
locally by the other worker's agent, for events of partitions the writer does
not own; a worker SIGKILLed and restarted recovers the table (a value written
while it was down) before its agent sees an event."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka import TopicPartition as KafkaTopicPartition
from waiting import wait_until
from worker_procs import APPS, QUIET, REPO, Process, assignment, create_topic

CHANGELOG = "glob-settings-changelog"
TIMEOUT_S = 30.0


def _start(bootstrap: str, data: Path, trace: Path) -> Process:
    command = [sys.executable, "-m", "streams", "-A", "global_app", "worker"]
    command += ["--broker", f"kafka://{bootstrap}", "--data", str(data), "-l", "info"]
    env = {"PYTHONPATH": f"{APPS}{os.pathsep}{REPO}", "GLOBAL_TRACE": str(trace)}
    return Process(command, env, ready_line=None)


def _values(trace: Path, pid: int) -> list[tuple[int, str]]:
    """(partition, value read) of each event worker `pid` traced, in order."""
    path = trace / f"{pid}.trace"
    if not path.exists():
        return []
    lines = [line.split() for line in path.read_text().splitlines()]
    return [(int(p), value) for _, p, value in (fields for fields in lines if len(fields) == 3)]


def _changelog_x(bootstrap: str) -> bytes | None:
    """The newest value of key x in the GlobalTable's changelog."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "glob-reader", **QUIET}
        | {"enable.auto.commit": False}
    )
    try:
        for p in range(2):
            tp = KafkaTopicPartition(CHANGELOG, p)
            low, high = consumer.get_watermark_offsets(tp, timeout=10)
            if high <= low:
                continue
            consumer.assign([KafkaTopicPartition(CHANGELOG, p, low)])
            last, position = None, low
            while position < high:
                message = consumer.poll(1.0)
                if message is None or message.error():
                    continue
                position = message.offset() + 1
                if message.key() == b"x":
                    last = message.value()
            if last is not None:
                return last
        return None
    finally:
        consumer.close()


def _split(workers: list[Process]) -> bool:
    """Both workers hold partitions of one generation: all 8, none twice."""
    found = [assignment(w) for w in workers]
    if any(a is None or not a[0] for a in found):
        return False
    actives = [a[0] for a in found if a is not None]
    return sorted(p for a in actives for p in a) == list(range(8))


@pytest.mark.slow
def test_workers_read_each_others_writes_and_a_restart_recovers(broker, tmp_path):
    create_topic(broker)
    trace = tmp_path / "trace"
    trace.mkdir()
    producer = Producer({"bootstrap.servers": broker, "linger.ms": 5, **QUIET})

    def send(key: str, value: int) -> None:
        producer.produce("events", key=key.encode(), value=str(value).encode())
        assert producer.flush(10) == 0

    def probe() -> None:  # one event on every partition (keys spread by murmur2)
        for i in range(24):
            producer.produce("events", key=f"k{i}".encode(), value=b"0")
        assert producer.flush(10) == 0

    def seen(worker: Process, value: str) -> bool:
        probe()
        return any(v == value for _, v in _values(trace, worker.pid))

    workers = [_start(broker, tmp_path / f"w{i}", trace) for i in range(2)]
    try:
        wait_until(lambda: _split(workers), timeout_s=TIMEOUT_S, what="both workers assigned")
        send("set:x", 1)
        for w in workers:  # the writer, and the other one for its own partitions
            wait_until(lambda w=w: seen(w, "1"), timeout_s=TIMEOUT_S, what=f"{w.pid} reads 1")
        owners = {w.pid: assignment(w)[0] for w in workers}  # type: ignore[index]
        for w in workers:
            assert {p for p, v in _values(trace, w.pid) if v == "1"} <= owners[w.pid]

        victim = workers.pop()
        victim.kill()
        send("set:x", 2)  # while the victim is down
        wait_until(lambda: _changelog_x(broker) == b"2", timeout_s=TIMEOUT_S, what="x=2 flushed")
        restarted = _start(broker, tmp_path / "w1", trace)  # its own data dir again
        workers.append(restarted)
        wait_until(lambda: seen(restarted, "2"), timeout_s=TIMEOUT_S, what="restart reads 2")
        first = _values(trace, restarted.pid)[0]
        assert first[1] == "2", f"the restarted worker's agent ran before recovery: {first}"
        survivor = workers[0]  # through two rebalances: its GlobalTable was never revoked
        wait_until(lambda: seen(survivor, "2"), timeout_s=TIMEOUT_S, what="survivor reads 2")
        for w in workers:
            w.terminate()
    finally:
        for w in workers:
            w.reap(signal.SIGKILL)
        producer.flush(5)
