"""Real processes for the multi-worker tests: a `streams broker`, workers of
apps/tally_app.py, events produced and tables read with confluent-kafka, and
the per-event traces the app writes.

A process's stderr is drained by a thread for its whole life (the pipe never
fills); `log` holds every line. Every process is reaped by its owner, whatever
the test did to it.
"""

from __future__ import annotations

import os
import random
import re
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from broker_process import free_port
from child_process import REPO, ChildProcess
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from waiting import wait_until

APPS = Path(__file__).parent / "apps"
READY_TIMEOUT_S = 20.0
PARTITIONS = 8
TOPIC = "events"
CHANGELOG = "tally-counts-changelog"
# librdkafka logs connections the broker closes at teardown: not news here.
QUIET = {"log.connection.close": False, "log_level": 3}


class Process(ChildProcess):
    """A child process whose stderr lines are collected by a thread."""

    def wait_ready(self) -> None:
        if not self.ready.wait(READY_TIMEOUT_S) or not self.alive():
            self.reap(signal.SIGKILL)
            raise AssertionError(f"not ready in {READY_TIMEOUT_S}s:\n{self.text()}")

    def kill(self) -> None:
        """SIGKILL: a crash."""
        code = self.reap(signal.SIGKILL)
        assert code == -signal.SIGKILL, f"exited {code} before the kill:\n{self.text()}"

    def terminate(self) -> None:
        """SIGTERM: a clean stop, which must exit 0 with no error logged."""
        code = self.reap(signal.SIGTERM)
        assert code == 0, f"exited {code}:\n{self.text()}"
        assert "Traceback" not in self.text() and " ERROR " not in self.text(), self.text()


def start_broker(data: Path) -> tuple[Process, str]:
    """A `streams broker` on a free loopback port; (process, HOST:PORT)."""
    bootstrap = f"127.0.0.1:{free_port()}"
    command = [sys.executable, "-m", "streams", "broker", "--data", str(data)]
    command += ["--listen", bootstrap, "--partitions", str(PARTITIONS), "-l", "warning"]
    broker = Process(command, {}, ready_line="broker ready on ")
    broker.wait_ready()
    return broker, bootstrap


def kill_at_a_random_moment(
    worker: Process,
    trace: Path,
    rng: random.Random,
    *,
    processed_max: int,
    timeout_s: float,
) -> str:
    """SIGKILL `worker` once it reaches a randomly chosen moment: just after it
    started (in group mode: joined the group), or after 1..processed_max events
    of its own; which one."""
    if rng.random() < 0.3:
        moment = "just after starting"
        wait_until(
            lambda: assignment(worker) or "worker started app=" in worker.text(),
            timeout_s=timeout_s,
            what=lambda: f"{worker.pid} started:\n{worker.text()[-3000:]}",
        )
    else:
        n = rng.randrange(1, processed_max)
        moment = f"after {n} events"
        wait_until(
            lambda: len(read_traces(trace, worker.pid)) >= n,
            timeout_s=timeout_s,
            what=lambda: f"{worker.pid} processing {n} events:\n{worker.text()[-3000:]}",
        )
    worker.kill()
    return moment


def start_worker(broker_url: str, data: Path, trace: Path, **env: str) -> Process:
    """A worker of tally_app; `env` sets the app's TALLY_* knobs."""
    command = [sys.executable, "-m", "streams", "-A", "tally_app", "worker"]
    command += ["--broker", broker_url, "--data", str(data), "-l", "info"]
    variables = {"PYTHONPATH": f"{APPS}{os.pathsep}{REPO}", "TALLY_TRACE": str(trace), **env}
    return Process(command, variables, ready_line=None)


# --- events and tables through confluent-kafka ----------------------------------------


def create_topic(bootstrap: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap, **QUIET})
    for future in admin.create_topics([NewTopic(TOPIC, PARTITIONS, 1)]).values():
        future.result(timeout=10)


