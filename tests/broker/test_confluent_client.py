"""confluent-kafka (librdkafka) against a real `streams broker` process."""

from __future__ import annotations

import threading
import time
from collections import defaultdict

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from waiting import wait_until

pytestmark = pytest.mark.slow

TIMEOUT_S = 30.0
FAST_GROUP = {
    "session.timeout.ms": 6000,
    "heartbeat.interval.ms": 300,
    "max.poll.interval.ms": 10000,
    "auto.offset.reset": "earliest",
    "enable.auto.commit": False,
}


def create_topic(bootstrap: str, name: str, partitions: int, **config: str) -> None:
    with AdminClient({"bootstrap.servers": bootstrap}) as admin:
        futures = admin.create_topics([NewTopic(name, partitions, 1, config=config)])
        futures[name].result(TIMEOUT_S)


def produce_numbered(
    bootstrap: str, topic: str, partitions: int, per_partition: int, start: int = 0, **config
) -> dict[int, list[tuple[int, int]]]:
    """Values 'p:seq' to each partition p; returns (seq, offset) acknowledged per partition."""
    acked: dict[int, list[tuple[int, int]]] = defaultdict(list)
    errors: list[KafkaError] = []

    def delivered(err: KafkaError | None, msg) -> None:
        if err is not None:
            errors.append(err)
            return
        _, seq = msg.value().decode().split(":")
        acked[msg.partition()].append((int(seq), msg.offset()))

    with Producer({"bootstrap.servers": bootstrap, "linger.ms": 2, **config}) as producer:
        for seq in range(start, start + per_partition):
            for p in range(partitions):
                producer.produce(
                    topic, value=f"{p}:{seq}", key=f"k{p}", partition=p, on_delivery=delivered
                )
            producer.poll(0)
        assert producer.flush(TIMEOUT_S) == 0
    assert not errors, errors
    return acked


def check_values(consumed: dict[int, list[int]], partitions: int, per_partition: int) -> None:
    """Each partition's sequence numbers 0..n-1 exactly once, in order."""
    assert sorted(consumed) == list(range(partitions))
    for p, seqs in consumed.items():
        assert seqs == list(range(per_partition)), (p, seqs[:20])


def test_producers_with_acks_all_idempotent_and_acks_1(broker) -> None:
    create_topic(broker.bootstrap, "acks", 2)
    idempotent = produce_numbered(
        broker.bootstrap, "acks", 2, 100, **{"acks": "all", "enable.idempotence": True}
    )
    leader_only = produce_numbered(broker.bootstrap, "acks", 2, 100, start=100, acks=1)
    for p in range(2):
        acked = sorted(idempotent[p] + leader_only[p])
        assert [seq for seq, _ in acked] == list(range(200))
        assert [offset for _, offset in acked] == list(range(200))

    consumer = Consumer(
        {"bootstrap.servers": broker.bootstrap, "group.id": "acks-reader", **FAST_GROUP}
    )
    try:
        consumer.assign([TopicPartition("acks", p, 0) for p in range(2)])
        seen: dict[int, list[int]] = defaultdict(list)
        deadline = time.monotonic() + TIMEOUT_S
        while sum(map(len, seen.values())) < 400:
            assert time.monotonic() < deadline
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            assert msg.error() is None, msg.error()
            p, seq = map(int, msg.value().decode().split(":"))
            assert (p, msg.key()) == (msg.partition(), f"k{p}".encode())
            assert msg.offset() == seq
            seen[p].append(seq)
    finally:
        consumer.close()
    check_values(seen, 2, 200)


REBALANCING = {
    KafkaError.REBALANCE_IN_PROGRESS,
    KafkaError.ILLEGAL_GENERATION,
    KafkaError.UNKNOWN_MEMBER_ID,
}


class Member:
    """A consumer-group member in its own thread: poll, record, commit synchronously.

    A message counts as consumed only once its commit succeeded; a commit refused
    by a rebalance leaves it to be read again by whoever owns the partition next
    (eager rebalancing resets positions to the committed offsets)."""

    def __init__(self, name: str, bootstrap: str, group: str, topic: str, ledger: Ledger) -> None:
        self.name = name
        self.ledger = ledger
        self.consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": group,
                "client.id": name,
                **FAST_GROUP,
            }
        )
        self.consumer.subscribe([topic])
        self.assigned: set[int] = set()
        self._leave = threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._leave.is_set():
                msg = self.consumer.poll(0.1)
                self.assigned = {tp.partition for tp in self.consumer.assignment()}
                if msg is None:
                    continue
                if msg.error() is not None:
                    raise KafkaException(msg.error())
                try:
                    self.consumer.commit(message=msg, asynchronous=False)
                except KafkaException as exc:
                    if exc.args[0].code() not in REBALANCING:
                        raise
                    continue
                self.ledger.record(self.name, msg)
        except BaseException as exc:
            self.error = exc
        finally:
            self.consumer.close()  # leaves the group

    def leave(self) -> None:
        self._leave.set()
        self._thread.join(TIMEOUT_S)
        assert not self._thread.is_alive()
        assert self.error is None, self.error


