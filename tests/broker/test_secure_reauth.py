"""KIP-368: with `--sasl-session-lifetime-ms`, a SASL session tells the client its
lifetime; the client re-authenticates on the same connection (librdkafka does),
or the connection is closed at its first request past the expiry."""

from __future__ import annotations

import logging
import time

import pytest
from broker_process import BrokerProcess, free_ports
from confluent_kafka import Producer
from kafka_wire import WireClient, metadata_body
from sasl_wire import scram_login
from secure_setup import Listeners, add_user, broker_args, make_pki
from waiting import wait_until

from runtime.protocol.codes import ApiKey, ErrorCode

pytestmark = pytest.mark.slow

LIFETIME_MS = 1500
TIMEOUT_S = 20.0


@pytest.fixture(scope="module")
def reauth_broker(tmp_path_factory: pytest.TempPathFactory):
    directory = tmp_path_factory.mktemp("reauth")
    (directory / "pki").mkdir()
    pki = make_pki(directory / "pki")
    users = directory / "users.json"
    add_user(users, "alice", "alice-pw")
    add_user(users, "bob", "bob-pw")
    listeners = Listeners(*free_ports(3))
    args = (*broker_args(pki, users, listeners), "--sasl-session-lifetime-ms", str(LIFETIME_MS))
    process = BrokerProcess(directory / "data", args)
    process.start()
    try:
        yield process, listeners
    finally:
        process.close()


def served(wire: WireClient) -> bool:
    """Whether a Metadata request is answered (False: the broker closed the connection)."""
    wire.sock.sendall(wire.frame(ApiKey.METADATA, 8, metadata_body()))
    return wire.read_frame() is not None


def test_the_session_lifetime_is_told_and_a_re_authentication_renews_it(reauth_broker):
    _, listeners = reauth_broker
    with WireClient(f"127.0.0.1:{listeners.sasl_plaintext}", TIMEOUT_S) as wire:
        first = scram_login(wire, "alice", "alice-pw")
        assert first["error_code"] == ErrorCode.NONE
        assert 0 < first["session_lifetime_ms"] <= LIFETIME_MS
        assert served(wire)
        renewed = scram_login(wire, "alice", "alice-pw")  # same connection, same principal
        assert renewed["error_code"] == ErrorCode.NONE
        assert 0 < renewed["session_lifetime_ms"] <= LIFETIME_MS
        assert served(wire)


def test_a_connection_past_its_session_is_closed_at_its_next_request(reauth_broker):
    process, listeners = reauth_broker
    with WireClient(f"127.0.0.1:{listeners.sasl_plaintext}", TIMEOUT_S) as wire:
        assert scram_login(wire, "alice", "alice-pw")["error_code"] == ErrorCode.NONE
        started = time.monotonic()
        wait_until(
            lambda: not served(wire),
            timeout_s=TIMEOUT_S,
            what="the expired session's connection closed",
            interval_s=0.1,
        )
        assert time.monotonic() - started >= LIFETIME_MS / 1000 * 0.9
    wait_until(
        lambda: any("session of User:alice" in line and "expired" in line for line in process.log),
        timeout_s=TIMEOUT_S,
        what="the expiry logged",
    )


def test_re_authenticating_as_someone_else_is_refused_and_closed(reauth_broker):
    _, listeners = reauth_broker
    with WireClient(f"127.0.0.1:{listeners.sasl_plaintext}", TIMEOUT_S) as wire:
        assert scram_login(wire, "alice", "alice-pw")["error_code"] == ErrorCode.NONE
        answer = scram_login(wire, "bob", "bob-pw")
        assert answer["error_code"] == ErrorCode.SASL_AUTHENTICATION_FAILED
        assert wire.closed_by_peer()


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def test_librdkafka_re_authenticates_and_keeps_producing(reauth_broker):
    _, listeners = reauth_broker
    lines = _Lines()
    log = logging.getLogger("reauth-librdkafka")
    log.addHandler(lines)
    log.setLevel(logging.DEBUG)
    producer = Producer(
        {
            "bootstrap.servers": f"127.0.0.1:{listeners.sasl_plaintext}",
            "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": "SCRAM-SHA-256",
            "sasl.username": "alice",
            "sasl.password": "alice-pw",
            "debug": "security",
            "linger.ms": 5,
        },
        logger=log,
    )
    delivered: list[int] = []
    failed: list[str] = []

    def on_delivery(err, message) -> None:
        (failed.append(str(err)) if err else delivered.append(message.offset()))

    # produce across three session lifetimes, one message every 100 ms
    deadline = time.monotonic() + 3 * LIFETIME_MS / 1000
    sent = 0
    while time.monotonic() < deadline:
        producer.produce("reauth", value=f"m{sent}".encode(), on_delivery=on_delivery)
        sent += 1
        producer.poll(0.1)
    assert producer.flush(TIMEOUT_S) == 0
    assert not failed and len(delivered) == sent
    # librdkafka's own account: it started a re-authentication on a live connection
    reauths = [line for line in lines.lines if "Auth in state REAUTH" in line]
    assert reauths, "librdkafka did not re-authenticate"
    disconnects = [line for line in lines.lines if "expired" in line.lower()]
    assert not disconnects, disconnects
