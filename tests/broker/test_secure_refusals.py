"""Bad input on the secured listeners: each is refused the way its client expects, at
once (no client hangs), with a log line naming the peer and the reason, and no
password in any log (checked when the module's broker stops: conftest).

Real clients where they can say it (confluent-kafka, kafka-python, aiokafka, kcat);
raw frames (kafka_wire) for what no real client sends.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import subprocess
import time
import warnings

import pytest
from aiokafka import AIOKafkaProducer
from confluent_kafka import KafkaError, Producer
from kafka_wire import WireClient, metadata_body
from sasl_wire import authenticate, handshake, scram_login
from secure_setup import Login
from waiting import wait_until

from runtime.protocol.codes import ApiKey, ErrorCode
from runtime.security.scram import ScramClient

with warnings.catch_warnings():
    # kafka-python 3.0 loads its schemas with importlib.resources.read_text
    warnings.simplefilter("ignore", DeprecationWarning)
    from kafka import KafkaProducer
    from kafka.errors import KafkaTimeoutError

pytestmark = pytest.mark.slow

TIMEOUT_S = 20.0
REFUSED_WITHIN_S = 10.0  # every client must hear of a refusal well before its own timeouts
QUIET = {"log_level": 0}


def librdkafka_error(conf: dict) -> KafkaError:
    """The first error a producer reports (error_cb) trying to connect."""
    errors: list[KafkaError] = []
    producer = Producer(conf | QUIET | {"error_cb": errors.append})
    deadline = time.monotonic() + REFUSED_WITHIN_S
    while not errors:
        assert time.monotonic() < deadline, f"no error reported in {REFUSED_WITHIN_S}s"
        producer.poll(0.1)
    return errors[0]


def logged(secure_broker, *texts: str) -> list[str]:
    return wait_until(
        lambda: secure_broker.log_lines(*texts),
        timeout_s=TIMEOUT_S,
        what=lambda: f"a broker log line with {texts}:\n{secure_broker.process.log_text()}",
    )


def client_tls(secure_broker) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=secure_broker.pki.ca)


def sasl_plaintext(secure_broker) -> str:
    return f"127.0.0.1:{secure_broker.listeners.sasl_plaintext}"


# --- wrong password and unknown user, seen by each client ------------------------------


def test_wrong_password_confluent_kafka(secure_broker) -> None:
    secure_broker.add_user("wrong-confluent")
    login = Login("SASL_SSL", "SCRAM-SHA-512", "wrong-confluent", "not-the-password")
    conf = login.librdkafka(secure_broker.pki, secure_broker.listeners.sasl_ssl)
    error = librdkafka_error(conf)
    assert error.code() == KafkaError._AUTHENTICATION, error
    assert "Authentication failed: invalid credentials" in error.str()
    logged(
        secure_broker,
        "authentication of 127.0.0.1 failed: SCRAM-SHA-512: wrong password",
        "'wrong-confluent'",
    )


def test_wrong_password_kafka_python(secure_broker, caplog) -> None:
    secure_broker.add_user("wrong-kafka-python")
    login = Login("SASL_PLAINTEXT", "PLAIN", "wrong-kafka-python", "not-the-password")
    conf = login.kafka_python(secure_broker.pki, secure_broker.listeners.sasl_plaintext)
    # api_version given: the constructor does not connect (one that raises leaks
    # its sockets), the first send does, and gives up after max_block_ms
    producer = KafkaProducer(**conf, api_version=(2, 8), max_block_ms=3000)
    try:
        with caplog.at_level(logging.WARNING, logger="kafka"), pytest.raises(KafkaTimeoutError):
            producer.send("never", b"x")
    finally:
        producer.close(TIMEOUT_S)
    logged(secure_broker, "PLAIN: wrong password for user 'wrong-kafka-python'")


def test_unknown_user_aiokafka(secure_broker, caplog) -> None:
    login = Login("SASL_SSL", "SCRAM-SHA-256", "nobody-aiokafka", "whatever-password")
    conf = login.aiokafka(secure_broker.pki, secure_broker.listeners.sasl_ssl)

    async def start() -> None:
        producer = AIOKafkaProducer(**conf)
        try:
            await producer.start()
        finally:
            await producer.stop()

    with caplog.at_level(logging.ERROR, logger="aiokafka"), pytest.raises(Exception) as info:
        asyncio.run(asyncio.wait_for(start(), REFUSED_WITHIN_S))
    assert "Unable to bootstrap" in str(info.value)
    assert "SaslAuthenticationFailed: Authentication failed: invalid credentials" in caplog.text
    logged(secure_broker, "SCRAM-SHA-256: unknown user 'nobody-aiokafka'")


def test_wrong_password_kcat(secure_broker) -> None:
    secure_broker.add_user("wrong-kcat")
    login = Login("SASL_SSL", "SCRAM-SHA-256", "wrong-kcat", "not-the-password")
    args = login.kcat(secure_broker.pki, secure_broker.listeners.sasl_ssl)
    done = subprocess.run(
        ["kcat", *args, "-L", "-m", "5"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    assert done.returncode != 0
    assert "Authentication failed: invalid credentials" in done.stderr
    logged(secure_broker, "wrong password for user 'wrong-kcat'")


def test_an_unknown_user_is_told_what_a_wrong_password_is_told(secure_broker) -> None:
    secure_broker.add_user("known")
    answers = []
    for user in ("known", "unknown"):
        with WireClient(sasl_plaintext(secure_broker)) as wire:
            answers.append(scram_login(wire, user, "bad-password"))
            assert wire.closed_by_peer()
    assert answers[0] == answers[1]
    assert answers[0]["error_code"] == ErrorCode.SASL_AUTHENTICATION_FAILED
    logged(secure_broker, "SCRAM-SHA-256: unknown user 'unknown'")


# --- mechanisms -------------------------------------------------------------------------


def test_unknown_mechanism_is_answered_with_the_enabled_ones(secure_broker) -> None:
    conf = {
        "bootstrap.servers": sasl_plaintext(secure_broker),
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": "OAUTHBEARER",
        "enable.sasl.oauthbearer.unsecure.jwt": True,
        "sasl.oauthbearer.config": "principal=alice",
    }
    error = librdkafka_error(conf)
    assert error.code() == KafkaError._AUTHENTICATION, error
    assert "Unsupported SASL mechanism" in error.str()
    assert "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512" in error.str()
    with WireClient(sasl_plaintext(secure_broker)) as wire:
        answer = handshake(wire, "GSSAPI")
        assert answer == {
            "error_code": ErrorCode.UNSUPPORTED_SASL_MECHANISM,
            "mechanisms": ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"],
        }
        assert wire.closed_by_peer()
    logged(secure_broker, "127.0.0.1", "SASL mechanism 'GSSAPI' is not enabled")


# --- TLS --------------------------------------------------------------------------------


def test_a_plaintext_client_on_a_tls_port(secure_broker) -> None:
    login = Login("SASL_PLAINTEXT", "PLAIN", "admin", secure_broker.passwords["admin"])
    conf = login.librdkafka(secure_broker.pki, secure_broker.listeners.sasl_ssl)
    error = librdkafka_error(conf)  # the broker closes: all brokers are down, at once
    assert error.code() in (KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN), error
    logged(secure_broker, "TLS handshake with 127.0.0.1 failed: not a TLS client")


def test_an_untrusted_client_certificate(secure_broker) -> None:
    pki = secure_broker.pki
    login = Login("SSL", cert=pki.rogue_cert, key=pki.rogue_key)
    error = librdkafka_error(login.librdkafka(pki, secure_broker.listeners.ssl))
    assert error.code() in (KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN, KafkaError._SSL), (
        error
    )
    assert "alert" in error.str(), error.str()
    logged(secure_broker, "TLS handshake with 127.0.0.1 failed: client certificate refused")


def test_an_expired_client_certificate(secure_broker) -> None:
    pki = secure_broker.pki
    login = Login("SSL", cert=pki.expired_cert, key=pki.expired_key)
    error = librdkafka_error(login.librdkafka(pki, secure_broker.listeners.ssl))
    assert error.code() in (KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN, KafkaError._SSL), (
        error
    )
    logged(secure_broker, "TLS handshake with 127.0.0.1 failed: client certificate refused")
    logged(secure_broker, "certificate has expired")


def test_a_client_without_a_certificate_on_the_mutual_tls_port(secure_broker) -> None:
    context = client_tls(secure_broker)
    with WireClient(f"127.0.0.1:{secure_broker.listeners.ssl}", tls=context) as wire:
        # TLS 1.3: the client is done with its handshake before the server checks
        # it, and reads why it was refused: the alert the broker sent
        wire.sock.sendall(wire.frame(ApiKey.API_VERSIONS, 0, {}))
        with pytest.raises(ssl.SSLError, match="ALERT_CERTIFICATE_REQUIRED"):
            wire.read_frame()
    logged(secure_broker, "TLS handshake with 127.0.0.1 failed: no client certificate")


# --- frames out of order or out of bounds -----------------------------------------------


def test_sasl_authenticate_before_the_handshake(secure_broker) -> None:
    with WireClient(sasl_plaintext(secure_broker)) as wire:
        answer = authenticate(wire, b"n,,n=admin,r=abc")
        assert answer["error_code"] == ErrorCode.ILLEGAL_SASL_STATE
        assert wire.closed_by_peer()
    logged(secure_broker, "127.0.0.1 failed: SaslAuthenticate before SaslHandshake")


def test_a_huge_sasl_frame_is_refused_before_its_body_is_read(secure_broker) -> None:
    with WireClient(sasl_plaintext(secure_broker)) as wire:
        assert handshake(wire, "PLAIN")["error_code"] == ErrorCode.NONE
        frame = wire.frame(ApiKey.SASL_AUTHENTICATE, 1, {"auth_bytes": b"x" * (1 << 20)})
        wire.sock.sendall(frame[:1024])  # the size says 1 MiB: nothing more is needed
        assert wire.closed_by_peer()
    logged(secure_broker, "closing connection from 127.0.0.1", "before authentication")


def test_a_request_before_authentication_closes_the_connection(secure_broker) -> None:
    with WireClient(sasl_plaintext(secure_broker)) as wire:
        versions = wire.request(ApiKey.API_VERSIONS, 0, {})  # served before authentication
        assert versions["error_code"] == ErrorCode.NONE
        wire.sock.sendall(wire.frame(ApiKey.METADATA, 8, metadata_body()))
        assert wire.read_frame() is None
    logged(secure_broker, "127.0.0.1 failed: METADATA request before SASL authentication")
    # a client that does not know it must authenticate is told at once, not left hanging
    error = librdkafka_error({"bootstrap.servers": sasl_plaintext(secure_broker)})
    assert error.code() in (KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN), error


# --- what no client above sends, accepted ----------------------------------------------


def test_handshake_v0_carries_raw_sasl_tokens(secure_broker) -> None:
    password = secure_broker.add_user("raw-tokens")
    with WireClient(sasl_plaintext(secure_broker)) as wire:
        assert handshake(wire, "SCRAM-SHA-256", version=0)["error_code"] == ErrorCode.NONE
        client = ScramClient("SCRAM-SHA-256", "raw-tokens", password)
        server_first = raw_exchange(wire, client.first())
        client.verify(raw_exchange(wire, client.final(server_first)))
        answer = wire.request(ApiKey.METADATA, 8, metadata_body())
        assert [b["port"] for b in answer["brokers"]] == [secure_broker.listeners.sasl_plaintext]
    with WireClient(sasl_plaintext(secure_broker)) as wire:  # PLAIN, refused: just closed
        assert handshake(wire, "PLAIN", version=0)["error_code"] == ErrorCode.NONE
        token = b"\0raw-tokens\0wrong-password"
        wire.sock.sendall(len(token).to_bytes(4, "big") + token)
        assert wire.read_frame() is None
    logged(secure_broker, "PLAIN: wrong password for user 'raw-tokens'")


def raw_exchange(wire: WireClient, token: bytes) -> bytes:
    wire.sock.sendall(len(token).to_bytes(4, "big") + token)
    answer = wire.read_frame()
    assert answer is not None, "the broker closed the connection"
    return answer


def test_sasl_authenticate_v2_is_flexible_and_sessions_last_by_default(secure_broker) -> None:
    password = secure_broker.add_user("flexible")
    with WireClient(sasl_plaintext(secure_broker), tls=None) as wire:
        answer = scram_login(wire, "flexible", password, version=2)
        assert answer["error_code"] == ErrorCode.NONE
        assert answer["session_lifetime_ms"] == 0  # no --sasl-session-lifetime-ms
        # once authenticated: SASL requests are out of place, everything else is served
        assert handshake(wire, "PLAIN")["error_code"] == ErrorCode.ILLEGAL_SASL_STATE
        assert authenticate(wire, b"x")["error_code"] == ErrorCode.ILLEGAL_SASL_STATE
        assert wire.request(ApiKey.METADATA, 8, metadata_body())["brokers"]


def test_a_removed_user_can_no_longer_log_in(secure_broker) -> None:
    from runtime.security.users import remove_user

    password = secure_broker.add_user("leaving")
    context = client_tls(secure_broker)
    bootstrap = f"127.0.0.1:{secure_broker.listeners.sasl_ssl}"
    with WireClient(bootstrap, tls=context) as wire:
        assert scram_login(wire, "leaving", password)["error_code"] == ErrorCode.NONE
    assert remove_user(secure_broker.users_file, "leaving")
    with WireClient(bootstrap, tls=context) as wire:
        answer = scram_login(wire, "leaving", password)
        assert answer["error_code"] == ErrorCode.SASL_AUTHENTICATION_FAILED
    logged(secure_broker, "unknown user 'leaving'")
