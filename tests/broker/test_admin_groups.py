"""The admin surface on consumer groups, with real clients against a `streams
broker` process: DeleteGroups, OffsetDelete, OffsetCommit for unknown topics,
static membership (group.instance.id), empty groups' protocol type, the KIP-848
consumer protocol refused loudly, and every advertised API version answered."""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from broker_process import BrokerProcess
from confluent_kafka import (
    Consumer,
    ConsumerGroupState,
    ConsumerGroupType,
    KafkaError,
    KafkaException,
    Producer,
)
from confluent_kafka import TopicPartition as TP
from confluent_kafka.admin import AdminClient, NewTopic
from kafka_wire import WireClient
from waiting import wait_until

from runtime.broker.handlers import ADVERTISED
from runtime.protocol.codes import ApiKey, ErrorCode

with warnings.catch_warnings():
    # kafka-python 3.0 loads its schemas with importlib.resources.read_text
    warnings.simplefilter("ignore", DeprecationWarning)
    from kafka.admin import KafkaAdminClient
    from kafka.structs import TopicPartition as KpTP

pytestmark = pytest.mark.slow
TIMEOUT_S = 30.0
ALL = [0, 1, 2, 3]
GROUP_TIMING = {"session.timeout.ms": 6000, "heartbeat.interval.ms": 300}


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    process = BrokerProcess(Path(tmp_path_factory.mktemp("groups")), ())
    process.start()
    yield process
    process.close()


@pytest.fixture(scope="module")
def admin(broker: BrokerProcess) -> AdminClient:
    return AdminClient({"bootstrap.servers": broker.bootstrap})


@pytest.fixture
def kp_admin(broker: BrokerProcess) -> Iterator[KafkaAdminClient]:
    client = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=10_000)
    yield client
    client.close()


def create(admin: AdminClient, name: str, partitions: int = 1) -> None:
    admin.create_topics([NewTopic(name, partitions, 1)])[name].result(TIMEOUT_S)


