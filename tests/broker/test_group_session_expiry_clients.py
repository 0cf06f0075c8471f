"""A static member's group can be deleted the moment its session runs out, as
librdkafka's 0081_admin test does: it closes static consumers (which send no
LeaveGroup), sleeps out session.timeout.ms and deletes their groups at once.
The broker's background expiry runs only every 100 ms, so the answer must apply
the timeout itself."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from broker_process import BrokerProcess
from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from waiting import wait_until

pytestmark = pytest.mark.slow
TIMEOUT_S = 30.0
SESSION_MS = 1000  # the broker's smallest session timeout


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    process = BrokerProcess(Path(tmp_path_factory.mktemp("expiry")), ())
    process.start()
    yield process
    process.close()


def _consume_one_and_close(bootstrap: str, topic: str, group: str) -> float:
    """A static member consumes a record and closes (its commit is the last thing
    the broker hears from it); returns when the close returned (monotonic)."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "group.instance.id": f"{group}-instance",
            "session.timeout.ms": SESSION_MS,
            "heartbeat.interval.ms": 200,
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([topic])
    got: list[object] = []

    def polled() -> bool:
        message = consumer.poll(0.2)
        if message is not None and message.error() is None:
            got.append(message)
        return bool(got)

    wait_until(polled, timeout_s=TIMEOUT_S, what="the static member consumed its record")
    consumer.close()
    return time.monotonic()


def test_a_group_is_deletable_as_soon_as_its_static_members_session_ran_out(broker):
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic("expiry", 1, 1)])["expiry"].result(TIMEOUT_S)
    producer = Producer({"bootstrap.servers": broker.bootstrap})
    producer.produce("expiry", b"v")
    assert producer.flush(TIMEOUT_S) == 0
    for group in ("expiry-a", "expiry-b", "expiry-c"):
        closed_at = _consume_one_and_close(broker.bootstrap, "expiry", group)
        try:
            admin.delete_consumer_groups([group])[group].result(TIMEOUT_S)
        except KafkaException as exc:
            assert "not empty" in str(exc)  # within the session the group has its member
        else:  # only a slow answer may find the session over
            assert time.monotonic() - closed_at >= SESSION_MS / 1000
            continue
        # 20 ms past the session timeout: well inside one background expiry interval
        time.sleep(max(0.0, closed_at + SESSION_MS / 1000 + 0.02 - time.monotonic()))
        admin.delete_consumer_groups([group])[group].result(TIMEOUT_S)
