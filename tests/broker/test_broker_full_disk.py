"""`streams broker` on a real 20 MB disk that fills up, under an idempotent producer.

The data directory is a tmpfs mounted for the test. An acks=all idempotent
confluent-kafka producer fills it until the broker answers KAFKA_STORAGE_ERROR
(a probe produce says so); DeleteTopics of another topic, on the full disk,
must succeed and free space, and the producer's stalled messages go through;
it fills the disk again, a filler file is deleted, and 1,000 more go through.
Every message is acknowledged or reported failed, every acknowledged one reads
back once (CRCs checked) where it was acknowledged, and again after a SIGTERM
restart and after a SIGKILL restart.
"""

from __future__ import annotations

import contextlib
import errno
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from disks import tmpfs
from kafka_wire import WireClient, batch, fetch_body, produce_body
from waiting import wait_until

from runtime.log.records import iter_batches, validate_batch
from runtime.protocol.codes import ApiKey, ErrorCode

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

DISK_SIZE = "20m"
FILLER_BYTES = 4 << 20
TOPIC, PARTITIONS = "fill", 3
VICTIM, VICTIM_MESSAGES = "victim", 3000
PROBE = "probe"
VALUE_BYTES = 1000
IN_FLIGHT_MAX = 1500  # unacknowledged messages: fewer bytes than a delete frees
AFTER_FREEING = 1000
TIMEOUT_S = 60.0
PROBE_BYTES = 64 << 10
FULL_BYTES = 1 << 20  # below this much free space, probe whether the broker refuses


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    with tmpfs(tmp_path, DISK_SIZE) as mount:
        yield mount


@pytest.fixture
def start_on_small_disk(small_disk: Path, start_broker: Callable[..., Any]) -> Callable[..., Any]:
    """start_broker on the tmpfs; set up after the mount, so stopped before the unmount."""
    return lambda *args: start_broker(*args, data_dir=small_disk / "data")


def free_bytes(path: Path) -> int:
    stat = os.statvfs(path)
    return stat.f_bavail * stat.f_frsize


def used_bytes(data: Path, topic: str) -> int:
    """What the topic's partition directories take on disk."""
    used = 0
    for path in data.glob(f"{topic}-*/*"):
        with contextlib.suppress(FileNotFoundError):  # a segment deleted meanwhile
            used += path.stat().st_blocks * 512
    return used


@dataclass
class Book:
    """What the producer was told about each numbered message."""

    produced: int = 0
    acked: dict[int, tuple[int, int]] = field(default_factory=dict)  # number -> (p, offset)
    failed: list[tuple[int, KafkaError]] = field(default_factory=list)

    def delivered(self, err: KafkaError | None, msg) -> None:
        number = int(msg.value()[:10])
        if err is None:
            self.acked[number] = (msg.partition(), msg.offset())
        else:
            self.failed.append((number, err))

    @property
    def outstanding(self) -> int:
        return self.produced - len(self.acked) - len(self.failed)


def value(number: int) -> bytes:
    return b"%010d" % number + b"x" * (VALUE_BYTES - 10)


def produce(
    producer: Producer, book: Book, topic: str = TOPIC, partitions: int = PARTITIONS
) -> None:
    number = book.produced
    producer.produce(
        topic, value(number), partition=number % partitions, on_delivery=book.delivered
    )
    book.produced += 1


def refused(wire: WireClient) -> bool:
    """Whether the broker refuses a PROBE_BYTES produce (one that is stored uses the space)."""
    answer = wire.request(ApiKey.PRODUCE, 8, produce_body(PROBE, 0, batch(b"p" * PROBE_BYTES)))
    code = answer["responses"][0]["partitions"][0]["error_code"]
    assert code in (ErrorCode.NONE, ErrorCode.KAFKA_STORAGE_ERROR), code
    return code == ErrorCode.KAFKA_STORAGE_ERROR


def fill_until_refused(producer: Producer, book: Book, wire: WireClient, disk: Path) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        assert time.monotonic() < deadline, f"not full: {free_bytes(disk)} bytes free"
        while book.outstanding < IN_FLIGHT_MAX:
            produce(producer, book)
        producer.poll(0.05)
        if free_bytes(disk) < FULL_BYTES and refused(wire):
            return


