"""kafka-python 3 against a real `streams broker` process."""

from __future__ import annotations

import threading
import warnings
from collections import defaultdict

import pytest
from waiting import wait_until

with warnings.catch_warnings():
    # kafka-python 3.0 loads its schemas with importlib.resources.read_text
    warnings.simplefilter("ignore", DeprecationWarning)
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
    from kafka.admin import NewTopic
    from kafka.errors import (
        CommitFailedError,
        RebalanceInProgressError,
        TopicAlreadyExistsError,
        UnknownTopicOrPartitionError,
    )

pytestmark = pytest.mark.slow

TIMEOUT_S = 30.0


def test_admin_creates_lists_and_deletes_topics(broker) -> None:
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, client_id="kp-admin")
    try:
        admin.create_topics([NewTopic("kp-a", 3, 1), NewTopic("kp-b", 1, 1)])
        assert {"kp-a", "kp-b"} <= set(admin.list_topics())
        (described,) = admin.describe_topics(["kp-a"])
        assert [p["partition_index"] for p in described["partitions"]] == [0, 1, 2]

        with pytest.raises(TopicAlreadyExistsError):
            admin.create_topics([NewTopic("kp-a", 3, 1)])

        admin.delete_topics(["kp-b"])
        wait_until(
            lambda: "kp-b" not in admin.list_topics(), timeout_s=TIMEOUT_S, what="kp-b deleted"
        )
        assert "kp-a" in admin.list_topics()
        with pytest.raises(UnknownTopicOrPartitionError):
            admin.delete_topics(["kp-b"])
    finally:
        admin.close()


def produce(bootstrap: str, topic: str, partitions: int, start: int, stop: int) -> None:
    """Values 'p:seq' to each partition p, with kafka-python's idempotent default."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=2)
    try:
        assert producer.config["enable_idempotence"]
        futures = [
            (p, seq, producer.send(topic, value=f"{p}:{seq}".encode(), key=b"k", partition=p))
            for seq in range(start, stop)
            for p in range(partitions)
        ]
        producer.flush(TIMEOUT_S)
        offsets: dict[int, list[int]] = defaultdict(list)
        for p, seq, future in futures:
            meta = future.get(TIMEOUT_S)
            assert (meta.topic, meta.partition) == (topic, p)
            offsets[p].append(meta.offset)
            assert meta.offset == seq
    finally:
        producer.close(TIMEOUT_S)


class Member:
    """A group member in a thread; a record counts once its synchronous commit succeeded."""

    def __init__(self, name: str, bootstrap: str, topic: str, seen: list) -> None:
        self.name = name
        self.seen = seen
        self.consumer = KafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            group_id="kp-group",
            client_id=name,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=6000,
            heartbeat_interval_ms=300,
            max_poll_interval_ms=10000,
        )
        self.assigned: set[int] = set()
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                batches = self.consumer.poll(timeout_ms=100, max_records=1)
                self.assigned = {tp.partition for tp in self.consumer.assignment()}
                records = [r for rs in batches.values() for r in rs]
                if not records:
                    continue
                try:
                    self.consumer.commit()
                except (CommitFailedError, RebalanceInProgressError):
                    continue  # read again by the partition's next owner
                for r in records:
                    p, seq = map(int, r.value.decode().split(":"))
                    assert p == r.partition
                    self.seen.append((self.name, p, seq))
        except BaseException as exc:
            self.error = exc
        finally:
            self.consumer.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(TIMEOUT_S)
        assert not self._thread.is_alive()
        assert self.error is None, self.error


def test_producer_and_consumer_group(broker) -> None:
    partitions, per_partition = 4, 60
    half = per_partition // 2
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        admin.create_topics([NewTopic("kp-group-topic", partitions, 1)])
    finally:
        admin.close()
    produce(broker.bootstrap, "kp-group-topic", partitions, 0, half)

    seen: list[tuple[str, int, int]] = []
    members = [Member(f"kp{i}", broker.bootstrap, "kp-group-topic", seen) for i in range(2)]
    try:
        wait_until(
            lambda: (
                all(m.assigned for m in members)
                and set().union(*(m.assigned for m in members)) == set(range(partitions))
            ),
            timeout_s=TIMEOUT_S,
            what="two members share the partitions",
        )
        produce(broker.bootstrap, "kp-group-topic", partitions, half, per_partition)
        wait_until(
            lambda: len(seen) >= partitions * per_partition,
            timeout_s=TIMEOUT_S,
            what="all consumed",
        )
    finally:
        for m in members:
            m.stop()
    by_partition: dict[int, list[int]] = defaultdict(list)
    for _, p, seq in seen:
        by_partition[p].append(seq)
    assert sorted(by_partition) == list(range(partitions))
    for p, seqs in by_partition.items():
        assert seqs == list(range(per_partition)), p
    assert {name for name, _, seq in seen if seq >= half} == {"kp0", "kp1"}
