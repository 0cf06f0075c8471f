"""Our own client over TLS and SASL, configured by its broker URL, against the
secured broker: every way in that unmodified clients use, and the refusals it
must report at once (a wrong password, an untrusted broker) instead of retrying.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from secure_setup import Login
from waiting import wait_until

from runtime.client.errors import AuthenticationFailedError
from runtime.client.security import parse_kafka_url
from runtime.kafka_transport import KafkaTransport
from runtime.log.records import decode_batches, encode_batch
from runtime.types import TopicPartition

TIMEOUT_S = 30.0
WAYS = [
    ("SASL_SSL", "SCRAM-SHA-256"),
    ("SASL_SSL", "SCRAM-SHA-512"),
    ("SASL_PLAINTEXT", "PLAIN"),
    ("SASL_PLAINTEXT", "SCRAM-SHA-256"),
    ("SSL", None),
]
IDS = ["sasl_ssl-scram256", "sasl_ssl-scram512", "plain", "sasl_plaintext-scram256", "mtls"]


def login_for(secure_broker, protocol: str, mechanism: str | None, user: str) -> Login:
    if mechanism is None:
        pki = secure_broker.pki
        return Login(protocol, cert=pki.client_cert, key=pki.client_key)
    return Login(protocol, mechanism, user, secure_broker.add_user(user))


async def round_trip(url: str, topic: str) -> list[bytes]:
    tp = TopicPartition(topic, 0)
    async with asyncio.timeout(TIMEOUT_S):
        async with KafkaTransport(url) as transport:
            await transport.create_topic(topic, 1)
            for i in range(3):
                await transport.append(tp, encode_batch([(None, f"v{i}".encode(), 1_000, ())]))
            data = await transport.fetch(tp, 0)
    return [record.value for record in decode_batches(data)]


@pytest.mark.parametrize(("protocol", "mechanism"), WAYS, ids=IDS)
def test_our_client_produces_and_reads_back(secure_broker, monkeypatch, protocol, mechanism):
    user = f"ours-{protocol}-{mechanism}".lower()
    login = login_for(secure_broker, protocol, mechanism, user)
    url, env = login.streams_url(secure_broker.pki, secure_broker.listeners.port(protocol))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    topic = f"ours-{protocol}-{mechanism or 'mtls'}".lower()
    assert asyncio.run(round_trip(url, topic)) == [b"v0", b"v1", b"v2"]


def _refused(url: str) -> tuple[AuthenticationFailedError, float]:
    started = time.monotonic()
    with pytest.raises(AuthenticationFailedError) as caught:
        asyncio.run(round_trip(url, "never-created"))
    return caught.value, time.monotonic() - started


def test_a_wrong_password_is_refused_at_once_and_not_retried(secure_broker, monkeypatch):
    login = login_for(secure_broker, "SASL_SSL", "SCRAM-SHA-256", "ours-wrong-password")
    url, _ = login.streams_url(secure_broker.pki, secure_broker.listeners.sasl_ssl)
    monkeypatch.setenv("STREAMS_KAFKA_PASSWORD", "not the password")
    error, _ = _refused(url)
    assert "refused the SASL credentials" in str(error)
    assert "not the password" not in str(error)
    # one refusal, not a retry loop until the connect timeout (the broker's line
    # arrives through its stderr reader thread: wait for it)
    refusals = wait_until(
        lambda: secure_broker.log_lines("ours-wrong-password"),
        timeout_s=TIMEOUT_S,
        what="the broker's refusal line",
    )
    assert len(refusals) <= 2, refusals


def test_a_broker_certificate_not_signed_by_a_trusted_ca_is_refused(secure_broker, monkeypatch):
    login = login_for(secure_broker, "SASL_SSL", "SCRAM-SHA-256", "ours-untrusted")
    url, env = login.streams_url(secure_broker.pki, secure_broker.listeners.sasl_ssl)
    monkeypatch.setenv("STREAMS_KAFKA_PASSWORD", env["STREAMS_KAFKA_PASSWORD"])
    url = url.replace(f"&ssl_cafile={secure_broker.pki.ca}", "")  # the system's CAs only
    error, _ = _refused(url)
    assert "the broker's certificate does not verify" in str(error), error


def test_the_password_comes_from_a_file_when_asked(secure_broker, tmp_path, monkeypatch):
    login = login_for(secure_broker, "SASL_SSL", "SCRAM-SHA-512", "ours-password-file")
    url, env = login.streams_url(secure_broker.pki, secure_broker.listeners.sasl_ssl)
    monkeypatch.delenv("STREAMS_KAFKA_PASSWORD", raising=False)
    secret = tmp_path / "password"
    secret.write_text(env["STREAMS_KAFKA_PASSWORD"] + "\n")
    url += f"&password_file={secret}"
    assert parse_kafka_url(url)[1].password == env["STREAMS_KAFKA_PASSWORD"]
    assert asyncio.run(round_trip(url, "ours-password-file")) == [b"v0", b"v1", b"v2"]