def top_up(path: Path) -> None:
    """Take the last free bytes, so that the next write of anyone fails."""
    with path.open("ab", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc


def flush(producer: Producer, book: Book) -> None:
    assert producer.flush(TIMEOUT_S) == 0, f"{book.outstanding} messages still unacknowledged"


def read_back(bootstrap: str) -> dict[int, tuple[int, int]]:
    """number -> (partition, offset) of every message of TOPIC; CRCs checked, no duplicates."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "full-disk-reader",
            "enable.auto.commit": False,
            "check.crcs": True,
        }
    )
    found: dict[int, tuple[int, int]] = {}
    try:
        ends = {
            p: consumer.get_watermark_offsets(TopicPartition(TOPIC, p), TIMEOUT_S)[1]
            for p in range(PARTITIONS)
        }
        consumer.assign([TopicPartition(TOPIC, p, 0) for p in range(PARTITIONS)])
        seen = dict.fromkeys(range(PARTITIONS), 0)
        deadline = time.monotonic() + TIMEOUT_S
        while any(seen[p] < ends[p] for p in range(PARTITIONS)):
            assert time.monotonic() < deadline, (seen, ends)
            for msg in consumer.consume(1000, 0.5):
                assert msg.error() is None, msg.error()
                number = int(msg.value()[:10])
                assert number not in found, f"{number} stored twice"
                found[number] = (msg.partition(), msg.offset())
                seen[msg.partition()] = msg.offset() + 1
    finally:
        consumer.close()
    return found


def assert_whole_batches(bootstrap: str) -> None:
    """Every stored batch, fetched raw, passes the length, magic and CRC checks."""
    with WireClient(bootstrap) as wire:
        for p in range(PARTITIONS):
            offset, end = 0, None
            while end is None or offset < end:
                body = wire.request(ApiKey.FETCH, 11, fetch_body(TOPIC, p, offset))
                (part,) = body["responses"][0]["partitions"]
                assert part["error_code"] == 0
                end = part["high_watermark"]
                data = bytes(part["records"])
                for pos, header in iter_batches(data):
                    validate_batch(data, pos)
                    last = header.base_offset + header.last_offset_delta
                    assert header.base_offset <= offset <= last
                    offset = last + 1


def check_all_there(broker: Any, book: Book) -> int:
    stored = read_back(broker.bootstrap)
    assert_whole_batches(broker.bootstrap)
    lost = {n: at for n, at in book.acked.items() if stored.get(n) != at}
    assert not lost, f"{len(lost)} acknowledged lost or moved: {list(lost.items())[:5]}"
    return len(stored)


def create_topics(bootstrap: str) -> None:
    with AdminClient({"bootstrap.servers": bootstrap}) as admin:
        new = [NewTopic(TOPIC, PARTITIONS, 1), NewTopic(VICTIM, 1, 1), NewTopic(PROBE, 1, 1)]
        for future in admin.create_topics(new).values():
            future.result(TIMEOUT_S)


def delete_topic(bootstrap: str, name: str) -> None:
    with AdminClient({"bootstrap.servers": bootstrap}) as admin:
        admin.delete_topics([name])[name].result(TIMEOUT_S)


@pytest.mark.parametrize("flush_policy", ["os", "batch"])
def test_full_disk_refuses_then_recovers_without_loss(
    small_disk: Path, start_on_small_disk: Callable[..., Any], flush_policy: str
) -> None:
    filler = small_disk / "filler"
    filler.write_bytes(b"\0" * FILLER_BYTES)
    broker = start_on_small_disk("--flush", flush_policy)
    create_topics(broker.bootstrap)
    book, figures = Book(), {}
    config = {
        "bootstrap.servers": broker.bootstrap,
        "acks": "all",
        "enable.idempotence": True,
        "linger.ms": 5,
        "batch.size": PROBE_BYTES,  # so the probe is refused when they are
        "message.timeout.ms": 120_000,
        "retry.backoff.ms": 50,
        "retry.backoff.max.ms": 500,
    }
    with Producer(config) as producer, WireClient(broker.bootstrap) as wire:
        victim = Book()
        for _ in range(VICTIM_MESSAGES):
            produce(producer, victim, VICTIM, partitions=1)
        flush(producer, victim)
        assert len(victim.acked) == VICTIM_MESSAGES

        fill_until_refused(producer, book, wire, small_disk)
        figures["acked before the disk filled"] = len(book.acked)
        # the broker's cut-back of a refused append frees what it had written, so
        # take the last bytes until none are left, then delete at once
        wait_until(
            lambda: top_up(small_disk / "topup") or free_bytes(small_disk) == 0,
            timeout_s=TIMEOUT_S,
            what=lambda: f"a full disk ({free_bytes(small_disk)} bytes still free)",
        )
        full, filled = free_bytes(small_disk), used_bytes(small_disk / "data", TOPIC)
        delete_topic(broker.bootstrap, VICTIM)  # on the full disk
        # the stalled producer's retries may take freed space at once: count what they
        # wrote (measured first, so a write in between is counted against the deletion)
        wrote = used_bytes(small_disk / "data", TOPIC) - filled
        freed = free_bytes(small_disk) - full + wrote
        assert freed > VICTIM_MESSAGES * VALUE_BYTES * 0.9, (freed, wrote)
        flush(producer, book)  # the stalled messages go through
        figures["acked after DeleteTopics freed space"] = len(book.acked)

        fill_until_refused(producer, book, wire, small_disk)
        figures["acked when the disk filled again"] = len(book.acked)
        filler.unlink()
        (small_disk / "topup").unlink()
        flush(producer, book)
        for _ in range(AFTER_FREEING):
            produce(producer, book)
        flush(producer, book)
        figures["acked after the filler was deleted (+1000)"] = len(book.acked)

    figures["produced"], figures["reported failed"] = book.produced, len(book.failed)
    assert not book.failed, book.failed[:5]
    # the producer's own batches were refused, not only the probes
    assert f"produce refused: KAFKA_STORAGE_ERROR topic={TOPIC} " in broker.log_text()
    assert book.outstanding == 0  # every message acknowledged or reported failed
    assert "Traceback" not in broker.log_text()
    figures["read back"] = check_all_there(broker, book)
    broker.stop()  # SIGTERM: exits 0 on a nearly full disk
    broker.start()
    figures["read back after SIGTERM restart"] = check_all_there(broker, book)
    broker.kill()
    broker.start()
    figures["read back after SIGKILL restart"] = check_all_there(broker, book)
    assert "recovery truncated" not in broker.log_text()
    for name, n in figures.items():
        print(f"full disk (--flush {flush_policy}): {name}: {n}")
    assert figures["read back after SIGKILL restart"] == len(book.acked)