def produce(bootstrap: str, keys: Iterable[str]) -> None:
    """Send one event per key and wait until all are acknowledged."""
    producer = Producer(
        {"bootstrap.servers": bootstrap, "partitioner": "murmur2_random", "linger.ms": 5, **QUIET}
    )
    for key in keys:
        producer.produce(TOPIC, key=key.encode(), value=b"1")
        producer.poll(0)
    assert producer.flush(30) == 0, "events not all acknowledged"


class LiveProducer:
    """Sends events keyed k0..k96 at a steady rate from a thread until stopped,
    so workers always have a live stream to process (and to be killed in)."""

    def __init__(self, bootstrap: str, rate_per_s: int, distinct_keys: int = 97) -> None:
        self._producer = Producer(
            {
                "bootstrap.servers": bootstrap,
                "partitioner": "murmur2_random",
                "linger.ms": 5,
                **QUIET,
            }
        )
        self._rate = rate_per_s
        self._distinct = distinct_keys
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._closed = False
        self.acked: Counter[str] = Counter()
        self.errors: list[str] = []

    def _delivered(self, err: object, message: object) -> None:
        if err is not None:
            self.errors.append(str(err))
        else:
            self.acked[message.key().decode()] += 1  # type: ignore[attr-defined]

    def _run(self) -> None:
        tick_s, sent = 0.01, 0
        started = time.monotonic()
        while not self._stop.is_set():
            due = int((time.monotonic() - started) * self._rate)
            for i in range(sent, due):
                key = f"k{i % self._distinct}".encode()
                self._producer.produce(TOPIC, key=key, value=b"1", on_delivery=self._delivered)
            sent = max(sent, due)
            self._producer.poll(tick_s)

    def start(self) -> LiveProducer:
        self._thread.start()
        return self

    def stop(self) -> Counter[str]:
        """Stop sending; every event sent is acknowledged. The keys' true counts."""
        self._stop.set()
        self._thread.join(10)
        unsent = self._producer.flush(30)
        self.close()
        assert unsent == 0, f"{unsent} events not acknowledged"
        assert not self.errors, self.errors[:5]
        return self.acked

    def close(self) -> None:
        """Stop sending and drop what is unsent (idempotent; teardown calls it
        whatever the test did)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10)
        if not self._closed:
            self._closed = True
            self._producer.purge()
            self._producer.close()


def read_topic(bootstrap: str, topic: str) -> list[tuple[int, int, bytes, bytes | None, int]]:
    """Every record of `topic` now: (partition, offset, key, value, timestamp_ms)."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            **QUIET,
            "group.id": "worker-tests-reader",
            "enable.auto.commit": False,
        }
    )
    try:
        ends = {}
        for p in range(PARTITIONS):
            _, ends[p] = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
        wanted = {p for p, end in ends.items() if end > 0}
        consumer.assign([TopicPartition(topic, p, 0) for p in wanted])
        records = []
        deadline = time.monotonic() + 30
        while wanted and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None or message.error():
                continue
            p = message.partition()
            records.append(
                (p, message.offset(), message.key(), message.value(), message.timestamp()[1])
            )
            if message.offset() + 1 >= ends[p]:
                wanted.discard(p)
        assert not wanted, f"could not read partitions {sorted(wanted)} of {topic}"
        return records
    finally:
        consumer.close()


def read_table(bootstrap: str) -> dict[str, int]:
    """The counts table as its changelog says: the last value per key."""
    table: dict[str, int] = {}
    for _, _, key, value, _ in sorted(read_topic(bootstrap, CHANGELOG), key=lambda r: r[:2]):
        if value is not None:
            table[key.decode()] = int(value)
    return table


# --- what workers log -------------------------------------------------------------

ASSIGNED = re.compile(r"assigned app=\S+ active=\[([\d, ]*)\] standby=\[([\d, ]*)\]")
RECOVERED = re.compile(
    r"recovered table=(\S+) partitions=\d+ records=\d+ seconds=(\S+) detail=(\S+)"
)
"""A worker's line per table and recovery round (streams/placement.py)."""
PARTITION_REPLAY = re.compile(r"(\d+):(\d+):(\d+)-(\d+)")


def assignment(worker: Process) -> tuple[set[int], set[int]] | None:
    """The (active, standby) partition numbers of the worker's last assignment."""
    found = None
    for line in list(worker.log):
        if m := ASSIGNED.search(line):
            found = (_numbers(m[1]), _numbers(m[2]))
    return found