def commit(bootstrap: str, group: str, offsets: list[TP]) -> list[TP]:
    """A standalone commit (no subscription); returns the per-partition answers."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        return consumer.commit(offsets=offsets, asynchronous=False)
    finally:
        consumer.close()


def committed(admin: AdminClient, group: str, tps: list[TP]) -> dict[tuple[str, int], int]:
    from confluent_kafka import ConsumerGroupTopicPartitions

    request = ConsumerGroupTopicPartitions(group, tps)
    result = admin.list_consumer_group_offsets([request])[group].result(TIMEOUT_S)
    return {(tp.topic, tp.partition): tp.offset for tp in result.topic_partitions}


# --- DeleteGroups, OffsetDelete, OffsetCommit --------------------------------------------


def test_delete_groups_with_confluent_kafka_and_kafka_python(broker, admin, kp_admin):
    create(admin, "dg")
    commit(broker.bootstrap, "dg-a", [TP("dg", 0, 3)])
    commit(broker.bootstrap, "dg-b", [TP("dg", 0, 4)])
    admin.delete_consumer_groups(["dg-a"])["dg-a"].result(TIMEOUT_S)
    assert committed(admin, "dg-a", [TP("dg", 0)]) == {("dg", 0): -1001}
    kp_admin.delete_groups(["dg-b"])
    assert committed(admin, "dg-b", [TP("dg", 0)]) == {("dg", 0): -1001}
    with pytest.raises(KafkaException) as unknown:
        admin.delete_consumer_groups(["never-was"])["never-was"].result(TIMEOUT_S)
    assert unknown.value.args[0].code() == KafkaError.GROUP_ID_NOT_FOUND
    kp_admin.close()  # kafka-python leaks sockets the restart breaks
    broker.restart()  # the tombstones are in __consumer_offsets
    fresh = AdminClient({"bootstrap.servers": broker.bootstrap})
    assert committed(fresh, "dg-a", [TP("dg", 0)]) == {("dg", 0): -1001}
    assert committed(fresh, "dg-b", [TP("dg", 0)]) == {("dg", 0): -1001}


def test_offset_delete_spares_the_topics_a_live_group_subscribes_to(broker, admin, kp_admin):
    create(admin, "od-live")
    create(admin, "od-old")
    group = "od-group"
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group, **GROUP_TIMING})
    try:
        consumer.subscribe(["od-live"])
        wait_until(
            lambda: consumer.poll(0.2) is None and consumer.assignment(),
            timeout_s=TIMEOUT_S,
            what="the consumer's assignment",
        )
        consumer.commit(offsets=[TP("od-live", 0, 1), TP("od-old", 0, 2)], asynchronous=False)
        result = kp_admin.delete_group_offsets(group, [KpTP("od-live", 0), KpTP("od-old", 0)])
        codes = {tp.topic: error for tp, error in result.items()}
        assert codes["od-old"] is None or codes["od-old"].errno == 0
        assert codes["od-live"].errno == ErrorCode.GROUP_SUBSCRIBED_TO_TOPIC
        assert committed(admin, group, [TP("od-live", 0), TP("od-old", 0)]) == {
            ("od-live", 0): 1,
            ("od-old", 0): -1001,
        }
    finally:
        consumer.close()
    kp_admin.close()
    broker.restart()
    fresh = AdminClient({"bootstrap.servers": broker.bootstrap})
    assert committed(fresh, group, [TP("od-old", 0)]) == {("od-old", 0): -1001}


def test_offset_commit_for_an_unknown_topic_is_refused(broker, admin):
    create(admin, "known")
    assert commit(broker.bootstrap, "uc", [TP("known", 0, 1)])[0].error is None
    for unknown in (TP("unknown-topic", 0, 1), TP("known", 7, 1)):  # known has no partition 7
        with pytest.raises(KafkaException) as refused:
            commit(broker.bootstrap, "uc", [unknown])
        assert refused.value.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART
    assert committed(admin, "uc", [TP("known", 0)]) == {("known", 0): 1}


# --- static membership, empty groups ---------------------------------------------------


class Member:
    """A confluent-kafka consumer polling in a thread, recording its assignments."""

    def __init__(self, bootstrap: str, group: str, topic: str, instance: str) -> None:
        self.assigned: list[list[int]] = []
        self.revoked: list[list[int]] = []
        self._stop = threading.Event()
        self._consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": group,
                "group.instance.id": instance,
                "partition.assignment.strategy": "range",
                **GROUP_TIMING,
            }
        )
        self._consumer.subscribe(
            [topic],
            on_assign=lambda c, ps: self.assigned.append(sorted(p.partition for p in ps)),
            on_revoke=lambda c, ps: self.revoked.append(sorted(p.partition for p in ps)),
        )
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.is_set():
            self._consumer.poll(0.1)

    def close(self) -> None:
        """Closes as a process that is restarting: a static member sends no LeaveGroup."""
        self._stop.set()
        self._thread.join(TIMEOUT_S)
        self._consumer.close()


def test_a_static_member_that_restarts_gets_its_partitions_back_without_a_rebalance(broker, admin):
    create(admin, "static", partitions=4)
    a = Member(broker.bootstrap, "static-group", "static", "host-a")
    b = Member(broker.bootstrap, "static-group", "static", "host-b")
    try:
        wait_until(
            lambda: a.assigned and b.assigned and sorted(a.assigned[-1] + b.assigned[-1]) == ALL,
            timeout_s=TIMEOUT_S,
            what=lambda: f"both assigned: a={a.assigned} b={b.assigned}",
        )
        a_history = (list(a.assigned), list(a.revoked))
        b_partitions = b.assigned[-1]
        rebalances = _rebalances(broker, "static-group")
        b.close()
        b = Member(broker.bootstrap, "static-group", "static", "host-b")  # within 6 s
        wait_until(lambda: b.assigned, timeout_s=TIMEOUT_S, what="the restarted member's share")
        assert b.assigned == [b_partitions]
        # a rejoin that rebalanced would have been logged before it was answered
        assert _rebalances(broker, "static-group") == rebalances
        assert any("static member replaced" in line for line in broker.log)
        assert (a.assigned, a.revoked) == a_history
    finally:
        a.close()
        b.close()


def _rebalances(broker: BrokerProcess, group: str) -> int:
    return sum(f"rebalance prepared group={group} " in line for line in broker.log)


def test_an_empty_group_keeps_its_protocol_type(broker, admin, kp_admin):
    create(admin, "empty-type")
    consumer = Consumer(
        {"bootstrap.servers": broker.bootstrap, "group.id": "emptied", **GROUP_TIMING}
    )
    consumer.subscribe(["empty-type"])
    wait_until(
        lambda: consumer.poll(0.2) is None and consumer.assignment(),
        timeout_s=TIMEOUT_S,
        what="the consumer's assignment",
    )
    consumer.commit(offsets=[TP("empty-type", 0, 1)], asynchronous=False)
    consumer.close()  # leaves: the group is empty
    listed = admin.list_consumer_groups().result(TIMEOUT_S)
    [emptied] = [g for g in listed.valid if g.group_id == "emptied"]
    assert not emptied.is_simple_consumer_group  # protocol type "consumer" kept
    assert emptied.state == ConsumerGroupState.EMPTY  # ListGroups v4+ carries states
    stable = admin.list_consumer_groups(states={ConsumerGroupState.STABLE}).result(TIMEOUT_S)
    assert "emptied" not in [g.group_id for g in stable.valid]
    classic = admin.list_consumer_groups(types={ConsumerGroupType.CLASSIC}).result(TIMEOUT_S)
    assert "emptied" in [g.group_id for g in classic.valid]
    modern = admin.list_consumer_groups(types={ConsumerGroupType.CONSUMER}).result(TIMEOUT_S)
    assert modern.valid == []
    _assert_empty_consumer_group(admin, kp_admin, "emptied")
    kp_admin.close()  # kafka-python leaks sockets the restart breaks
    broker.restart()  # the group is loaded from __consumer_offsets with its type
    fresh = AdminClient({"bootstrap.servers": broker.bootstrap})
    fresh_kp = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=10_000)
    try:
        _assert_empty_consumer_group(fresh, fresh_kp, "emptied")
    finally:
        fresh_kp.close()
    assert committed(fresh, "emptied", [TP("empty-type", 0)]) == {("empty-type", 0): 1}


def _assert_empty_consumer_group(
    admin: AdminClient, kp_admin: KafkaAdminClient, group: str
) -> None:
    """ListGroups and DescribeGroups, by both clients: Empty, protocol type "consumer"."""
    listed = admin.list_consumer_groups().result(TIMEOUT_S)
    [found] = [g for g in listed.valid if g.group_id == group]
    assert not found.is_simple_consumer_group
    assert found.state == ConsumerGroupState.EMPTY
    described = admin.describe_consumer_groups([group])[group].result(TIMEOUT_S)
    assert not described.is_simple_consumer_group
    assert described.state == ConsumerGroupState.EMPTY
    assert described.members == []
    listed_kp = kp_admin.list_groups()
    assert {"group_id": group, "protocol_type": "consumer"}.items() <= _only(listed_kp, group)
    described_kp = kp_admin.describe_groups([group])[group]
    assert (described_kp["group_state"], described_kp["protocol_type"]) == ("Empty", "consumer")


# --- the KIP-848 consumer protocol, and every version -----------------------------------


def test_the_consumer_group_protocol_fails_loudly(broker, admin):
    create(admin, "kip848")
    with Producer({"bootstrap.servers": broker.bootstrap}) as producer:
        producer.produce("kip848", b"v")
        assert producer.flush(TIMEOUT_S) == 0
    consumer = Consumer(
        {
            "bootstrap.servers": broker.bootstrap,
            "group.id": "kip848-group",
            "group.protocol": "consumer",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe(["kip848"])
    seen: list = []
    try:
        deadline = time.monotonic() + TIMEOUT_S
        while not seen and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None:
                seen.append(msg)
    finally:
        consumer.close()
    assert seen and seen[0].error() is not None, "consumed in silence"
    assert seen[0].error().code() == KafkaError._FATAL
    assert "ConsumerGroupHeartbeat" in seen[0].error().str()


def test_every_advertised_version_is_answered_in_a_form_that_decodes(broker, admin):
    """A default body (every field at Kafka's default) for each api and version the
    broker advertises: it answers (no closed connection) and the answer decodes."""
    create(admin, "every-version")  # its own topic: the module's tests run in any order
    skipped = {ApiKey.PRODUCE}  # acks 0 by default: no answer to wait for
    with WireClient(broker.bootstrap) as wire:
        for key, (low, high) in sorted(ADVERTISED.items()):
            if key in skipped:
                continue
            for version in range(low, high + 1):
                answer = wire.request(key, version, {})
                assert isinstance(answer, dict), (ApiKey(key).name, version)
        metadata = wire.request(ApiKey.METADATA, 0, {"topics": []})
        assert "every-version" in [t["name"] for t in metadata["topics"]]  # v0: [] asks for all


def _only(groups: list[dict], group_id: str):
    [group] = [g for g in groups if g["group_id"] == group_id]
    return group.items()
