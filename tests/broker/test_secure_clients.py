"""Unmodified clients produce and consume over SASL_SSL (SCRAM-SHA-256, SCRAM-SHA-512),
SASL_PLAINTEXT (PLAIN) and SSL with client certificates, against one broker with
all those listeners; each is sent back to the listener it came in on.

Each test adds its own user to the broker's users file while the broker runs,
so every login also checks that the file is read again when it changes.
"""

from __future__ import annotations

import asyncio
import time
import warnings

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from confluent_kafka import Consumer, Producer
from kcat_runner import kcat
from secure_setup import Login

with warnings.catch_warnings():
    # kafka-python 3.0 loads its schemas with importlib.resources.read_text
    warnings.simplefilter("ignore", DeprecationWarning)
    from kafka import KafkaConsumer, KafkaProducer

pytestmark = pytest.mark.slow

TIMEOUT_S = 30.0
RECORDS = 20
QUIET = {"log_level": 3}

# (listener protocol, SASL mechanism or None for a client certificate)
WAYS = [
    ("SASL_SSL", "SCRAM-SHA-256"),
    ("SASL_SSL", "SCRAM-SHA-512"),
    ("SASL_PLAINTEXT", "PLAIN"),
    ("SSL", None),
]
IDS = ["sasl_ssl-scram256", "sasl_ssl-scram512", "sasl_plaintext-plain", "ssl-mtls"]


def login_for(secure_broker, protocol: str, mechanism: str | None, user: str) -> Login:
    if mechanism is None:
        pki = secure_broker.pki
        return Login(protocol, cert=pki.client_cert, key=pki.client_key)
    return Login(protocol, mechanism, user, secure_broker.add_user(user))


def values(topic: str) -> list[bytes]:
    return [f"{topic}-{i}".encode() for i in range(RECORDS)]


@pytest.mark.parametrize(("protocol", "mechanism"), WAYS, ids=IDS)
def test_confluent_kafka(secure_broker, protocol, mechanism) -> None:
    user = f"confluent-{protocol}-{mechanism}".lower()
    login = login_for(secure_broker, protocol, mechanism, user)
    port = secure_broker.listeners.port(protocol)
    conf = login.librdkafka(secure_broker.pki, port) | QUIET
    topic = f"confluent-{protocol}-{mechanism or 'mtls'}"
    with Producer(conf | {"acks": "all"}) as producer:
        for value in values(topic):
            producer.produce(topic, value=value)
        assert producer.flush(TIMEOUT_S) == 0
        brokers = producer.list_topics(timeout=TIMEOUT_S).brokers
        # Metadata names the listener this client used, not the PLAINTEXT one
        assert [(b.host, b.port) for b in brokers.values()] == [("127.0.0.1", port)]
    consumer = Consumer(
        conf | {"group.id": f"{topic}-group", "auto.offset.reset": "earliest"}
    )  # a group: FindCoordinator must send it back to the same listener
    got: list[bytes] = []
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + TIMEOUT_S
        while len(got) < RECORDS:
            assert time.monotonic() < deadline, got
            message = consumer.poll(0.5)
            if message is not None:
                assert message.error() is None, message.error()
                got.append(message.value())
        consumer.commit(asynchronous=False)
    finally:
        consumer.close()
    assert got == values(topic)


@pytest.mark.parametrize(("protocol", "mechanism"), WAYS, ids=IDS)
def test_kafka_python(secure_broker, protocol, mechanism) -> None:
    user = f"kafka-python-{protocol}-{mechanism}".lower()
    login = login_for(secure_broker, protocol, mechanism, user)
    conf = login.kafka_python(secure_broker.pki, secure_broker.listeners.port(protocol))
    topic = f"kafka-python-{protocol}-{mechanism or 'mtls'}"
    producer = KafkaProducer(**conf, acks="all")
    try:
        for value in values(topic):
            producer.send(topic, value)
        producer.flush(TIMEOUT_S)
    finally:
        producer.close(TIMEOUT_S)
    consumer = KafkaConsumer(
        topic,
        **conf,
        group_id=f"{topic}-group",
        auto_offset_reset="earliest",
        consumer_timeout_ms=int(TIMEOUT_S * 1000),
    )
    try:
        got = [message.value for _, message in zip(range(RECORDS), consumer, strict=False)]
    finally:
        consumer.close()
    assert got == values(topic)


@pytest.mark.parametrize(("protocol", "mechanism"), WAYS, ids=IDS)
def test_aiokafka(secure_broker, protocol, mechanism) -> None:
    user = f"aiokafka-{protocol}-{mechanism}".lower()
    login = login_for(secure_broker, protocol, mechanism, user)
    port = secure_broker.listeners.port(protocol)
    topic = f"aiokafka-{protocol}-{mechanism or 'mtls'}"

    async def run() -> list[bytes]:
        producer = AIOKafkaProducer(**login.aiokafka(secure_broker.pki, port), acks="all")
        await producer.start()
        try:
            for value in values(topic):
                await producer.send_and_wait(topic, value)
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(
            topic,
            **login.aiokafka(secure_broker.pki, port),
            group_id=f"{topic}-group",
            auto_offset_reset="earliest",
        )
        await consumer.start()
        try:
            got: list[bytes] = []
            while len(got) < RECORDS:
                batch = await consumer.getmany(timeout_ms=500)
                got += [m.value for messages in batch.values() for m in messages]
            return got
        finally:
            await consumer.stop()

    got = asyncio.run(asyncio.wait_for(run(), TIMEOUT_S))
    assert got == values(topic)


@pytest.mark.parametrize(("protocol", "mechanism"), WAYS, ids=IDS)
def test_kcat(secure_broker, protocol, mechanism) -> None:
    user = f"kcat-{protocol}-{mechanism}".lower()
    login = login_for(secure_broker, protocol, mechanism, user)
    args = login.kcat(secure_broker.pki, secure_broker.listeners.port(protocol))
    topic = f"kcat-{protocol}-{mechanism or 'mtls'}"
    lines = [v.decode() for v in values(topic)]
    kcat(*args, "-P", "-t", topic, stdin="".join(f"{line}\n" for line in lines))
    out = kcat(*args, "-C", "-t", topic, "-o", "beginning", "-c", str(RECORDS), "-e")
    assert out.splitlines() == lines
    listing = kcat(*args, "-L", "-t", topic)
    assert f"127.0.0.1:{secure_broker.listeners.port(protocol)}" in listing