def _numbers(listing: str) -> set[int]:
    return {int(p) for p in listing.split(",") if p.strip()}


@dataclass(frozen=True, slots=True)
class Recovery:
    partition: int
    records: int
    start_offset: int
    end_offset: int
    seconds: float


def recoveries(lines: Iterable[str]) -> list[Recovery]:
    found = []
    for line in lines:
        if m := RECOVERED.search(line):
            _, seconds, detail = m.groups()
            for p, n, start, end in PARTITION_REPLAY.findall(detail):
                found.append(Recovery(int(p), int(n), int(start), int(end), float(seconds)))
    return found


# --- traces: who processed which event when ------------------------------------------


@dataclass(frozen=True, slots=True)
class Processed:
    pid: int
    partition: int
    offset: int
    ns: int


def read_traces(trace: Path, pid: int | None = None) -> list[Processed]:
    """What every worker (or worker `pid`) processed, as its trace says."""
    found = []
    for path in trace.glob("*.trace" if pid is None else f"{pid}.trace"):
        lines = path.read_text().split("\n")
        for line in lines[:-1]:  # the last is empty, or being written
            found.append(Processed(*map(int, line.split())))
    return found


def covered(trace: Path) -> int:
    """How many distinct events were processed (by anyone)."""
    return len({(r.partition, r.offset) for r in read_traces(trace)})


def wait_covered(trace: Path, total: int, timeout_s: float) -> None:
    """Wait until `total` distinct events were processed; else say which were skipped."""
    try:
        wait_until(
            lambda: covered(trace) >= total,
            timeout_s=timeout_s,
            what=f"all {total} events processed",
        )
    except AssertionError as exc:
        seen: dict[int, set[int]] = {}
        for r in read_traces(trace):
            seen.setdefault(r.partition, set()).add(r.offset)
        gaps = {p: max(s) + 1 - len(s) for p, s in sorted(seen.items()) if max(s) + 1 > len(s)}
        raise AssertionError(f"{exc}; offsets skipped below the last processed: {gaps}") from None


def processing(trace: Path, pid: int, partitions: Iterable[int] = (), after_ns: int = 0) -> bool:
    """Whether `pid` processed an event after `after_ns` (of each of `partitions`)."""
    seen = {r.partition for r in read_traces(trace, pid) if r.ns > after_ns}
    return bool(seen) and seen.issuperset(partitions)


@dataclass(frozen=True, slots=True)
class Stint:
    """Consecutive offsets of one partition processed by one worker."""

    pid: int
    partition: int
    first_offset: int
    last_offset: int
    first_ns: int
    last_ns: int


def stints(records: Iterable[Processed]) -> list[Stint]:
    """A worker's run of a partition ends where its next offset is not the one
    after the last (it lost the partition, and got it back further on or from
    an older committed offset)."""
    by_owner: dict[tuple[int, int], list[Processed]] = {}
    for r in records:
        by_owner.setdefault((r.pid, r.partition), []).append(r)
    found = []
    for (pid, partition), rows in by_owner.items():
        rows.sort(key=lambda r: r.ns)
        start = prev = rows[0]
        for r in rows[1:]:
            if r.offset != prev.offset + 1:
                found.append(Stint(pid, partition, start.offset, prev.offset, start.ns, prev.ns))
                start = r
            prev = r
        found.append(Stint(pid, partition, start.offset, prev.offset, start.ns, prev.ns))
    return found


def overlaps(records: Iterable[Processed]) -> list[tuple[Stint, Stint]]:
    """Pairs of stints of one partition, by different workers, that overlap in time."""
    by_partition: dict[int, list[Stint]] = {}
    for s in stints(records):
        by_partition.setdefault(s.partition, []).append(s)
    found = []
    for runs in by_partition.values():
        runs.sort(key=lambda s: s.first_ns)
        for i, a in enumerate(runs):
            for b in runs[i + 1 :]:
                if b.first_ns > a.last_ns:
                    break
                if b.pid != a.pid:
                    found.append((a, b))
    return found