class Ledger:
    """What the group consumed: (member, seq) per partition, in consumption order."""

    def __init__(self) -> None:
        self.by_partition: dict[int, list[tuple[str, int]]] = defaultdict(list)
        self.changed = threading.Condition()
        self.count = 0

    def record(self, member: str, msg) -> None:
        p, seq = map(int, msg.value().decode().split(":"))
        assert p == msg.partition()
        with self.changed:
            self.by_partition[p].append((member, seq))
            self.count += 1
            self.changed.notify_all()

    def wait_for_count(self, n: int) -> None:
        with self.changed:
            assert self.changed.wait_for(lambda: self.count >= n, TIMEOUT_S), self.count


def test_group_of_three_one_leaves_midway(broker) -> None:
    partitions, per_partition = 6, 120
    half = per_partition // 2
    create_topic(broker.bootstrap, "grp3", partitions)
    produce_numbered(broker.bootstrap, "grp3", partitions, half)

    ledger = Ledger()
    members = [Member(f"m{i}", broker.bootstrap, "g3", "grp3", ledger) for i in range(3)]
    try:
        wait_until(
            lambda: (
                all(m.assigned for m in members)
                and set().union(*(m.assigned for m in members)) == set(range(partitions))
            ),
            timeout_s=TIMEOUT_S,
            what="three members share the partitions",
        )
        ledger.wait_for_count(partitions * half)
        leaver = members.pop()
        leaver_partitions = set(leaver.assigned)
        leaver.leave()
        wait_until(
            lambda: set().union(*(m.assigned for m in members)) == set(range(partitions)),
            timeout_s=TIMEOUT_S,
            what="the leaver's partitions reassigned",
        )
        produce_numbered(broker.bootstrap, "grp3", partitions, half, start=half)
        ledger.wait_for_count(partitions * per_partition)
    finally:
        for m in members:
            m.leave()
    consumed = {p: [seq for _, seq in rows] for p, rows in ledger.by_partition.items()}
    check_values(consumed, partitions, per_partition)
    for p in leaver_partitions:
        late = {member for member, seq in ledger.by_partition[p] if seq >= half}
        assert late and leaver.name not in late, (p, late)


def test_committed_offsets_resume_after_restart(broker) -> None:
    partitions, per_partition = 2, 100
    create_topic(broker.bootstrap, "resume", partitions)
    produce_numbered(broker.bootstrap, "resume", partitions, per_partition)
    total = partitions * per_partition

    def consume(limit: int, *, then_nothing: bool) -> list[tuple[int, int]]:
        consumer = Consumer(
            {"bootstrap.servers": broker.bootstrap, "group.id": "resumers", **FAST_GROUP}
        )
        out: list[tuple[int, int]] = []
        try:
            consumer.subscribe(["resume"])
            deadline = time.monotonic() + TIMEOUT_S
            while len(out) < limit:
                assert time.monotonic() < deadline, len(out)
                msg = consumer.poll(0.2)
                if msg is None:
                    continue
                assert msg.error() is None, msg.error()
                out.append(tuple(map(int, msg.value().decode().split(":"))))
                consumer.commit(message=msg, asynchronous=False)
            if then_nothing:
                assert consumer.poll(1.0) is None
        finally:
            consumer.close()
        return out

    first = consume(total // 2, then_nothing=False)
    broker.restart()  # committed offsets live in the log, not in memory
    second = consume(total - len(first), then_nothing=True)
    seen: dict[int, list[int]] = defaultdict(list)
    for p, seq in first + second:
        seen[p].append(seq)
    check_values(seen, partitions, per_partition)


def test_committed_leader_epoch_round_trips(broker) -> None:
    """KIP-320: the leader epoch committed with an offset comes back with it."""
    create_topic(broker.bootstrap, "epochs", 1)
    produce_numbered(broker.bootstrap, "epochs", 1, 3)
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "epochs", **FAST_GROUP})
    try:
        committed = consumer.commit(
            offsets=[TopicPartition("epochs", 0, 2, leader_epoch=0)], asynchronous=False
        )
        assert committed[0].error is None
        (back,) = consumer.committed([TopicPartition("epochs", 0)], TIMEOUT_S)
        assert (back.offset, back.leader_epoch) == (2, 0)
    finally:
        consumer.close()
